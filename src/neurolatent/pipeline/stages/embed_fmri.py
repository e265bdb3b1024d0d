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
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch

from neurolatent.io.files import atomic_file
from neurolatent.io.samples import FmriSamples
from neurolatent.models.autoencoder import load_model, network_input, pool_latents
from neurolatent.pipeline.numerics import torch_device
from neurolatent.pipeline.progress import progress
from neurolatent.science.stimuli import presentations


def run(params: SimpleNamespace, paths: SimpleNamespace) -> dict:
    """The stage on its declared ``params`` and ``paths`` (the registry's files); returns its metrics."""
    embed, preprocess = params.embed, params.preprocess
    device = torch_device(params.compute.device, params.compute.threads)
    data = FmriSamples.open(paths.samples)
    model, config = load_model(paths.model, device)
    if config["kind"] == "conv3d":
        data.use_depth(len(config["channels"]) - 1)
    trials = pd.read_parquet(paths.trials)
    stimuli = pd.read_parquet(paths.stimuli)
    rows = data.trial_rows(trials, preprocess.lag_s, preprocess.anchor, preprocess.rounding)
    stimulus_row = pd.Series(np.arange(len(stimuli)), index=stimuli["image_name"])
    groups = presentations(trials, stimuli)
    group_of = pd.Series(np.arange(len(groups)), index=pd.MultiIndex.from_frame(groups[["subject", "stimulus_row"]]))
    trial_group = group_of.reindex(pd.MultiIndex.from_arrays(
        [trials["subject"], stimulus_row.reindex(trials["image_name"]).to_numpy()])).to_numpy()

    with torch.inference_mode():
        width = pool_latents(model.encode(network_input(data.read(rows[:1])).to(device)), embed.pooling).shape[1]
    with atomic_file(Path(paths.out)) as temp:
        sums = np.lib.format.open_memmap(temp, mode="w+", dtype=np.float32, shape=(len(groups), width))
        order = np.argsort(rows, kind="stable")  # read the memmap front to back
        with torch.inference_mode():
            for start in progress(range(0, len(order), embed.batch_size), desc="embed_fmri", unit="batch"):
                chosen = order[start:start + embed.batch_size]
                batch = network_input(data.read(rows[chosen])).to(device)
                latents = pool_latents(model.encode(batch), embed.pooling).cpu().numpy()
                np.add.at(sums, trial_group[chosen], latents)
        sums /= groups["presentations"].to_numpy(dtype=np.float32)[:, None]
        sums.flush()
        del sums
    with atomic_file(Path(paths.index)) as temp:
        groups[["subject", "image_name", "stimulus_row", "presentations"]].to_parquet(temp, index=False)
    return {"embed_fmri.rows": len(groups), "embed_fmri.dims": int(width), "embed_fmri.trials": len(trials),
            "embed_fmri.subjects": int(groups["subject"].nunique())}
