"""The synthetic twin of BOLD5000 written as BOLD5000's files, one piece at a time: its stimuli,
each subject's anatomy and masks, each run in the forms asked for, GLMsingle release 2.0's files,
and the planted truth beside them. The dataset stage calls these in order (and writes the runs in
parallel); the generative model itself is :mod:`neurolatent.science.synthetic`.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from nilearn import datasets
from PIL import Image

from neurolatent.errors import NeurolatentError
from neurolatent.io import bids
from neurolatent.io.files import save_npy, write_json
from neurolatent.io.glmsingle import write_glmsingle_schedule
from neurolatent.io.nifti import write_nifti_gz
from neurolatent.io.schedule import derive_schedule, events_text, load_schedule, plant_repeats
from neurolatent.science import synthetic
from neurolatent.science.rsa.rdm import rdm_upper
from neurolatent.science.stats import zscore

DATASET_DESCRIPTION = {
    "Name": "BOLD5000 layout (neurolatent)",
    "BIDSVersion": "1.0.2",
}


def selected_schedule(subjects: list[str], sessions: list[int] | None, runs: list[int] | None,
                      seed: int, same_images: bool = False, repeats: int = 0) -> pd.DataFrame:
    """The trials of ``subjects``' ``sessions`` and ``runs`` (None: all), chronological, with each
    image's category (BOLD5000's schedules; CSI3's and CSI4's derived with ``seed``).

    ``same_images``: every subject after the first sees the first subject's selected images, each
    in an order of its own (:func:`~neurolatent.io.schedule.derive_schedule` of the first
    subject's selection, over as many of its runs as the subject's own selection has, seeded by
    ``seed`` and the subject's name).

    Raises NeurolatentError when the selection leaves a subject without runs.
    """
    parts = []
    wholes = {subject: load_schedule(subject, seed=seed) for subject in subjects}
    # the repeated images every subject's whole schedule repeats (CSI4 saw 95 of the 113 more than once)
    shared = set(repeated_images()).intersection(*(set(whole["ImgName"][whole["ImgName"].duplicated()])
                                                   for whole in wholes.values()))
    for subject, whole in wholes.items():
        table = whole
        if sessions is not None:
            table = table[table["session"].isin(sessions)]
        if runs is not None:
            table = table[table["run"].isin(runs)]
        if table.empty:
            raise NeurolatentError(f"params.yaml: data.sessions/data.runs select no run of {subject}")
        if not (same_images and parts):
            try:
                table = plant_repeats(table, whole, sorted(shared), repeats, synthetic.name_seed("repeats", seed),
                                      synthetic.name_seed("repeat-slots", seed, subject))
            except ValueError as exc:
                raise NeurolatentError(f"params.yaml: data.synthetic.repeats: {subject}: {exc}") from None
        if same_images and parts:
            n_runs = len(table[["session", "run"]].drop_duplicates())
            table = derive_schedule(parts[0], subject, n_runs, synthetic.name_seed("schedule", seed, subject))
        parts.append(table)
    schedule = pd.concat(parts, ignore_index=True)
    schedule["category"] = schedule["ImgType"].map(bids.category_of)
    return schedule


def stimulus_table(schedule: pd.DataFrame) -> pd.DataFrame:
    """One row per image of ``schedule`` (image_name, category), sorted by name."""
    return (schedule.drop_duplicates("ImgName")[["ImgName", "category"]]
            .rename(columns={"ImgName": "image_name"}).sort_values("image_name").reset_index(drop=True))


def mni_template(voxel_size_mm: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(template intensities float32, its affine, brain mask bool) of nilearn's MNI152 at that voxel size."""
    template = datasets.load_mni152_template(resolution=voxel_size_mm)
    mask = datasets.load_mni152_brain_mask(resolution=voxel_size_mm).get_fdata() > 0
    return template.get_fdata().astype(np.float32), template.affine, mask


def write_top_files(root: Path, subjects: list[str]) -> None:
    """The dataset's top-level files: description, task sidecar, participants, the repeated images' list."""
    write_json(DATASET_DESCRIPTION | {"Synthetic": True}, root / "dataset_description.json")
    write_json({"RepetitionTime": bids.TR_S, "TaskName": bids.TASK}, root / f"task-{bids.TASK}_bold.json")
    (root / "participants.tsv").write_text("participant_id\n" + "".join(f"sub-{s}\n" for s in subjects))


def write_stimuli(stimuli: pd.DataFrame, root: Path, size: int,
                  progress: Callable[..., Iterable] | None = None) -> dict[str, np.ndarray]:
    """Draw and write every image of ``stimuli`` (image_name, category) once under ``root``, as
    BOLD5000 names them (``size`` x ``size`` px JPEG); return each feature family of every image
    (:data:`neurolatent.science.synthetic.FAMILIES`): the low-level one of the pixels as written
    (JPEG-decoded), the object and scene ones of what was drawn.

    ``progress`` wraps the images' iterable to show progress (a tqdm-like callable taking ``desc``
    and ``unit``), or None.

    Returns {family: ndarray (n_images, n_features_of_family)}, rows in ``stimuli`` order.
    """
    families = {name: np.empty((len(stimuli), len(names))) for name, names in synthetic.FAMILIES.items()}
    pairs = stimuli[["image_name", "category"]].to_numpy()
    for i, (name, category) in enumerate(pairs if progress is None else progress(pairs, desc="stimuli", unit="img")):
        path = root / bids.stimulus_path(category, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        encoded = io.BytesIO()
        pixels, drawing = synthetic.draw_stimulus(name, category, size)
        Image.fromarray(pixels).save(encoded, format="JPEG", quality=90)
        path.write_bytes(encoded.getvalue())
        families["lowlevel"][i] = synthetic.image_features(np.asarray(Image.open(encoded).convert("RGB")))
        families["object"][i] = synthetic.object_features(drawing)
        families["scene"][i] = synthetic.scene_features(drawing)
    return families


def repeated_images() -> list[str]:
    """BOLD5000's 113 repeated images: those CSI1's real schedule shows more than once, sorted."""
    counts = load_schedule("CSI1")["ImgName"].value_counts()
    return sorted(counts[counts > 1].index)


@dataclass(frozen=True)
class Subject:
    """What one subject's data are drawn from. Columns are the brain voxels of its T1w grid (C order)."""

    anatomy: synthetic.Anatomy
    baseline: np.ndarray  # (n_brain,) intensity units
    noise_sd: np.ndarray  # (n_brain,) intensity units
    patterns: np.ndarray  # (n_images, n_region_voxels), unit sd per voxel
    region_columns: np.ndarray  # (n_region_voxels,) positions of the region's voxels among the brain voxels
    region_rois: np.ndarray  # (n_region_voxels,) the ROI each region voxel is in ("LHEarlyVis", ...)


def nifti_image(data: np.ndarray, affine: np.ndarray, tr_s: float | None = None) -> nib.Nifti1Image:
    """A NIfTI image of ``data`` with ``affine`` (voxel -> mm) as both sform and qform; with ``tr_s``,
    a 4D series in mm and seconds with that TR."""
    image = nib.Nifti1Image(data, affine)
    image.header.set_sform(affine, code=1)
    image.header.set_qform(affine, code=1)
    if tr_s is not None:
        image.header.set_xyzt_units("mm", "sec")
        image.header["pixdim"][4] = tr_s
    return image


def write_run(trials: pd.DataFrame, root: Path, subjects: dict[str, Subject], image_row: pd.Series, forms: list[str],
              params: synthetic.TwinSettings) -> str:
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
        # Fortran order, NIfTI's own: the file's bytes are then the array's, with no transposing copy
        volume = np.zeros(anatomy.brain.shape + (bids.N_VOLUMES,), dtype=np.int16, order="F")
        values = np.clip(np.rint(series("run", True)), 0, np.iinfo(np.int16).max).astype(np.int16)
        for t in range(bids.N_VOLUMES):
            volume[..., t][anatomy.brain] = values[t]
        (root / bids.preproc_path(name, session, run)).parent.mkdir(parents=True, exist_ok=True)
        write_nifti_gz(nifti_image(volume, anatomy.t1w_affine, bids.TR_S), root / bids.preproc_path(name, session, run))
        write_nifti_gz(nifti_image(anatomy.brain.astype(np.uint8), anatomy.t1w_affine),
                       root / bids.preproc_mask_path(name, session, run))
    if "raw" in forms:
        clean = series("raw-run", False)
        motion = synthetic.head_motion(params.seed, name, session, run, bids.N_VOLUMES)
        to_t1w = np.linalg.inv(anatomy.t1w_affine)
        grid = np.zeros(anatomy.brain.shape, dtype=np.float32)
        grid[anatomy.brain] = subject.noise_sd
        noise_sd = synthetic.sample_trilinear(grid, to_t1w @ np.linalg.inv(motion[0]) @ anatomy.raw_affine, anatomy.raw_shape)
        rng = np.random.default_rng(synthetic.name_seed("scanner-noise", params.seed, name, session, run))
        volume = np.empty(anatomy.raw_shape + (bids.N_VOLUMES,), dtype=np.int16, order="F")
        for t in range(bids.N_VOLUMES):
            grid[anatomy.brain] = clean[t]
            sampled = synthetic.sample_trilinear(grid, to_t1w @ np.linalg.inv(motion[t]) @ anatomy.raw_affine,
                                                 anatomy.raw_shape)
            sampled += noise_sd * rng.standard_normal(anatomy.raw_shape, dtype=np.float32)
            volume[..., t] = np.clip(np.rint(sampled), 0, np.iinfo(np.int16).max)
        write_nifti_gz(nifti_image(volume, anatomy.raw_affine, bids.TR_S), root / bids.bold_path(name, session, run))
        write_json({"RepetitionTime": bids.TR_S, "TaskName": bids.TASK, "Synthetic": True},
                   func / f"{bids.run_stem(name, session, run)}_bold.json")
    return bids.run_stem(name, session, run)


def write_glmsingle(schedule: pd.DataFrame, root: Path, subject: Subject, name: str, image_row: pd.Series,
                    params: synthetic.TwinSettings) -> None:
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
    write_nifti_gz(nifti_image(anatomy.brain.astype(np.uint8), anatomy.t1w_affine), folder / name / f"{name}_brainmask.nii.gz")
    # the presentation lists of the stimulus release prefix the repeated presentations with rep_
    listed = [("rep_" if kind.startswith("rep_") else "") + image for image, kind in schedule[["ImgName", "ImgType"]].to_numpy()]
    (folder / name / f"{name}_imgnames.txt").write_text("\n".join(listed) + "\n")
    write_glmsingle_schedule(schedule.assign(trial=schedule["Trial"].astype(int), image_name=schedule["ImgName"]),
                             folder / name / f"{name}_schedule.tsv")


def response_features(families_z: dict[str, np.ndarray], image_names: list[str],
                      params: synthetic.TwinSettings) -> dict[str, np.ndarray]:
    """What each family's ROIs respond to: its z-scored features (n_images, k), with
    ``params.shared_dims`` columns of :func:`~neurolatent.science.synthetic.shared_content`
    (z-scored) beside them, the same for every family and subject; unchanged with 0."""
    if params.shared_dims == 0:
        return families_z
    shared = zscore(synthetic.shared_content(image_names, params.shared_dims, params.seed))
    return {name: np.hstack([values, shared]) for name, values in families_z.items()}


def plant_subject(name: str, template: tuple[np.ndarray, np.ndarray, np.ndarray], families_z: dict[str, np.ndarray],
                  params: synthetic.TwinSettings) -> Subject:
    """Subject ``name``'s anatomy (from the MNI ``template`` of :func:`mni_template`), its voxels'
    baselines and noise, and its planted responses to the images: each ROI's voxels a random linear
    map of the z-scored feature family ``params.families`` assigns that ROI (``families_z``: {family:
    (n_images, k)}), unit sd per voxel; both hemispheres of a ROI take its family."""
    anatomy = synthetic.subject_anatomy(*template, name, params.seed, params.voxel_size_mm, params.roi_radius_mm)
    region_columns = np.flatnonzero(anatomy.region[anatomy.brain])
    if region_columns.size == 0:
        raise NeurolatentError("params.yaml: data.synthetic.roi_radius_mm leaves the planted region without voxels")
    rng = np.random.default_rng(synthetic.name_seed("subject", params.seed, name))
    baseline = 1000.0 * anatomy.intensity[anatomy.brain]
    noise_sd = params.noise_percent / 100 * baseline * np.exp(rng.normal(0, 0.25, baseline.shape))
    in_region = anatomy.region[anatomy.brain]
    rois = np.full(region_columns.size, "", dtype=object)
    patterns = np.zeros((len(next(iter(families_z.values()))), region_columns.size))
    for key, mask in anatomy.rois.items():  # disjoint spheres, each its family's map
        columns = np.flatnonzero(mask[anatomy.brain][in_region])
        rois[columns] = key
        if columns.size:
            patterns[:, columns] = synthetic.planted_patterns(families_z[params.families[key[2:]]], columns.size, rng)
    return Subject(anatomy, baseline, noise_sd, patterns, region_columns, rois.astype(str))


def write_subject(root: Path, truth: Path, name: str, subject: Subject) -> None:
    """Subject ``name``'s SPM ROI masks (on its T1w grid, BOLD5000's typos included) under ``root``,
    and its planted patterns, region noise and region labels under ``truth``."""
    anatomy = subject.anatomy
    for key, mask in anatomy.rois.items():
        path = root / bids.roi_mask_path(name, key[:2], key[2:])
        path.parent.mkdir(parents=True, exist_ok=True)
        write_nifti_gz(nifti_image(mask.astype(np.uint8), anatomy.t1w_affine), path)
    save_npy(subject.patterns.astype(np.float32), truth / f"patterns_sub-{name}.npy")
    save_npy(subject.noise_sd[subject.region_columns].astype(np.float32), truth / f"noise_sd_sub-{name}.npy")
    labels = np.zeros(anatomy.brain.shape, dtype=np.uint8)
    for code, key in enumerate(region_codes(), start=1):
        labels[anatomy.rois[key]] = code
    write_nifti_gz(nifti_image(labels, anatomy.t1w_affine), truth / f"region_sub-{name}.nii.gz")


def region_codes() -> list[str]:
    """The ROI of each code of ``region_sub-X.nii.gz`` (code 1 first; 0 is outside the region)."""
    return [f"{hemisphere}{roi}" for hemisphere in bids.HEMISPHERES for roi in bids.ROIS]


def write_truth(truth: Path, stimuli: pd.DataFrame, families: dict[str, np.ndarray], params: synthetic.TwinSettings,
                forms: list[str], region_sizes: dict[str, int]) -> None:
    """The planted truth's files and ``truth.json``, which says what each holds: which feature family
    drives which ROI, and how strongly."""
    stimuli.to_csv(truth / "stimuli.tsv", sep="\t", index=False)
    for name, values in families.items():
        save_npy(values, truth / f"features_{name}.npy")
    every = np.hstack([zscore(values) for values in families.values()])
    save_npy(rdm_upper(every, "correlation").astype(np.float32), truth / "feature_rdm.npy")
    write_json({
        "planted": True,
        "snr": params.snr,
        "seed": params.seed,
        "shared_dims": params.shared_dims,
        "forms": list(forms),
        "families": {name: list(names) for name, names in synthetic.FAMILIES.items()},
        "rois": {roi: {"family": family, "snr": params.snr} for roi, family in params.families.items()},
        "region_codes": {str(code): key for code, key in enumerate(region_codes(), start=1)},
        "region_voxels": region_sizes,
        "files": {
            "stimuli.tsv": "image_name, category; row order of every array here (sorted image name)",
            "features_F.npy": "(n_images, k) feature family F of each image: lowlevel (its pixels), object (the drawn "
                              "objects and the category), scene (the drawn layout); names in families",
            "feature_rdm.npy": "(n_images*(n_images-1)/2,) 1 - Pearson r of every family's z-scored features side by "
                               "side (the whole truth), upper triangle",
            "patterns_sub-X.npy": "(n_images, n_region_voxels) subject X's planted response, unit sd per voxel: each "
                                  "ROI's voxels a random linear map of its family's z-scored features (rois)",
            "noise_sd_sub-X.npy": "(n_region_voxels,) noise sd of each region voxel, intensity units",
            "region_sub-X.nii.gz": "subject X's planted region on its T1w grid, each voxel its ROI's code "
                                   "(region_codes; 0 outside); its voxels in C order are the pattern columns",
        },
    }, truth / "truth.json")
