"""The per-stimulus matrices that ``rsa`` and ``stitch`` compare, read from the stages' outputs.

Every matrix comes with the image names of its rows; callers join by name, never by position.

- fMRI, per subject: ``ae`` (the fMRI AE's latents, ``data/embeddings/fmri.npy``), ``samples``
  (the fmri stage's samples of the visual region, averaged over each image's presentations; for
  betas and volume only the subject's own voxels, not the zero padding) and ``align`` (the align
  stage's shared space, ``data/align``: every subject's responses in one space).
- Images, shared by subjects: each entry of ``data/embeddings/images/manifest.json``, and with
  synthetic data the planted features themselves (``planted``, from ``data/raw/truth``), the
  reference a pipeline should recover.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from neurolatent.errors import NeurolatentError
from neurolatent.io import bids
from neurolatent.io.samples import FmriSamples
from neurolatent.science.constraints import checked
from neurolatent.science.stats import zscore
from neurolatent.science.stimuli import StimulusMatrix, average_repeats

FMRI_KINDS = ("ae", "samples", "align")


def _need(path: Path, stage: str) -> Path:
    if not Path(path).exists():
        raise NeurolatentError(f"{path}: missing (run the {stage} stage first)")
    return Path(path)


@checked(kind=Literal["ae", "align"])
def fmri_latents(fmri_npy: Path, index_parquet: Path, kind: str = "ae") -> dict[str, StimulusMatrix]:
    """The fMRI AE latents per subject: {subject: StimulusMatrix (n_images_of_subject, d)} (``kind``
    names the matrices, and the stage that writes them: ``ae``, embed_fmri; ``align``, align)."""
    stage = {"ae": "embed_fmri", "align": "align"}[kind]
    matrix = np.load(_need(fmri_npy, stage), mmap_mode="r")
    index = pd.read_parquet(_need(index_parquet, stage))
    if len(index) != len(matrix):
        raise NeurolatentError(f"{index_parquet}: {len(index)} rows for {len(matrix)} in {fmri_npy}")
    return {subject: StimulusMatrix(f"{kind}/{subject}", np.asarray(matrix[rows.index.to_numpy()], dtype=np.float32),
                                    tuple(rows["image_name"]))
            for subject, rows in index.groupby("subject", sort=True)}


def fmri_aligned(align_dir: Path) -> dict[str, StimulusMatrix]:
    """The align stage's shared space per subject: {subject: StimulusMatrix (n_images_of_subject,
    align.features)}, from ``shared.npy`` and its rows' ``index.parquet`` (subject, image_name)."""
    return fmri_latents(_need(Path(align_dir), "align") / "shared.npy", Path(align_dir) / "index.parquet", "align")


def fmri_trial_samples(samples_dir: Path, trials_path: Path, lag_s: float | tuple[float, float],
                       anchor: str, rounding: str = "nearest") -> dict[str, StimulusMatrix]:
    """The fmri stage's sample of every trial, flattened: {subject: StimulusMatrix (n_trials, d)}
    whose ``stimuli`` are the trials' images (repeated images appear once per presentation).

    Rendered pictures become 3*H*W pixel vectors; betas and volume keep the subject's own voxels.
    With every-TR samples, ``lag_s``, ``anchor`` and ``rounding`` pick each trial's volume (see
    :meth:`FmriSamples.trial_rows`).
    """
    data = FmriSamples.open(_need(samples_dir, "fmri"))
    trials = pd.read_parquet(_need(trials_path, "trials"))
    rows = data.trial_rows(trials, lag_s, anchor, rounding)
    voxels = data.meta.get("voxels", {})
    out = {}
    for subject, group in trials.groupby("subject", sort=True):
        chosen = rows[group.index.to_numpy()]
        order = np.argsort(chosen, kind="stable")  # read the memmap front to back
        flat = np.asarray(data.samples[chosen[order]], dtype=np.float32).reshape(len(chosen), -1)
        if subject in voxels and data.meta["method"] in ("betas", "volume"):
            flat = flat[:, :voxels[subject]]
        out[subject] = StimulusMatrix(f"trials/{subject}", flat, tuple(group["image_name"].to_numpy()[order]))
    return out


def fmri_samples(per_trial: dict[str, StimulusMatrix]) -> dict[str, StimulusMatrix]:
    """Trial samples (:func:`fmri_trial_samples`) averaged per (subject, image): {subject: StimulusMatrix}."""
    return {subject: average_repeats(trials, f"samples/{subject}") for subject, trials in per_trial.items()}


def first_presentations(trials: pd.DataFrame) -> dict[str, list[str]]:
    """{subject: its images in the order they were first shown (session, run, onset)}."""
    ordered = trials.sort_values(["subject", "session", "run", "onset"], kind="stable")
    return {subject: list(dict.fromkeys(group["image_name"])) for subject, group in ordered.groupby("subject", sort=True)}


def image_models(images_dir: Path, stimuli: pd.DataFrame) -> dict[str, StimulusMatrix]:
    """{file stem: StimulusMatrix (n_stimuli, d)} for every entry of the images manifest; rows are
    ``stimuli.parquet``'s, which the manifest's row count must match."""
    manifest_path = _need(Path(images_dir) / "manifest.json", "embed_images")
    manifest = json.loads(manifest_path.read_text())
    if manifest["rows"] != len(stimuli):
        raise NeurolatentError(f"{manifest_path}: {manifest['rows']} rows, stimuli.parquet has {len(stimuli)} "
                               "(rerun embed_images)")
    names = tuple(stimuli["image_name"])
    out = {}
    for entry in manifest["models"].values():
        stem = Path(entry["file"]).stem
        out[stem] = StimulusMatrix(stem, np.load(Path(images_dir) / entry["file"]).astype(np.float32), names)
    return out


def image_layers(images_dir: Path) -> pd.DataFrame:
    """The transformer entries of the images manifest, a row each: ``model`` (the entry's name as
    :func:`image_models` gives it), ``network`` (the ``embed.image_models`` entry it is a layer
    of), ``layer`` (``last`` or a hidden state's index), ``hidden_states`` (how many the network
    has; None when only ``last`` was embedded). Manifests older than ``embed.layers``: no rows."""
    manifest = json.loads(_need(Path(images_dir) / "manifest.json", "embed_images").read_text())
    rows = [{"model": Path(entry["file"]).stem, "network": entry["model"], "layer": entry["layer"],
             "hidden_states": entry.get("hidden_states")}
            for entry in manifest["models"].values() if entry.get("layer") is not None]
    return pd.DataFrame(rows, columns=["model", "network", "layer", "hidden_states"])


def planted_features(truth_dir: Path) -> dict[str, StimulusMatrix]:
    """The synthetic data's planted truth as image models, or {} for real data: ``planted_<family>``
    for each feature family a ROI's responses were planted from (``truth.json``'s ``families``), and
    ``planted``, every family's z-scored features side by side (the whole truth)."""
    truth_json, table = Path(truth_dir) / "truth.json", Path(truth_dir) / "stimuli.tsv"
    if not (truth_json.is_file() and table.is_file()) or not json.loads(truth_json.read_text()).get("planted"):
        return {}
    names = tuple(pd.read_csv(table, sep="\t")["image_name"])
    families = {family: np.load(Path(truth_dir) / f"features_{family}.npy")
                for family in json.loads(truth_json.read_text())["families"]}
    models = {f"planted_{family}": StimulusMatrix(f"planted_{family}", values.astype(np.float32), names)
              for family, values in families.items()}
    every = np.hstack([zscore(values) for values in families.values()]).astype(np.float32)
    return {"planted": StimulusMatrix("planted", every, names), **models}


def voxel_labels(samples_dir: Path) -> pd.DataFrame | None:
    """Which ROI and hemisphere each sample column of each subject is (columns subject, column, roi,
    hemisphere), from the fmri stage's ``voxels.parquet``; None where the samples carry no ROI labels
    (a brain mask, rendered pictures)."""
    path = Path(samples_dir) / "voxels.parquet"
    return pd.read_parquet(path) if path.is_file() else None


def region_columns(labels: pd.DataFrame, subject: str) -> dict[str, np.ndarray]:
    """{ROI: the subject's sample columns in it (both hemispheres)} from the fmri stage's voxel
    labels, early to late visual areas, the ROIs the subject has."""
    own = labels[labels["subject"] == subject]
    return {roi: own.loc[own["roi"] == roi, "column"].to_numpy() for roi in bids.ROIS if (own["roi"] == roi).any()}


def roi_columns(samples: dict[str, StimulusMatrix], labels: pd.DataFrame, roi: str) -> dict[str, StimulusMatrix]:
    """Each subject's ``samples`` restricted to the columns of ``roi`` (both hemispheres)."""
    out = {}
    for subject, matrix in samples.items():
        own = labels[(labels["subject"] == subject) & (labels["roi"] == roi)]["column"].to_numpy()
        if own.size == 0:
            raise NeurolatentError(f"voxels.parquet: sub-{subject} has no voxel of {roi}")
        out[subject] = StimulusMatrix(f"{matrix.name}/{roi}", matrix.matrix[:, own], matrix.stimuli)
    return out
