"""BOLD5000 release 2.0's GLMsingle single-trial betas, as the dataset stage keeps them in
``derivatives/glmsingle``:

- ``BOLD5000_GLMsingle_ROI_betas/py/CSIk_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_allses_<HEMI><ROI>.npy``:
  (trials, voxels) float32 percent signal change, rows in presentation order;
- ``CSIk/CSIk_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_ses-NN.nii.gz``: (X, Y, Z, trials of the session)
  with a default affine, and ``CSIk/CSIk_brainmask.nii.gz``, whose affine is the betas' real one;
- ``CSIk/CSIk_imgnames.txt``: the image of each row (a ``rep_`` prefix marks repeated showings);
- ``CSIk/CSIk_schedule.tsv``: the trials of the events files the rows follow (session, run, trial,
  image_name), written by the dataset stage.

Rows are joined to trials by (session, run, trial), and every joined row's image must be the
trial's image: a shifted or foreign presentation list is a one-line error naming the first trial
that differs.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from neurolatent.errors import NeurolatentError
from neurolatent.io import bids
from neurolatent.io.nifti import load_image, read_nifti


def _need(path: Path) -> Path:
    if not path.is_file():
        raise NeurolatentError(f"{path}: missing from the GLMsingle release (rerun the dataset stage with "
                               "data.forms including glmsingle)")
    return path


def read_presentation_list(path: Path) -> list[str]:
    """Image names, one per line, in presentation order; a ``rep_`` prefix is removed."""
    return [line.strip().removeprefix("rep_") for line in _need(path).read_text().splitlines() if line.strip()]


def release_rows(folder: Path, subject: str, trials: pd.DataFrame) -> np.ndarray:
    """The release row of each trial (trials.parquet rows of one subject: session, run, trial,
    image_name), checked against the presentation list. Returns (n_trials,) int."""
    folder = Path(folder) / subject
    listed_path = folder / f"{subject}_imgnames.txt"
    listed = read_presentation_list(listed_path)
    schedule = pd.read_csv(_need(folder / f"{subject}_schedule.tsv"), sep="\t")
    if len(listed) != len(schedule):
        raise NeurolatentError(f"{listed_path}: {len(listed)} images listed for the {len(schedule)} trials of "
                               f"sub-{subject}'s events files")
    row = pd.Series(np.arange(len(schedule)), index=pd.MultiIndex.from_frame(schedule[["session", "run", "trial"]]))
    rows = row.reindex(pd.MultiIndex.from_frame(trials[["session", "run", "trial"]].astype(int)))
    if rows.isna().any():
        first = trials.iloc[int(np.flatnonzero(rows.isna())[0])]
        raise NeurolatentError(f"{folder / f'{subject}_schedule.tsv'}: no row for ses-{first['session']:02d} "
                               f"run-{first['run']:02d} trial {first['trial']}")
    rows = rows.to_numpy(dtype=int)
    for position, (r, image) in enumerate(zip(rows, trials["image_name"])):
        if listed[r] != image:
            trial = trials.iloc[position]
            raise NeurolatentError(
                f"{listed_path}: presentation {r + 1} (ses-{trial['session']:02d} run-{trial['run']:02d} trial "
                f"{trial['trial']}) is {listed[r]!r} in the list but {image!r} in the events files")
    return rows


def roi_betas(folder: Path, subject: str, rois: list[str], rows: np.ndarray
              ) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """The ROI betas of ``rows``: every ROI of ``rois`` in both hemispheres, columns concatenated
    (LH then RH per ROI, each file's voxel order). Returns ((len(rows), n_voxels) float32, the
    (hemisphere, roi) of each column)."""
    parts, labels = [], []
    for roi in rois:
        for hemisphere in bids.HEMISPHERES:
            path = _need(Path(folder) / bids.GLMSINGLE_ROI_DIR / bids.glmsingle_roi_name(subject, hemisphere, roi))
            betas = np.load(path, mmap_mode="r")
            if betas.ndim != 2 or betas.shape[0] <= rows.max():
                raise NeurolatentError(f"{path}: shape {betas.shape}, expected (trials, voxels) with at least "
                                       f"{rows.max() + 1} trials")
            parts.append(np.asarray(betas[rows], dtype=np.float32))
            labels += [(hemisphere, roi)] * betas.shape[1]
    return np.concatenate(parts, axis=1), labels


def brain_mask(folder: Path, subject: str) -> nib.Nifti1Image:
    """The release's brain mask of the subject: the whole-brain betas' voxels and real affine."""
    return load_image(_need(Path(folder) / subject / f"{subject}_brainmask.nii.gz"))


def brain_betas(folder: Path, subject: str, trials: pd.DataFrame, rows: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The whole-brain betas of the trials inside ``mask`` (X, Y, Z bool, C order), read session by
    session. ``rows`` are the trials' release rows; a session file's volumes are the session's rows
    in order. Returns (n_trials, mask.sum()) float32."""
    out = np.empty((len(trials), int(mask.sum())), dtype=np.float32)
    schedule = pd.read_csv(Path(folder) / subject / f"{subject}_schedule.tsv", sep="\t")
    first_row = schedule.reset_index().groupby("session")["index"].min()
    for session in np.unique(trials["session"]):
        path = _need(Path(folder) / subject / bids.glmsingle_session_name(subject, int(session)))
        volume, _ = read_nifti(path)
        mine = np.flatnonzero(trials["session"].to_numpy() == session)
        within = rows[mine] - first_row[session]
        if volume.ndim != 4 or volume.shape[:3] != mask.shape or within.max() >= volume.shape[3]:
            raise NeurolatentError(f"{path}: shape {volume.shape} does not hold session {session}'s "
                                   f"{within.max() + 1} trials on the brain mask's grid {mask.shape}")
        out[mine] = np.asarray(volume[mask][:, within], dtype=np.float32).T
    return out


def write_glmsingle_schedule(trials: pd.DataFrame, path: Path) -> None:
    """The trials the release's rows follow, one row each in their order: columns session, run,
    trial, image_name (of the events files). The fmri stage joins trials to release rows by
    (session, run, trial) and checks each against the presentation list."""
    table = trials[["session", "run", "trial", "image_name"]].astype({"session": int, "run": int, "trial": int})
    table.sort_values(["session", "run", "trial"], kind="stable").to_csv(path, sep="\t", index=False)
