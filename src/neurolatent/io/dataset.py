"""A BOLD5000-layout folder written: the synthetic twin with its planted truth, or a linked subset
of a real copy. Either way the outputs appear whole or not at all (atomic folders).

The generative model itself is :mod:`neurolatent.science.synthetic`; this module lays its output
out as BOLD5000's files.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from nilearn import datasets
from PIL import Image
from tqdm import tqdm

from neurolatent.config import DataParams
from neurolatent.errors import NeurolatentError
from neurolatent.io import bids
from neurolatent.io.files import atomic_dir, save_npy, write_json
from neurolatent.io.nifti import write_nifti_gz
from neurolatent.io.schedule import events_text, load_schedule
from neurolatent.runtime import parallel_map
from neurolatent.science import synthetic
from neurolatent.science.rsa import rdm_upper
from neurolatent.science.stats import zscore

log = logging.getLogger(__name__)

DATASET_DESCRIPTION = {
    "Name": "BOLD5000 layout (neurolatent)",
    "BIDSVersion": "1.0.2",
}


def selected_schedule(data: DataParams) -> pd.DataFrame:
    """The trials of the configured subjects, sessions and runs, chronological.

    Raises NeurolatentError when the selection leaves a subject without runs.
    """
    parts = []
    for subject in data.subjects:
        table = load_schedule(subject, seed=data.synthetic.seed)
        if data.sessions is not None:
            table = table[table["session"].isin(data.sessions)]
        if data.runs is not None:
            table = table[table["run"].isin(data.runs)]
        if table.empty:
            raise NeurolatentError(f"params.yaml: data.sessions/data.runs select no run of {subject}")
        parts.append(table)
    return pd.concat(parts, ignore_index=True)


# ----------------------------------------------------------------------------- synthetic


@dataclass
class _Brain:
    """The MNI152 brain the synthetic runs are drawn on."""

    mask: np.ndarray  # (X, Y, Z) bool
    affine: np.ndarray  # (4, 4)
    intensity: np.ndarray  # (n_brain,) template value in (0, 1]
    roi: np.ndarray  # (X, Y, Z) bool


def _load_brain(voxel_size_mm: int, roi_radius_mm: float) -> _Brain:
    template = datasets.load_mni152_template(resolution=voxel_size_mm)
    mask = datasets.load_mni152_brain_mask(resolution=voxel_size_mm).get_fdata() > 0
    intensity = template.get_fdata()[mask]
    return _Brain(mask, template.affine, intensity, synthetic.roi_mask(mask, template.affine, roi_radius_mm))


def _write_stimuli(stimuli: pd.DataFrame, root: Path, size: int) -> np.ndarray:
    """Draw and write every image once; return features of the pixels as written (JPEG-decoded).

    Returns ndarray, shape (n_images, 18), rows in ``stimuli`` order.
    """
    features = np.empty((len(stimuli), len(synthetic.FEATURE_NAMES)))
    for i, (name, category) in enumerate(tqdm(stimuli[["image_name", "category"]].to_numpy(),
                                              desc="stimuli", unit="img", mininterval=2)):
        path = root / bids.stimulus_path(category, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        encoded = io.BytesIO()
        Image.fromarray(synthetic.draw_image(name, category, size)).save(encoded, format="JPEG", quality=90)
        path.write_bytes(encoded.getvalue())
        features[i] = synthetic.image_features(np.asarray(Image.open(encoded).convert("RGB")))
    return features


@dataclass(frozen=True)
class _Subject:
    """What one subject's runs are drawn from (intensity units; columns = brain voxels)."""

    baseline: np.ndarray  # (n_brain,)
    noise_sd: np.ndarray  # (n_brain,)
    patterns: np.ndarray  # (n_images, n_roi_voxels), unit sd per voxel


def _write_run(trials: pd.DataFrame, root: Path, brain: _Brain, subjects: dict[str, _Subject], roi_columns: np.ndarray,
               image_row: pd.Series, params) -> str:
    """One run's events.tsv, bold.json and bold.nii.gz; ``trials`` are its rows of the schedule."""
    subject_name, session, run = trials["subject"].iloc[0], int(trials["session"].iloc[0]), int(trials["run"].iloc[0])
    subject = subjects[subject_name]
    func = root / bids.func_dir(subject_name, session)
    func.mkdir(parents=True, exist_ok=True)
    (root / bids.events_path(subject_name, session, run)).write_bytes(events_text(trials))
    write_json({"RepetitionTime": bids.TR_S, "TaskName": bids.TASK, "Synthetic": True},
               func / f"{bids.run_stem(subject_name, session, run)}_bold.json")

    design = synthetic.trial_regressors(trials["onset"].astype(float).to_numpy(),
                                        trials["duration"].astype(float).to_numpy(), bids.N_VOLUMES, bids.TR_S)
    rows = image_row[trials["ImgName"].to_numpy()].to_numpy()
    rng = np.random.default_rng(synthetic.name_seed("run", params.seed, subject_name, session, run))
    series = synthetic.bold_timeseries(design, subject.patterns[rows], roi_columns, subject.baseline,
                                       subject.noise_sd, params.snr, params.drift_scale, rng, bids.TR_S)
    volume = np.zeros(brain.mask.shape + (bids.N_VOLUMES,), dtype=np.int16)
    volume[brain.mask] = np.clip(np.rint(series.T), 0, np.iinfo(np.int16).max).astype(np.int16)
    image = nib.Nifti1Image(volume, brain.affine)
    image.header.set_xyzt_units("mm", "sec")
    image.header["pixdim"][4] = bids.TR_S
    image.header.set_sform(brain.affine, code=4)
    image.header.set_qform(brain.affine, code=4)
    write_nifti_gz(image, root / bids.bold_path(subject_name, session, run))
    return bids.run_stem(subject_name, session, run)


def write_synthetic(data: DataParams, out_dir: Path, truth_dir: Path) -> dict:
    """Generate the synthetic BOLD5000 subset into ``out_dir`` and its truth into ``truth_dir``.

    Returns a summary (counts) for logging.
    """
    params = data.synthetic
    schedule = selected_schedule(data)
    schedule["category"] = schedule["ImgType"].map(bids.category_of)
    stimuli = (schedule.drop_duplicates("ImgName")[["ImgName", "category"]]
               .rename(columns={"ImgName": "image_name"}).sort_values("image_name").reset_index(drop=True))
    brain = _load_brain(params.voxel_size_mm, params.roi_radius_mm)
    roi_columns = np.flatnonzero(brain.roi[brain.mask])
    if roi_columns.size == 0:
        raise NeurolatentError("params.yaml: data.synthetic.roi_radius_mm leaves the planted region without voxels")

    with atomic_dir(out_dir) as root, atomic_dir(truth_dir) as truth:
        write_json(DATASET_DESCRIPTION | {"Synthetic": True}, root / "dataset_description.json")
        write_json({"RepetitionTime": bids.TR_S, "TaskName": bids.TASK},
                   root / f"task-{bids.TASK}_bold.json")
        (root / "participants.tsv").write_text(
            "participant_id\n" + "".join(f"sub-{s}\n" for s in data.subjects))

        features = _write_stimuli(stimuli, root, params.image_size)
        features_z = zscore(features)
        subjects = {}
        for subject in data.subjects:
            rng = np.random.default_rng(synthetic.name_seed("subject", params.seed, subject))
            baseline = 1000.0 * brain.intensity
            noise_sd = params.noise_percent / 100 * baseline * np.exp(rng.normal(0, 0.25, baseline.shape))
            patterns = synthetic.planted_patterns(features_z, roi_columns.size, rng)
            subjects[subject] = _Subject(baseline, noise_sd, patterns)
            save_npy(patterns.astype(np.float32), truth / f"patterns_sub-{subject}.npy")
            save_npy(noise_sd[roi_columns].astype(np.float32), truth / f"noise_sd_sub-{subject}.npy")

        runs = [rows for _, rows in schedule.groupby(["subject", "session", "run"], sort=True)]
        write = partial(_write_run, root=root, brain=brain, subjects=subjects, roi_columns=roi_columns,
                        image_row=pd.Series(np.arange(len(stimuli)), index=stimuli["image_name"]), params=params)
        parallel_map(write, runs, params.jobs, desc="runs", unit="run")

        stimuli.to_csv(truth / "stimuli.tsv", sep="\t", index=False)
        save_npy(features, truth / "features.npy")
        save_npy(rdm_upper(features_z, "correlation").astype(np.float32), truth / "feature_rdm.npy")
        write_nifti_gz(nib.Nifti1Image(brain.roi.astype(np.uint8), brain.affine), truth / "roi_mask.nii.gz")
        write_json({
            "planted": True,
            "snr": params.snr,
            "seed": params.seed,
            "feature_names": list(synthetic.FEATURE_NAMES),
            "roi_voxels": int(roi_columns.size),
            "brain_voxels": int(brain.mask.sum()),
            "files": {
                "stimuli.tsv": "image_name, category; row order of every array here (sorted image name)",
                "features.npy": "(n_images, 18) planted features of each image's pixels",
                "feature_rdm.npy": "(n_images*(n_images-1)/2,) 1 - Pearson r of z-scored features, upper triangle",
                "patterns_sub-X.npy": "(n_images, n_roi_voxels) subject X's planted response, unit sd per voxel",
                "noise_sd_sub-X.npy": "(n_roi_voxels,) noise sd of each region voxel, intensity units",
                "roi_mask.nii.gz": "the planted region; its voxels in C order are the pattern columns",
            },
        }, truth / "truth.json")
    return {"runs": len(runs), "trials": len(schedule), "images": len(stimuli), "roi_voxels": int(roi_columns.size)}


# ----------------------------------------------------------------------------- real BIDS


def _link(source: Path, target: Path, mode: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if mode == "hardlink":
        try:
            os.link(source, target)
            return
        except OSError:  # another filesystem, or links not allowed: copy instead
            pass
    shutil.copy2(source, target)


def select_bids(data: DataParams, out_dir: Path, truth_dir: Path) -> dict:
    """Link the configured subset of a real BOLD5000 copy into ``out_dir``.

    Takes each selected run's bold.nii.gz, bold.json and events.tsv, the stimuli those events
    name, the SPM ROI masks of each subject, and the dataset's top-level files.
    """
    bids_root, stimuli_root = Path(data.bids_root), Path(data.stimuli_root)
    for name, path in (("data.bids_root", bids_root), ("data.stimuli_root", stimuli_root)):
        if not path.is_dir():
            raise NeurolatentError(f"{path}: {name} is not a folder")
    presented = stimuli_root / bids.STIMULI_DIR.relative_to("BOLD5000_Stimuli")
    if not presented.is_dir():
        raise NeurolatentError(f"{presented}: missing; data.stimuli_root must be the BOLD5000_Stimuli folder")
    runs = bids.find_runs(bids_root, "bold.nii.gz")
    chosen = [key for key in runs if key[0] in data.subjects
              and (data.sessions is None or key[1] in data.sessions)
              and (data.runs is None or key[2] in data.runs)]
    for subject in data.subjects:
        if not any(key[0] == subject for key in chosen):
            raise NeurolatentError(f"{bids_root}: no task-5000scenes run of sub-{subject} in the selected sessions/runs")

    with atomic_dir(out_dir) as root, atomic_dir(truth_dir) as truth:
        for name in ("dataset_description.json", "participants.tsv", f"task-{bids.TASK}_bold.json", ".bidsignore"):
            if (bids_root / name).is_file():
                _link(bids_root / name, root / name, data.link)
        images: set[tuple[str, str]] = set()
        for subject, session, run in tqdm(sorted(chosen), desc="runs", unit="run"):
            for rel in (bids.bold_path(subject, session, run), bids.events_path(subject, session, run),
                        bids.func_dir(subject, session) / f"{bids.run_stem(subject, session, run)}_bold.json"):
                if (bids_root / rel).is_file():
                    _link(bids_root / rel, root / rel, data.link)
            events_file = bids_root / bids.events_path(subject, session, run)
            if events_file.is_file():
                events = pd.read_csv(events_file, sep="\t", dtype=str)
                for name, img_type in events[["ImgName", "ImgType"]].dropna().to_numpy():
                    try:
                        images.add((name, bids.category_of(img_type)))
                    except ValueError as exc:
                        raise NeurolatentError(f"{events_file}: {exc}") from None
        for subject in data.subjects:
            masks = bids_root / "derivatives" / "spm" / f"sub-{subject}"
            for mask in sorted(masks.glob(f"sub-{subject}_mask-*.nii.gz")):
                _link(mask, root / mask.relative_to(bids_root), data.link)
        for name, category in sorted(images):
            if not bids.is_safe_image_name(name):
                raise NeurolatentError(f"{bids_root}: image name {name!r} escapes the stimuli folder")
            rel = bids.stimulus_path(category, name)
            source = presented / rel.relative_to(bids.STIMULI_DIR)
            if not source.is_file():
                raise NeurolatentError(f"{source}: image named in the events is missing from data.stimuli_root")
            _link(source, root / rel, data.link)
        write_json({"planted": False, "source": "bids", "bids_root": str(bids_root)}, truth / "truth.json")
    return {"runs": len(chosen), "images": len(images)}


def write_dataset(data: DataParams, out_dir: Path, truth_dir: Path) -> dict:
    """Synthetic or real, by ``data.source``; returns counts for the log."""
    if data.source == "synthetic":
        return write_synthetic(data, Path(out_dir), Path(truth_dir))
    return select_bids(data, Path(out_dir), Path(truth_dir))
