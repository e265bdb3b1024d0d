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

from neurolatent.config import DataParams
from neurolatent.errors import NeurolatentError
from neurolatent.io import bids
from neurolatent.io.events import read_events
from neurolatent.io.files import atomic_dir, save_npy, write_json
from neurolatent.io.nifti import write_nifti_gz
from neurolatent.io.schedule import events_text, load_schedule
from neurolatent.runtime import parallel_map, progress
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


def _write_stimuli(stimuli: pd.DataFrame, root: Path, size: int) -> np.ndarray:
    """Draw and write every image once; return features of the pixels as written (JPEG-decoded).

    Returns ndarray, shape (n_images, 18), rows in ``stimuli`` order.
    """
    features = np.empty((len(stimuli), len(synthetic.FEATURE_NAMES)))
    for i, (name, category) in enumerate(progress(stimuli[["image_name", "category"]].to_numpy(),
                                                  desc="stimuli", unit="img")):
        path = root / bids.stimulus_path(category, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        encoded = io.BytesIO()
        Image.fromarray(synthetic.draw_image(name, category, size)).save(encoded, format="JPEG", quality=90)
        path.write_bytes(encoded.getvalue())
        features[i] = synthetic.image_features(np.asarray(Image.open(encoded).convert("RGB")))
    return features


def repeated_images() -> list[str]:
    """BOLD5000's 113 repeated images: those CSI1's real schedule shows more than once, sorted."""
    counts = load_schedule("CSI1")["ImgName"].value_counts()
    return sorted(counts[counts > 1].index)


@dataclass(frozen=True)
class _Subject:
    """What one subject's data are drawn from. Columns are the brain voxels of its T1w grid (C order)."""

    anatomy: synthetic.Anatomy
    baseline: np.ndarray  # (n_brain,) intensity units
    noise_sd: np.ndarray  # (n_brain,) intensity units
    patterns: np.ndarray  # (n_images, n_region_voxels), unit sd per voxel
    region_columns: np.ndarray  # (n_region_voxels,) positions of the region's voxels among the brain voxels


def _nifti(data: np.ndarray, affine: np.ndarray, tr_s: float | None = None) -> nib.Nifti1Image:
    image = nib.Nifti1Image(data, affine)
    image.header.set_sform(affine, code=1)
    image.header.set_qform(affine, code=1)
    if tr_s is not None:
        image.header.set_xyzt_units("mm", "sec")
        image.header["pixdim"][4] = tr_s
    return image


def _write_run(trials: pd.DataFrame, root: Path, subjects: dict[str, _Subject], image_row: pd.Series, forms: list[str],
               params) -> str:
    """One run: its events.tsv (always), the raw run (bold.nii.gz + bold.json: the anatomy sampled
    into the oblique native grid through the session's head position and the run's drift, then the
    scanner's noise) and fMRIPrep's T1w-space run and brain mask (motion undone)."""
    name, session, run = trials["subject"].iloc[0], int(trials["session"].iloc[0]), int(trials["run"].iloc[0])
    subject = subjects[name]
    anatomy = subject.anatomy
    func = root / bids.func_dir(name, session)
    func.mkdir(parents=True, exist_ok=True)
    (root / bids.events_path(name, session, run)).write_bytes(events_text(trials))
    design = synthetic.trial_regressors(trials["onset"].astype(float).to_numpy(),
                                        trials["duration"].astype(float).to_numpy(), bids.N_VOLUMES, bids.TR_S)
    responses = subject.patterns[image_row[trials["ImgName"].to_numpy()].to_numpy()]

    def series(kind: str, white_noise: bool) -> np.ndarray:
        rng = np.random.default_rng(synthetic.name_seed(kind, params.seed, name, session, run))
        return synthetic.bold_timeseries(design, responses, subject.region_columns, subject.baseline, subject.noise_sd,
                                         params.snr, params.drift_scale, rng, bids.TR_S, white_noise)

    if "T1w" in forms:
        volume = np.zeros(anatomy.brain.shape + (bids.N_VOLUMES,), dtype=np.int16)
        volume[anatomy.brain] = np.clip(np.rint(series("run", True).T), 0, np.iinfo(np.int16).max).astype(np.int16)
        (root / bids.preproc_path(name, session, run)).parent.mkdir(parents=True, exist_ok=True)
        write_nifti_gz(_nifti(volume, anatomy.t1w_affine, bids.TR_S), root / bids.preproc_path(name, session, run))
        write_nifti_gz(_nifti(anatomy.brain.astype(np.uint8), anatomy.t1w_affine),
                       root / bids.preproc_mask_path(name, session, run))
    if "raw" in forms:
        clean = series("raw-run", False)
        motion = synthetic.head_motion(params.seed, name, session, run, bids.N_VOLUMES)
        to_t1w = np.linalg.inv(anatomy.t1w_affine)
        grid = np.zeros(anatomy.brain.shape, dtype=np.float32)
        grid[anatomy.brain] = subject.noise_sd
        noise_sd = synthetic.sample_trilinear(grid, to_t1w @ np.linalg.inv(motion[0]) @ anatomy.raw_affine, anatomy.raw_shape)
        rng = np.random.default_rng(synthetic.name_seed("scanner-noise", params.seed, name, session, run))
        volume = np.empty(anatomy.raw_shape + (bids.N_VOLUMES,), dtype=np.int16)
        for t in range(bids.N_VOLUMES):
            grid[anatomy.brain] = clean[t]
            sampled = synthetic.sample_trilinear(grid, to_t1w @ np.linalg.inv(motion[t]) @ anatomy.raw_affine,
                                                 anatomy.raw_shape)
            sampled += noise_sd * rng.standard_normal(anatomy.raw_shape, dtype=np.float32)
            volume[..., t] = np.clip(np.rint(sampled), 0, np.iinfo(np.int16).max)
        write_nifti_gz(_nifti(volume, anatomy.raw_affine, bids.TR_S), root / bids.bold_path(name, session, run))
        write_json({"RepetitionTime": bids.TR_S, "TaskName": bids.TASK, "Synthetic": True},
                   func / f"{bids.run_stem(name, session, run)}_bold.json")
    return bids.run_stem(name, session, run)


def _write_glmsingle(schedule: pd.DataFrame, root: Path, subject: _Subject, name: str, image_row: pd.Series,
                     params) -> None:
    """GLMsingle release 2.0's files for the subject's trials: ROI betas (trials x voxels, percent
    signal change), whole-brain betas per session (X, Y, Z, trials; a default affine, as released),
    the brain mask (the true affine), the presentation list and the schedule its rows follow.

    Each run's betas are the planted responses plus the sampling noise of single-trial OLS on that
    run's design (:func:`neurolatent.science.synthetic.beta_noise_factor`), in units of each voxel's
    noise as a percentage of its baseline."""
    anatomy = subject.anatomy
    psc_per_noise_sd = (100.0 * subject.noise_sd / subject.baseline).astype(np.float32)
    betas = np.empty((len(schedule), len(subject.baseline)), dtype=np.float32)
    rng = np.random.default_rng(synthetic.name_seed("glmsingle", params.seed, name))
    for _, rows in schedule.groupby(["session", "run"], sort=False):
        design = synthetic.trial_regressors(rows["onset"].astype(float).to_numpy(),
                                            rows["duration"].astype(float).to_numpy(), bids.N_VOLUMES, bids.TR_S)
        values = synthetic.beta_noise_factor(design, bids.TR_S) @ rng.standard_normal((len(rows), betas.shape[1]))
        values[:, subject.region_columns] += params.snr * subject.patterns[image_row[rows["ImgName"].to_numpy()].to_numpy()]
        betas[rows.index.to_numpy()] = values * psc_per_noise_sd
    folder = root / bids.GLMSINGLE_DIR
    (folder / bids.GLMSINGLE_ROI_DIR).mkdir(parents=True, exist_ok=True)
    (folder / name).mkdir(parents=True, exist_ok=True)
    position = np.full(anatomy.brain.shape, -1)
    position[anatomy.brain] = np.arange(anatomy.brain.sum())
    for hemisphere in bids.HEMISPHERES:
        for roi in bids.ROIS:
            columns = position[anatomy.rois[f"{hemisphere}{roi}"]]
            save_npy(betas[:, columns], folder / bids.GLMSINGLE_ROI_DIR / bids.glmsingle_roi_name(name, hemisphere, roi))
    for session, rows in schedule.groupby("session", sort=True):
        volume = np.zeros(anatomy.brain.shape + (len(rows),), dtype=np.float32)
        volume[anatomy.brain] = betas[rows.index.to_numpy()].T
        image = nib.Nifti1Image(volume, np.eye(4))  # the release's default affine: the brain mask has the true one
        image.header.set_data_dtype(np.int16)
        image.header.set_slope_inter(0.001, 0.0)  # percent signal change in steps of 0.001
        write_nifti_gz(image, folder / name / bids.glmsingle_session_name(name, int(session)))
    write_nifti_gz(_nifti(anatomy.brain.astype(np.uint8), anatomy.t1w_affine), folder / name / f"{name}_brainmask.nii.gz")
    # the presentation lists of the stimulus release prefix the repeated presentations with rep_
    listed = [("rep_" if kind.startswith("rep_") else "") + image for image, kind in schedule[["ImgName", "ImgType"]].to_numpy()]
    (folder / name / f"{name}_imgnames.txt").write_text("\n".join(listed) + "\n")
    write_glmsingle_schedule(schedule.assign(trial=schedule["Trial"].astype(int), image_name=schedule["ImgName"]),
                             folder / name / f"{name}_schedule.tsv")


def write_glmsingle_schedule(trials: pd.DataFrame, path: Path) -> None:
    """The trials the release's rows follow, one row each in their order: columns session, run,
    trial, image_name (of the events files). The fmri stage joins trials to release rows by
    (session, run, trial) and checks each against the presentation list."""
    table = trials[["session", "run", "trial", "image_name"]].astype({"session": int, "run": int, "trial": int})
    table.sort_values(["session", "run", "trial"], kind="stable").to_csv(path, sep="\t", index=False)


def write_synthetic(data: DataParams, out_dir: Path, truth_dir: Path, scheduler: str = "auto",
                    address: str | None = None) -> dict:
    """Generate the synthetic BOLD5000 subset into ``out_dir`` and its truth into ``truth_dir``.

    Every form in ``data.forms`` is drawn from one planted truth (see :mod:`neurolatent.science.synthetic`).
    The runs are written in parallel, in ``data.synthetic.jobs`` processes or on a Dask cluster
    (``scheduler``, ``address``: :func:`neurolatent.runtime.parallel_map`). Returns a summary (counts)
    for logging.
    """
    params = data.synthetic
    schedule = selected_schedule(data)
    schedule["category"] = schedule["ImgType"].map(bids.category_of)
    stimuli = (schedule.drop_duplicates("ImgName")[["ImgName", "category"]]
               .rename(columns={"ImgName": "image_name"}).sort_values("image_name").reset_index(drop=True))
    template = datasets.load_mni152_template(resolution=params.voxel_size_mm)
    template_mask = datasets.load_mni152_brain_mask(resolution=params.voxel_size_mm).get_fdata() > 0
    image_row = pd.Series(np.arange(len(stimuli)), index=stimuli["image_name"])

    with atomic_dir(out_dir) as root, atomic_dir(truth_dir) as truth:
        write_json(DATASET_DESCRIPTION | {"Synthetic": True}, root / "dataset_description.json")
        write_json({"RepetitionTime": bids.TR_S, "TaskName": bids.TASK}, root / f"task-{bids.TASK}_bold.json")
        (root / "participants.tsv").write_text("participant_id\n" + "".join(f"sub-{s}\n" for s in data.subjects))
        features = _write_stimuli(stimuli, root, params.image_size)
        (root / bids.REPEATED_LIST).write_text("\n".join(repeated_images()) + "\n")
        features_z = zscore(features)
        subjects, region_sizes = {}, {}
        for subject in data.subjects:
            anatomy = synthetic.subject_anatomy(template.get_fdata().astype(np.float32), template.affine, template_mask,
                                                subject, params.seed, params.voxel_size_mm, params.roi_radius_mm)
            region_columns = np.flatnonzero(anatomy.region[anatomy.brain])
            if region_columns.size == 0:
                raise NeurolatentError("params.yaml: data.synthetic.roi_radius_mm leaves the planted region without voxels")
            rng = np.random.default_rng(synthetic.name_seed("subject", params.seed, subject))
            baseline = 1000.0 * anatomy.intensity[anatomy.brain]
            noise_sd = params.noise_percent / 100 * baseline * np.exp(rng.normal(0, 0.25, baseline.shape))
            patterns = synthetic.planted_patterns(features_z, region_columns.size, rng)
            subjects[subject] = _Subject(anatomy, baseline, noise_sd, patterns, region_columns)
            region_sizes[subject] = int(region_columns.size)
            for key, mask in anatomy.rois.items():  # the SPM ROI masks, on the T1w grid, typos included
                path = root / bids.roi_mask_path(subject, key[:2], key[2:])
                path.parent.mkdir(parents=True, exist_ok=True)
                write_nifti_gz(_nifti(mask.astype(np.uint8), anatomy.t1w_affine), path)
            save_npy(patterns.astype(np.float32), truth / f"patterns_sub-{subject}.npy")
            save_npy(noise_sd[region_columns].astype(np.float32), truth / f"noise_sd_sub-{subject}.npy")
            write_nifti_gz(_nifti(anatomy.region.astype(np.uint8), anatomy.t1w_affine), truth / f"region_sub-{subject}.nii.gz")

        runs = [rows for _, rows in schedule.groupby(["subject", "session", "run"], sort=True)]
        # an absolute root: a Dask worker may run in another folder
        parallel_map(partial(_write_run, root=root.absolute(), subjects=subjects, image_row=image_row,
                             forms=list(data.forms), params=params), runs, params.jobs, desc="runs", unit="run",
                     scheduler=scheduler, address=address)
        if "glmsingle" in data.forms:
            for subject, rows in schedule.groupby("subject", sort=True):
                _write_glmsingle(rows.reset_index(drop=True), root, subjects[subject], subject, image_row, params)

        stimuli.to_csv(truth / "stimuli.tsv", sep="\t", index=False)
        save_npy(features, truth / "features.npy")
        save_npy(rdm_upper(features_z, "correlation").astype(np.float32), truth / "feature_rdm.npy")
        write_json({
            "planted": True,
            "snr": params.snr,
            "seed": params.seed,
            "forms": list(data.forms),
            "feature_names": list(synthetic.FEATURE_NAMES),
            "region_voxels": region_sizes,
            "files": {
                "stimuli.tsv": "image_name, category; row order of every array here (sorted image name)",
                "features.npy": "(n_images, 18) planted features of each image's pixels",
                "feature_rdm.npy": "(n_images*(n_images-1)/2,) 1 - Pearson r of z-scored features, upper triangle",
                "patterns_sub-X.npy": "(n_images, n_region_voxels) subject X's planted response, unit sd per voxel",
                "noise_sd_sub-X.npy": "(n_region_voxels,) noise sd of each region voxel, intensity units",
                "region_sub-X.nii.gz": "subject X's planted region on its T1w grid (the union of its ten ROI masks); "
                                       "its voxels in C order are the pattern columns",
            },
        }, truth / "truth.json")
    return {"runs": len(runs), "trials": len(schedule), "images": len(stimuli),
            "region_voxels": int(np.mean(list(region_sizes.values())))}


# ----------------------------------------------------------------------------- real BIDS


def _dataset_file(path: Path, roots: tuple[Path, ...]) -> Path | None:
    """The file ``path`` stands for, its symlinks followed, or None when nothing is at ``path``.

    A datalad / git-annex copy of BOLD5000 is made of relative symlinks into its ``.git/annex``:
    they are followed, and must stay inside one of the dataset's ``roots`` (a link to a file
    elsewhere would be cached and pushed by DVC as if it were the dataset's). An annexed file whose
    content was never fetched is a dangling link: a one-line error saying ``datalad get``.
    """
    if not path.is_symlink() and not path.exists():
        return None
    real = path.resolve()
    if not any(real.is_relative_to(root.resolve()) for root in roots):
        raise NeurolatentError(f"{path}: symlink to {real}, outside the dataset ({', '.join(map(str, roots))})")
    if not real.is_file():
        if "annex" in real.parts:
            raise NeurolatentError(f"{path}: git-annex content not present; run `datalad get {path}` first")
        raise NeurolatentError(f"{path}: dangling symlink (to {real})")
    return real


def _link(source: Path, target: Path, mode: str) -> None:
    """Hard-link (or copy) the real file ``source`` (no symlink: see :func:`_dataset_file`) to ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if mode == "hardlink":
        try:
            os.link(source, target)
            return
        except OSError:  # another filesystem, or links not allowed: copy instead
            pass
    shutil.copy2(source, target)


def _release_files(data: DataParams, stimuli_root: Path, roots: tuple[Path, ...]) -> dict[str, Path]:
    """The GLMsingle release's files by name (real paths), found anywhere under ``data.glmsingle_root``;
    the presentation lists also under the stimulus release's Stimuli_Presentation_Lists."""
    root = Path(data.glmsingle_root)
    if not root.is_dir():
        raise NeurolatentError(f"{root}: data.glmsingle_root is not a folder")
    candidates = [path for path in sorted(root.rglob("*")) if path.is_file() or path.is_symlink()]
    candidates += [stimuli_root / "Stimuli_Presentation_Lists" / subject / f"{subject}_imgnames.txt"
                   for subject in data.subjects]
    found: dict[str, Path] = {}
    for path in candidates:
        real = _dataset_file(path, roots)
        if real is not None:
            found.setdefault(path.name, real)
    return found


def _link_glmsingle(data: DataParams, bids_root: Path, stimuli_root: Path, root: Path, roots: tuple[Path, ...]) -> None:
    """Link each subject's GLMsingle files into ``derivatives/glmsingle`` (ROI betas, the selected
    sessions' whole-brain betas, brain mask, presentation list) and write the schedule the release's
    rows follow: every trial of the subject's events files in the real copy, in order."""
    found = _release_files(data, stimuli_root, roots)
    folder = root / bids.GLMSINGLE_DIR
    for subject in data.subjects:
        names = [bids.glmsingle_roi_name(subject, h, r) for h in bids.HEMISPHERES for r in bids.ROIS]
        required = [f"{subject}_imgnames.txt", *names]
        missing = [name for name in required if name not in found]
        if missing:
            raise NeurolatentError(f"{data.glmsingle_root}: no {missing[0]} in the GLMsingle release (data.glmsingle_root)")
        for name in names:
            _link(found[name], folder / bids.GLMSINGLE_ROI_DIR / name, data.link)
        _link(found[f"{subject}_imgnames.txt"], folder / subject / f"{subject}_imgnames.txt", data.link)
        sessions = data.sessions or range(1, bids.N_SESSIONS[subject] + 1)
        for name in [f"{subject}_brainmask.nii.gz", *(bids.glmsingle_session_name(subject, s) for s in sessions)]:
            if name in found:  # only mask: brain reads them; the fmri stage names what is missing
                _link(found[name], folder / subject / name, data.link)
        events = [read_events(path).assign(session=ses, run=run)
                  for (who, ses, run), path in bids.find_runs(bids_root, "events.tsv").items() if who == subject]
        write_glmsingle_schedule(pd.concat(events, ignore_index=True), folder / subject / f"{subject}_schedule.tsv")


def select_bids(data: DataParams, out_dir: Path, truth_dir: Path) -> dict:
    """Link the configured subset of a real BOLD5000 copy into ``out_dir``.

    Takes each selected run's events.tsv, and by ``data.forms``: its raw bold.nii.gz and bold.json,
    fMRIPrep's T1w-space run and brain mask with the subjects' SPM ROI masks, the GLMsingle release's
    files (``data.glmsingle_root``); then the stimuli the events name, the 113 repeated images'
    list, and the dataset's top-level files. A form asked for and missing is a one-line error.
    """
    bids_root, stimuli_root = Path(data.bids_root), Path(data.stimuli_root)
    for name, path in (("data.bids_root", bids_root), ("data.stimuli_root", stimuli_root)):
        if not path.is_dir():
            raise NeurolatentError(f"{path}: {name} is not a folder")
    presented = stimuli_root / bids.STIMULI_DIR.relative_to("BOLD5000_Stimuli")
    if not presented.is_dir():
        raise NeurolatentError(f"{presented}: missing; data.stimuli_root must be the BOLD5000_Stimuli folder")
    runs = bids.find_runs(bids_root, "events.tsv")
    chosen = [key for key in runs if key[0] in data.subjects
              and (data.sessions is None or key[1] in data.sessions)
              and (data.runs is None or key[2] in data.runs)]
    for subject in data.subjects:
        if not any(key[0] == subject for key in chosen):
            raise NeurolatentError(f"{bids_root}: no task-5000scenes events of sub-{subject} in the selected sessions/runs")
    per_run = [bids.events_path]
    if "raw" in data.forms:
        per_run += [bids.bold_path, lambda *key: bids.func_dir(*key[:2]) / f"{bids.run_stem(*key)}_bold.json"]
    if "T1w" in data.forms:
        per_run += [bids.preproc_path, bids.preproc_mask_path]

    roots = tuple(Path(r) for r in (bids_root, stimuli_root, data.glmsingle_root) if r is not None)

    def present(path: Path) -> Path | None:
        return _dataset_file(path, roots)

    with atomic_dir(out_dir) as root, atomic_dir(truth_dir) as truth:
        for name in ("dataset_description.json", "participants.tsv", f"task-{bids.TASK}_bold.json", ".bidsignore"):
            if (real := present(bids_root / name)) is not None:
                _link(real, root / name, data.link)
        images: set[tuple[str, str]] = set()
        for key in progress(sorted(chosen), desc="runs", unit="run"):
            for path_of in per_run:
                rel = path_of(*key)
                real = present(bids_root / rel)
                if real is None and not rel.name.endswith("_bold.json"):
                    raise NeurolatentError(f"{bids_root / rel}: missing (data.forms asks for it)")
                if real is not None:
                    _link(real, root / rel, data.link)
            events = read_events(bids_root / bids.events_path(*key))
            images |= set(zip(events["image_name"], events["category"]))
        if "T1w" in data.forms:
            for subject in data.subjects:
                for hemisphere in bids.HEMISPHERES:
                    for roi in bids.ROIS:
                        rel = bids.roi_mask_path(subject, hemisphere, roi)
                        if (real := present(bids_root / rel)) is None:
                            raise NeurolatentError(f"{bids_root / rel}: SPM ROI mask missing (data.forms has T1w)")
                        _link(real, root / rel, data.link)
        if "glmsingle" in data.forms:
            _link_glmsingle(data, bids_root, stimuli_root, root, roots)
        for name, category in sorted(images):
            rel = bids.stimulus_path(category, name)
            source = presented / rel.relative_to(bids.STIMULI_DIR)
            if (real := present(source)) is None:
                raise NeurolatentError(f"{source}: image named in the events is missing from data.stimuli_root")
            _link(real, root / rel, data.link)
        repeated = present(stimuli_root / bids.REPEATED_LIST.relative_to("BOLD5000_Stimuli"))
        if repeated is not None:
            _link(repeated, root / bids.REPEATED_LIST, data.link)
        write_json({"planted": False, "source": "bids", "bids_root": str(bids_root)}, truth / "truth.json")
    return {"runs": len(chosen), "images": len(images)}


def write_dataset(data: DataParams, out_dir: Path, truth_dir: Path, scheduler: str = "auto",
                  address: str | None = None) -> dict:
    """Synthetic or real, by ``data.source``; returns counts for the log. ``scheduler`` and
    ``address``: where the synthetic runs are written (``compute.scheduler``, ``compute.dask_address``)."""
    if data.source == "synthetic":
        return write_synthetic(data, Path(out_dir), Path(truth_dir), scheduler, address)
    return select_bids(data, Path(out_dir), Path(truth_dir))
