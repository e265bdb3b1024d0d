"""Stage ``embed_fmri``: the fMRI autoencoder's latent of every trial, averaged per (subject, image).

Pooling (``embed.pooling``) of conv latents (C x H x W or C x D x H x W): ``flatten`` (the study's
code: 256 x 21 x 21 = 112,896 values at 672 px) or ``avgpool`` (the mean over space: C values, as
the study's text describes). MLP latents are vectors already.

Outputs: ``data/embeddings/fmri.npy`` (float32, one row per (subject, image), subjects in order and
images in ``stimuli.parquet`` order within each) and ``data/embeddings/fmri_index.parquet``
(subject, image_name, stimulus_row, presentations). Rows are joined to the stimuli by image name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from neurolatent import autoencoder, bids
from neurolatent.config import EmbedParams, PreprocessParams
from neurolatent.errors import NeurolatentError
from neurolatent.files import atomic_file
from neurolatent.fmri import anchor_times
from neurolatent.fmri_ae import FmriSamples


def pool(latents: torch.Tensor, pooling: str) -> torch.Tensor:
    """(n, C, *space) -> (n, C * prod(space)) for flatten, (n, C) for avgpool; (n, d) unchanged."""
    if latents.ndim == 2 or pooling == "flatten":
        return latents.reshape(len(latents), -1)
    return latents.flatten(2).mean(dim=2)


def trial_rows(data: FmriSamples, trials: pd.DataFrame, preprocess: PreprocessParams) -> np.ndarray:
    """The sample row of each trial of ``trials``: the row itself when the fmri stage wrote one
    sample per trial; with every-TR samples, the volume nearest the trial's anchor + lag (the
    window's middle for a window)."""
    index = data.index
    if "volume" not in index.columns:
        if len(index) != len(trials) or not (index["image_name"].to_numpy() == trials["image_name"].to_numpy()).all():
            raise NeurolatentError(f"{data.folder / 'index.parquet'}: rows do not match trials.parquet (rerun fmri)")
        return np.arange(len(trials))
    lag = preprocess.lag_s if not isinstance(preprocess.lag_s, tuple) else sum(preprocess.lag_s) / 2
    times = anchor_times(trials["onset"].to_numpy(), trials["duration"].to_numpy(), preprocess.anchor) + lag
    wanted = pd.DataFrame({"subject": trials["subject"].to_numpy(), "session": trials["session"].to_numpy(),
                           "run": trials["run"].to_numpy(), "volume": np.rint(times / bids.TR_S).astype(int)})
    keyed = index[["subject", "session", "run", "volume"]].reset_index(names="row")
    last = keyed.groupby(["subject", "session", "run"])["volume"].transform("max")
    wanted = wanted.merge(keyed.assign(last=last).groupby(["subject", "session", "run"])["last"].max().reset_index(),
                          on=["subject", "session", "run"], how="left")
    wanted["volume"] = np.minimum(wanted["volume"], wanted["last"])
    rows = wanted.merge(keyed, on=["subject", "session", "run", "volume"], how="left")["row"]
    if rows.isna().any():
        raise NeurolatentError(f"{data.folder / 'index.parquet'}: some trials have no volume (rerun fmri)")
    return rows.to_numpy(dtype=int)


def run_embed_fmri(embed: EmbedParams, preprocess: PreprocessParams, samples_dir: Path, model_dir: Path,
                   trials_path: Path, stimuli_path: Path, out_npy: Path, out_index: Path, device: str = "cpu") -> dict:
    """The stage; see the module docstring."""
    data = FmriSamples.open(samples_dir)
    model, config = autoencoder.load_model(model_dir, device)
    if config["kind"] == "conv3d":
        data.use_depth(len(config["channels"]) - 1)
    trials = pd.read_parquet(trials_path)
    stimuli = pd.read_parquet(stimuli_path)
    rows = trial_rows(data, trials, preprocess)
    stimulus_row = pd.Series(np.arange(len(stimuli)), index=stimuli["image_name"])
    groups = (trials.assign(stimulus_row=stimulus_row.reindex(trials["image_name"]).to_numpy())
              .groupby(["subject", "stimulus_row"], sort=True).size().rename("presentations").reset_index())
    groups["image_name"] = stimuli["image_name"].to_numpy()[groups["stimulus_row"]]
    group_of = pd.Series(np.arange(len(groups)), index=pd.MultiIndex.from_frame(groups[["subject", "stimulus_row"]]))
    trial_group = group_of.reindex(pd.MultiIndex.from_arrays(
        [trials["subject"], stimulus_row.reindex(trials["image_name"]).to_numpy()])).to_numpy()

    with torch.inference_mode():
        width = pool(model.encode(data.load(rows[:1]).to(device)), embed.pooling).shape[1]
    with atomic_file(Path(out_npy)) as temp:
        sums = np.lib.format.open_memmap(temp, mode="w+", dtype=np.float32, shape=(len(groups), width))
        order = np.argsort(rows, kind="stable")  # read the memmap front to back
        with torch.inference_mode():
            for start in tqdm(range(0, len(order), embed.batch_size), desc="embed_fmri", unit="batch"):
                chosen = order[start:start + embed.batch_size]
                latents = pool(model.encode(data.load(rows[chosen]).to(device)), embed.pooling).cpu().numpy()
                np.add.at(sums, trial_group[chosen], latents)
        sums /= groups["presentations"].to_numpy(dtype=np.float32)[:, None]
        sums.flush()
        del sums
    with atomic_file(Path(out_index)) as temp:
        groups[["subject", "image_name", "stimulus_row", "presentations"]].to_parquet(temp, index=False)
    return {"rows": len(groups), "dims": int(width), "trials": len(trials),
            "subjects": int(groups["subject"].nunique())}
