"""Stage ``fmri``: one fMRI sample per trial (or per TR), streamed run by run into a memmap.

Methods (``preprocess.method``):

- ``volume``: the masked volume at the anchor (onset or offset) + ``lag_s``, from each run's
  series z-scored per voxel;
- ``betas``: single-trial response amplitudes from nilearn's GLM (LSA or LSS, Glover HRF, cosine
  drift), in percent signal change, z-scored per session and voxel;
- ``rendered``: the study's pictures of whole volumes (see :mod:`neurolatent.render`).

Outputs in ``data/processed/fmri/``: ``samples.npy`` (rows aligned with ``index.parquet``),
``samples.json`` (sample shape, dtype, method, voxel counts) and, for volume and betas, the masks.
"""

from __future__ import annotations

import io
import json
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from nilearn.glm.first_level import make_first_level_design_matrix, run_glm
from nilearn.image import resample_to_img
from nilearn.masking import compute_epi_mask
from tqdm import tqdm

from neurolatent import bids
from neurolatent.config import PreprocessParams
from neurolatent.errors import NeurolatentError
from neurolatent.files import atomic_dir, write_json

log = logging.getLogger(__name__)

#: BOLD5000's ROI mask names on disk, typos included (FORMAT.md): LO for LOC, RRSC for RSC
ROI_SPELLINGS = {"EarlyVis": ("EarlyVis",), "LOC": ("LOC", "LO"), "OPA": ("OPA",), "PPA": ("PPA",),
                 "RSC": ("RSC", "RRSC")}


# ----------------------------------------------------------------------------- science on arrays


def zscore_time(series: np.ndarray) -> np.ndarray:
    """Z-score each voxel over time. series: (n_volumes, n_voxels) -> same shape, float32.
    A constant voxel becomes zeros."""
    mean = series.mean(axis=0)
    sd = series.std(axis=0)
    return ((series - mean) / np.where(sd > 0, sd, 1.0)).astype(np.float32)


def anchor_times(onsets_s: np.ndarray, durations_s: np.ndarray, anchor: str) -> np.ndarray:
    """Stimulus onset or offset of each trial, seconds from the run's first volume."""
    return onsets_s + (durations_s if anchor == "offset" else 0.0)


def volume_at_lag(series: np.ndarray, tr_s: float, times_s: np.ndarray,
                  lag_s: float | tuple[float, float]) -> np.ndarray:
    """The signal of each trial at ``time + lag``.

    Parameters
    ----------
    series : ndarray, shape (n_volumes, n_voxels); volume k was acquired at k * tr_s seconds
    times_s : ndarray, shape (n_trials,), anchor times in seconds
    lag_s : a number: the nearest volume to time + lag; a window (a, b): the mean of the
        linearly interpolated signal at time + a, time + a + 0.5 s, ..., time + b

    Returns
    -------
    ndarray, shape (n_trials, n_voxels), float32
    """
    last = series.shape[0] - 1
    if not isinstance(lag_s, tuple):
        frames = np.clip(np.rint((times_s + lag_s) / tr_s).astype(int), 0, last)
        return series[frames].astype(np.float32)
    offsets = np.arange(lag_s[0], lag_s[1] + 1e-9, 0.5)
    points = np.clip((times_s[:, None] + offsets[None, :]) / tr_s, 0, last)  # (n_trials, n_points)
    low = np.floor(points).astype(int)
    high = np.minimum(low + 1, last)
    weight = (points - low)[..., None].astype(np.float32)
    values = series[low] * (1 - weight) + series[high] * weight  # (n_trials, n_points, n_voxels)
    return values.mean(axis=1).astype(np.float32)


def trial_design(onsets_s: np.ndarray, durations_s: np.ndarray, n_volumes: int, tr_s: float,
                 high_pass_hz: float, target: int | None = None) -> np.ndarray:
    """nilearn design matrix of single-trial regressors (Glover HRF) plus cosine drift and constant.

    ``target=None`` gives LSA: one regressor per trial, in trial order, first. ``target=i`` gives
    the LSS model of trial i: its own regressor first, then one regressor for all other trials.

    Returns
    -------
    ndarray, shape (n_volumes, n_regressors)
    """
    if target is None:
        names = [f"trial{i:03d}" for i in range(len(onsets_s))]
    else:
        names = ["other"] * len(onsets_s)
        names[target] = "target"
    events = pd.DataFrame({"onset": onsets_s, "duration": durations_s, "trial_type": names})
    design = make_first_level_design_matrix(np.arange(n_volumes) * tr_s, events, hrf_model="glover",
                                            drift_model="cosine", high_pass=high_pass_hz)
    first = ["target"] if target is not None else [f"trial{i:03d}" for i in range(len(onsets_s))]
    rest = [c for c in design.columns if c not in first]
    return design[first + rest].to_numpy()


def trial_betas(series: np.ndarray, onsets_s: np.ndarray, durations_s: np.ndarray, tr_s: float,
                glm: str = "lsa", noise_model: str = "ar1", high_pass_hz: float = 1 / 128) -> np.ndarray:
    """Single-trial response amplitudes of one run with nilearn's GLM.

    Parameters
    ----------
    series : ndarray, shape (n_volumes, n_voxels), raw intensities
    onsets_s, durations_s : ndarray, shape (n_trials,), seconds
    glm : "lsa" (one model, all trials) or "lss" (one model per trial: the trial vs all others)

    Returns
    -------
    ndarray, shape (n_trials, n_voxels), float32, percent signal change per unit peak response
    """
    mean = series.mean(axis=0)
    psc = 100.0 * (series / np.where(mean > 0, mean, 1.0) - 1.0)
    n_volumes, n_trials = series.shape[0], len(onsets_s)

    def fit(design: np.ndarray, n_keep: int) -> np.ndarray:
        labels, results = run_glm(psc, design, noise_model=noise_model)
        betas = np.empty((design.shape[1], psc.shape[1]))
        for label, result in results.items():
            betas[:, labels == label] = result.theta
        return betas[:n_keep]

    if glm == "lsa":
        return fit(trial_design(onsets_s, durations_s, n_volumes, tr_s, high_pass_hz), n_trials).astype(np.float32)
    out = np.empty((n_trials, psc.shape[1]), dtype=np.float32)
    for i in range(n_trials):
        out[i] = fit(trial_design(onsets_s, durations_s, n_volumes, tr_s, high_pass_hz, target=i), 1)[0]
    return out


def zscore_groups(samples: np.ndarray, groups: np.ndarray) -> None:
    """Z-score the rows of each group (a session) per column, in place. samples: (n, d)."""
    for group in np.unique(groups):
        rows = np.flatnonzero(groups == group)
        block = samples[rows]
        sd = block.std(axis=0)
        samples[rows] = (block - block.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


# ----------------------------------------------------------------------------- masks and I/O


def region_mask(raw_root: Path, truth_dir: Path, subject: str, reference: nib.Nifti1Image,
                rois: list[str]) -> nib.Nifti1Image:
    """The visual region of a subject on its BOLD grid.

    Synthetic data: the planted region (``truth/roi_mask.nii.gz``). Real data: the union of the
    subject's SPM ROI masks (``derivatives/spm/sub-X/sub-X_mask-{LH,RH}<roi>.nii.gz``, BOLD5000's
    misspellings accepted), resampled (nearest) to the BOLD grid when it differs.
    """
    planted = truth_dir / "roi_mask.nii.gz"
    if planted.is_file():
        mask = nib.load(planted)
    else:
        folder = raw_root / "derivatives" / "spm" / f"sub-{subject}"
        found = []
        for roi in rois:
            for hemi in ("LH", "RH"):
                paths = [folder / f"sub-{subject}_mask-{hemi}{name}.nii.gz" for name in ROI_SPELLINGS[roi]]
                path = next((p for p in paths if p.is_file()), None)
                if path is None:
                    raise NeurolatentError(f"{paths[0]}: ROI mask missing (preprocess.rois names {roi})")
                found.append(path)
        images = [nib.load(p) for p in found]
        data = np.zeros(images[0].shape, dtype=bool)
        for image in images:
            if image.shape != data.shape or not np.allclose(image.affine, images[0].affine):
                image = resample_to_img(image, images[0], interpolation="nearest", force_resample=True,
                                        copy_header=True)
            data |= np.asanyarray(image.dataobj) > 0
        mask = nib.Nifti1Image(data.astype(np.uint8), images[0].affine)
    if mask.shape != reference.shape[:3] or not np.allclose(mask.affine, reference.affine, atol=1e-4):
        mask = resample_to_img(mask, nib.Nifti1Image(np.zeros(reference.shape[:3], np.uint8), reference.affine),
                               interpolation="nearest", force_resample=True, copy_header=True)
    if not np.asanyarray(mask.dataobj).any():
        raise NeurolatentError(f"{planted if planted.is_file() else raw_root}: the region mask of sub-{subject} is empty")
    return mask


def read_nifti(path: Path) -> tuple[np.ndarray, nib.Nifti1Header]:
    """A NIfTI file's data array (as stored, scaled when the header says so) and its header.

    ``.nii.gz`` files are decompressed in one call by libdeflate, about four times faster than the
    zlib stream nibabel reads through (``benchmarks/bench_fmri_throughput.py``); the array is a view
    of the decompressed bytes, not a copy. Anything libdeflate cannot read (a multi-member gzip, a
    file over 4 GiB, NIfTI-2) goes through nibabel.
    """
    path = Path(path)
    if path.name.endswith(".gz"):
        import deflate

        try:
            raw = deflate.gzip_decompress(path.read_bytes())
        except deflate.DeflateError:
            raw = None
        if raw is not None and np.frombuffer(raw[:4], "<i4")[0] not in (348, 348 << 24):
            raw = None  # not NIfTI-1 (NIfTI-2's header is 540 bytes): nibabel reads it
        if raw is not None:
            header = nib.Nifti1Header.from_fileobj(io.BytesIO(raw[:352]), check=False)
            shape = header.get_data_shape()
            data = np.frombuffer(raw, header.get_data_dtype(), count=int(np.prod(shape)),
                                 offset=int(header.get_data_offset())).reshape(shape, order="F")
            slope, inter = header.get_slope_inter()
            if slope not in (None, 1.0) or inter not in (None, 0.0):
                data = data * (1.0 if slope is None else slope) + (0.0 if inter is None else inter)
            return data, header
    image = nib.load(path)
    return np.asanyarray(image.dataobj), image.header


def load_run(path: Path, mask: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """One BOLD run as (n_volumes, n_voxels) float32 inside ``mask`` (or the 4D array), and its TR.

    Raises NeurolatentError when the run has NaN or infinite values.
    """
    data, header = read_nifti(path)
    series = (data[mask].T if mask is not None else np.moveaxis(data, 3, 0)).astype(np.float32)
    if not np.isfinite(series).all():
        raise NeurolatentError(f"{path}: BOLD run has NaN or infinite values")
    return series, float(header.get_zooms()[3]) or bids.TR_S


def masked_run(path: Path, mask: np.ndarray, onsets_s: np.ndarray, durations_s: np.ndarray,
               params: PreprocessParams) -> np.ndarray:
    """The ``volume`` or ``betas`` samples of one run: (n_trials, n_voxels in mask) float32."""
    series, tr = load_run(path, mask)
    if params.method == "volume":
        return volume_at_lag(zscore_time(series), tr, anchor_times(onsets_s, durations_s, params.anchor), params.lag_s)
    return trial_betas(series, onsets_s, durations_s, tr, params.glm, params.noise_model, params.high_pass_hz)


def rendered_run(path: Path, params: PreprocessParams, onsets_s: np.ndarray | None = None,
                 durations_s: np.ndarray | None = None) -> np.ndarray:
    """The ``rendered`` samples of one run: every volume (``onsets_s=None``) or the volume nearest
    to each trial's anchor + the mean of ``lag_s``. Returns (n, 3, size, size) uint8."""
    from neurolatent.render import render_volumes

    image = nib.load(path)
    volumes, tr = load_run(path)
    if onsets_s is not None:
        times = anchor_times(onsets_s, durations_s, params.anchor)
        lag = params.lag_s if not isinstance(params.lag_s, tuple) else sum(params.lag_s) / 2
        volumes = volumes[np.clip(np.rint((times + lag) / tr).astype(int), 0, volumes.shape[0] - 1)]
    return render_volumes(volumes, image.affine, params.render)


# ----------------------------------------------------------------------------- the stage

# Filled before the worker pool forks; workers read it and write their rows into the memmap.
_JOB: dict = {}


def _process_run(key: tuple[str, int, int]) -> int:
    job = _JOB
    params: PreprocessParams = job["params"]
    subject = key[0]
    trials = job["runs"].get_group(key)
    path = job["raw"] / trials["bold_path"].iloc[0]
    image = nib.load(path)
    if not np.allclose(image.affine, job["affines"][subject], atol=1e-4):
        raise NeurolatentError(f"{path}: affine differs from the subject's first run")
    onsets, durations = trials["onset"].to_numpy(), trials["duration"].to_numpy()
    samples = np.load(job["samples_path"], mmap_mode="r+")
    if params.method == "rendered" and params.render.samples == "all_trs":
        samples[job["tr_rows"][key]] = rendered_run(path, params)
    elif params.method == "rendered":
        samples[trials["row"].to_numpy()] = rendered_run(path, params, onsets, durations)
    else:
        values = masked_run(path, job["masks"][subject], onsets, durations, params)
        samples[trials["row"].to_numpy(), : values.shape[1]] = values
    samples.flush()
    return len(trials)


def run_fmri(params: PreprocessParams, raw_dir: Path, truth_dir: Path, trials_path: Path, out_dir: Path) -> dict:
    """The stage: write samples.npy, index.parquet and samples.json into ``out_dir``."""
    raw_dir, truth_dir = Path(raw_dir), Path(truth_dir)
    trials = pd.read_parquet(trials_path).reset_index(drop=True)
    trials["row"] = np.arange(len(trials))
    keys = [tuple(k) for k in trials[["subject", "session", "run"]].drop_duplicates().to_numpy()]
    first_run = trials.drop_duplicates("subject").set_index("subject")["bold_path"]
    references = {s: nib.load(raw_dir / p) for s, p in first_run.items()}
    affines = {s: image.affine for s, image in references.items()}

    with atomic_dir(Path(out_dir)) as out:
        meta: dict = {"method": params.method}
        masks: dict[str, np.ndarray] = {}
        tr_rows: dict = {}
        if params.method == "rendered":
            shape, dtype = (3, params.render.size, params.render.size), np.uint8
            if params.render.samples == "all_trs":
                index_parts, start = [], 0
                for key in keys:
                    run_trials = trials[(trials["subject"] == key[0]) & (trials["session"] == key[1]) & (trials["run"] == key[2])]
                    n_volumes = nib.load(raw_dir / run_trials["bold_path"].iloc[0]).shape[3]
                    tr_rows[key] = np.arange(start, start + n_volumes)
                    start += n_volumes
                    index_parts.append(_tr_index(run_trials, key, n_volumes, float(references[key[0]].header.get_zooms()[3]) or bids.TR_S))
                index = pd.concat(index_parts, ignore_index=True)
            else:
                index = trials
            meta["render"] = params.render.model_dump()
        else:
            for subject, reference in references.items():
                if params.mask == "region":
                    mask_image = region_mask(raw_dir, truth_dir, subject, reference, params.rois)
                else:
                    mask_image = compute_epi_mask(nib.Nifti1Image(np.asanyarray(reference.dataobj).mean(axis=3), reference.affine))
                masks[subject] = np.asanyarray(mask_image.dataobj) > 0
                nib.save(nib.Nifti1Image(masks[subject].astype(np.uint8), reference.affine), out / f"mask_sub-{subject}.nii.gz")
            widths = {s: int(m.sum()) for s, m in masks.items()}
            shape, dtype = (max(widths.values()),), np.float32
            meta["voxels"] = widths
            meta["padding"] = "rows of a subject with fewer voxels are zero beyond its own count"
            index = trials
        samples_path = out / "samples.npy"
        np.lib.format.open_memmap(samples_path, mode="w+", dtype=dtype, shape=(len(index),) + shape).flush()

        _JOB.update(params=params, raw=raw_dir, affines=affines, masks=masks, tr_rows=tr_rows,
                    samples_path=samples_path, runs=trials.groupby(["subject", "session", "run"], sort=False))
        try:
            jobs = min(params.jobs, len(keys))
            if jobs > 1:
                with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
                    list(tqdm(pool.map(_process_run, keys), total=len(keys), desc=f"fmri {params.method}", unit="run"))
            else:
                list(tqdm(map(_process_run, keys), total=len(keys), desc=f"fmri {params.method}", unit="run"))
        finally:
            _JOB.clear()

        if params.method == "betas":
            samples = np.load(samples_path, mmap_mode="r+")
            for subject, width in meta["voxels"].items():
                own = trials["subject"].to_numpy() == subject
                block = np.asarray(samples[own, :width])
                zscore_groups(block, trials.loc[own, "session"].to_numpy())
                samples[own, :width] = block
            samples.flush()
        columns = [c for c in ("subject", "session", "run", "trial", "volume", "onset", "image_name", "category")
                   if c in index.columns]
        index[columns].to_parquet(out / "index.parquet", index=False)
        meta.update(sample_shape=list(shape), dtype=np.dtype(dtype).name, n_samples=len(index))
        write_json(meta, out / "samples.json")
    return {"samples": len(index), "sample_size": int(np.prod(shape)), "runs": len(keys)}


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
