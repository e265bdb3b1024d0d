"""Stage ``fmri``: one fMRI sample per trial (or per TR), streamed run by run into a memmap.

Methods (``preprocess.method``), each on the runs of ``preprocess.space`` (raw, or fMRIPrep's T1w):

- ``volume``: the masked volume at the anchor (onset or offset) + ``lag_s``, from each run's
  series z-scored per voxel;
- ``betas``: single-trial response amplitudes from nilearn's GLM (LSA or LSS, Glover HRF, cosine
  drift), in percent signal change, z-scored per session and voxel;
- ``rendered``: the study's pictures of whole volumes (:mod:`neurolatent.science.render`);
- ``glmsingle``: no runs: release 2.0's single-trial betas (:mod:`neurolatent.io.glmsingle`), the
  ROI files for ``mask: region``, the whole-brain session files in the release's brain mask for
  ``mask: brain``; z-scored per session and voxel.

Masks (``preprocess.mask``) stay in their space (:mod:`neurolatent.io.masks`): the SPM ROI masks
on T1w runs, fMRIPrep's brain mask on T1w runs, an EPI mask on raw runs.

Outputs in ``data/processed/fmri/``: ``samples.npy`` (rows aligned with ``index.parquet``),
``samples.json`` (sample shape, dtype, method, voxel counts) and, for volume and betas, the masks.
Runs are processed in parallel (``preprocess.jobs`` processes, or a Dask cluster: ``compute.scheduler``),
each writing its rows of the memmap.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pandas as pd

from neurolatent.errors import NeurolatentError
from neurolatent.io import bids, glmsingle
from neurolatent.io.bids import TR_S
from neurolatent.io.files import allocate_npy, atomic_dir, write_json
from neurolatent.io.masks import brain_mask, region_mask, roi_masks, voxel_rois
from neurolatent.io.nifti import load_run
from neurolatent.pipeline.parallel import parallel_map
from neurolatent.science.render import render_volumes
from neurolatent.science.sampling import anchor_times, lag_centre, masked_samples, volume_index
from neurolatent.science.stats import zscore_groups


@dataclass(frozen=True)
class _Run:
    """One run's job: where its samples go in the memmap and what its trials are."""

    path: Path
    rows: np.ndarray  # memmap rows: one per trial, or one per volume (every-TR pictures)
    onsets_s: np.ndarray
    durations_s: np.ndarray
    affine: np.ndarray | None  # volume and betas: the first run's affine, which the mask and every run share
    mask: np.ndarray | None  # (X, Y, Z) bool, volume and betas


def _write_run(run: _Run, samples_path: Path, preprocess: SimpleNamespace) -> int:
    """Compute one run's samples and write them into their rows of ``samples.npy``."""
    image = nib.load(run.path)
    if run.affine is not None and not np.allclose(image.affine, run.affine, atol=1e-4):
        raise NeurolatentError(f"{run.path}: affine differs from the subject's first run, whose grid its mask is on")
    samples = np.load(samples_path, mmap_mode="r+")
    if preprocess.method == "rendered":
        volumes, tr = load_run(run.path)
        if preprocess.render.samples == "trials":
            times = anchor_times(run.onsets_s, run.durations_s, preprocess.anchor) + lag_centre(preprocess.lag_s)
            volumes = volumes[volume_index(times, tr, len(volumes), preprocess.rounding)]
        render = preprocess.render
        samples[run.rows] = render_volumes(volumes, image.affine, render.engine, render.size, render.threshold,
                                           render.style)
    else:
        series, tr = load_run(run.path, run.mask)
        values = masked_samples(series, tr, run.onsets_s, run.durations_s, preprocess.method, preprocess.lag_s,
                                preprocess.anchor, preprocess.glm, preprocess.noise_model, preprocess.high_pass_hz,
                                preprocess.rounding)
        samples[run.rows, : values.shape[1]] = values
    samples.flush()
    return len(run.rows)


def _tr_index(run_trials: pd.DataFrame, key: tuple[str, int, int], n_volumes: int, tr_s: float) -> pd.DataFrame:
    """One row per volume of a run; trial and image are the latest trial begun by that volume."""
    times = np.arange(n_volumes) * tr_s
    which = np.searchsorted(run_trials["onset"].to_numpy(), times, side="right") - 1
    shown = which >= 0
    table = pd.DataFrame({"subject": key[0], "session": key[1], "run": key[2], "volume": np.arange(n_volumes)})
    table["trial"] = pd.array(np.where(shown, run_trials["trial"].to_numpy()[np.maximum(which, 0)], 0), dtype="Int64")
    table.loc[~shown, "trial"] = pd.NA
    table["image_name"] = pd.Series(run_trials["image_name"].to_numpy()[np.maximum(which, 0)]).where(shown)
    return table


def _masks(preprocess: SimpleNamespace, raw: Path, first_runs: dict[str, tuple[str, int, int]],
           references: dict[str, nib.Nifti1Image], out: Path) -> tuple[dict[str, np.ndarray], dict[str, list]]:
    """Each subject's voxel mask on its runs' grid (the ROI region, or the brain), also written
    into ``out`` as ``mask_sub-X.nii.gz``; and, for the region, the (hemisphere, roi) of each of its
    voxels in C order (the samples' column order)."""
    masks, labels = {}, {}
    for subject, reference in references.items():
        if preprocess.mask == "region":
            rois = roi_masks(raw, subject, preprocess.rois, reference)
            mask_image = region_mask(rois, reference.affine, subject)
        else:
            mask_image = brain_mask(raw, preprocess.space, first_runs[subject], reference)
        masks[subject] = np.asanyarray(mask_image.dataobj) > 0
        if preprocess.mask == "region":
            labels[subject] = voxel_rois(rois, masks[subject])
        nib.save(nib.Nifti1Image(masks[subject].astype(np.uint8), reference.affine), out / f"mask_sub-{subject}.nii.gz")
    return masks, labels


def _glmsingle_samples(preprocess: SimpleNamespace, raw: Path, trials: pd.DataFrame, out: Path
                       ) -> tuple[dict, dict]:
    """Each subject's release betas of its trials, z-scored per session: {subject: (n, voxels)
    float32}, and with mask: region the (hemisphere, roi) of each column. With mask: brain the
    release's brain masks are written into ``out`` (ROI betas carry no voxel positions, so mask:
    region writes none)."""
    folder = Path(raw) / bids.GLMSINGLE_DIR
    values, labels = {}, {}
    for subject, rows in trials.groupby("subject", sort=False):
        release = glmsingle.release_rows(folder, subject, rows)
        if preprocess.mask == "region":
            betas, labels[subject] = glmsingle.roi_betas(folder, subject, preprocess.rois, release)
        else:
            mask_image = glmsingle.brain_mask(folder, subject)
            mask = np.asanyarray(mask_image.dataobj) > 0
            betas = glmsingle.brain_betas(folder, subject, rows, release, mask)
            nib.save(nib.Nifti1Image(mask.astype(np.uint8), mask_image.affine), out / f"mask_sub-{subject}.nii.gz")
        values[subject] = zscore_groups(betas, rows["session"].to_numpy())
    return values, labels


def _write_labels(labels: dict[str, list[tuple[str, str]]], rois: list[str], out: Path, meta: dict) -> None:
    """``voxels.parquet`` (subject, column, roi, hemisphere: each sample column's ROI) and the
    samples.json entry that says which ROIs the samples resolve, or why only their union."""
    if labels:
        table = pd.DataFrame([{"subject": subject, "column": column, "roi": roi, "hemisphere": hemisphere}
                              for subject, own in labels.items() for column, (hemisphere, roi) in enumerate(own)])
        table.to_parquet(out / "voxels.parquet", index=False)
        meta["rois"] = [roi for roi in rois if roi in set(table["roi"])]
    else:
        meta["rois"] = None
        meta["rois_note"] = ("no ROI labels: rendered pictures have no voxels, and a brain mask no ROI masks; "
                             "analyses see the union only")


def _volume_rows(runs: list[tuple[tuple[str, int, int], pd.DataFrame]], raw: Path,
                 references: dict[str, nib.Nifti1Image]) -> tuple[pd.DataFrame, dict]:
    """Every-TR pictures: the index, a row per volume of each run in order (:func:`_tr_index`), and
    {run key: its rows of the memmap}."""
    parts, row_of_run, start = [], {}, 0
    for key, rows in runs:
        n_volumes = nib.load(raw / rows["bold_path"].iloc[0]).shape[3]
        row_of_run[key] = np.arange(start, start + n_volumes)
        start += n_volumes
        tr = float(references[key[0]].header.get_zooms()[3]) or TR_S
        parts.append(_tr_index(rows, key, n_volumes, tr))
    return pd.concat(parts, ignore_index=True), row_of_run


def _write_rows(samples_path: Path, parts: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """Write each (rows of the memmap, (n_rows, n_voxels) values) into the leading columns of those
    rows of ``samples.npy`` (a subject's voxels; the rest is padding)."""
    samples = np.load(samples_path, mmap_mode="r+")
    for rows, own in parts:
        samples[rows, : own.shape[1]] = own
    samples.flush()


def _zscore_sessions(samples_path: Path, trials: pd.DataFrame, widths: dict[str, int]) -> None:
    """Z-score each subject's samples per session and voxel, in place (its first ``widths[subject]``
    columns: the rest is padding)."""
    samples = np.load(samples_path, mmap_mode="r+")
    for subject, width in widths.items():
        own = trials["subject"].to_numpy() == subject
        samples[own, :width] = zscore_groups(np.asarray(samples[own, :width]), trials.loc[own, "session"].to_numpy())
    samples.flush()


def run(params: SimpleNamespace, paths: SimpleNamespace) -> dict:
    """The stage on its declared ``params`` and ``paths`` (the registry's files); returns its metrics."""
    preprocess = params.preprocess
    trials = pd.read_parquet(paths.trials).reset_index(drop=True)
    runs = [(key, rows) for key, rows in trials.groupby(["subject", "session", "run"], sort=False)]
    first_run = trials.drop_duplicates("subject").set_index("subject")["bold_path"]
    references = ({} if preprocess.method == "glmsingle"
                  else {s: nib.load(Path(paths.raw) / p) for s, p in first_run.items()})

    with atomic_dir(Path(paths.out)) as out:
        meta: dict = {"method": preprocess.method}
        masks: dict[str, np.ndarray] = {}
        labels: dict[str, list[tuple[str, str]]] = {}
        row_of_run = {key: rows.index.to_numpy() for key, rows in runs}
        index = trials
        if preprocess.method == "rendered":
            shape, dtype = (3, preprocess.render.size, preprocess.render.size), np.uint8
            if preprocess.render.samples == "all_trs":
                index, row_of_run = _volume_rows(runs, Path(paths.raw), references)
            meta["render"] = preprocess.render.model_dump()
        elif preprocess.method == "glmsingle":
            release, labels = _glmsingle_samples(preprocess, Path(paths.raw), trials, out)
            widths = {s: v.shape[1] for s, v in release.items()}
        else:
            first_runs = {s: tuple(rows[["subject", "session", "run"]].iloc[0]) for s, rows in trials.groupby("subject")}
            masks, labels = _masks(preprocess, Path(paths.raw), first_runs, references, out)
            widths = {s: int(m.sum()) for s, m in masks.items()}
        if preprocess.method != "rendered":
            shape, dtype = (max(widths.values()),), np.float32
            meta["voxels"] = widths
            meta["padding"] = "rows of a subject with fewer voxels are zero beyond its own count"
        samples_path = out / "samples.npy"
        allocate_npy(samples_path, dtype, (len(index),) + shape)

        if preprocess.method == "glmsingle":
            _write_rows(samples_path, [(trials.index[trials["subject"] == subject].to_numpy(), values)
                                       for subject, values in release.items()])
        else:
            # absolute paths: a Dask worker (compute.scheduler) may run in another folder
            jobs = [_Run(Path(paths.raw).absolute() / rows["bold_path"].iloc[0], row_of_run[key],
                         rows["onset"].to_numpy(), rows["duration"].to_numpy(),
                         references[key[0]].affine if masks else None, masks.get(key[0]))
                    for key, rows in runs]
            parallel_map(partial(_write_run, samples_path=samples_path.absolute(), preprocess=preprocess), jobs,
                         preprocess.jobs, desc=f"fmri {preprocess.method}", unit="run",
                         scheduler=params.compute.scheduler, address=params.compute.dask_address)

        if preprocess.method == "betas":
            _zscore_sessions(samples_path, trials, meta["voxels"])
        columns = [c for c in ("subject", "session", "run", "trial", "volume", "onset", "image_name", "category")
                   if c in index.columns]
        index[columns].to_parquet(out / "index.parquet", index=False)
        _write_labels(labels, list(preprocess.rois), out, meta)
        meta.update(sample_shape=list(shape), dtype=np.dtype(dtype).name, n_samples=len(index))
        write_json(meta, out / "samples.json")
    return {"fmri.samples": len(index), "fmri.sample_size": int(np.prod(shape)), "fmri.runs": len(runs)}
