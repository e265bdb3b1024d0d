"""The trials of a BOLD5000-layout folder: every task-5000scenes events file read, checked, and
cross-checked with its BOLD run and the stimuli it names."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from neurolatent.errors import NeurolatentError
from neurolatent.io.bids import (EVENTS_COLUMNS, TASK, TR_S, category_of, find_runs, find_space_runs, is_safe_image_name,
                                 run_path, stimulus_path)
from neurolatent.io.nifti import check_bold
from neurolatent.science.constraints import checked


TRIAL_COLUMNS = (
    "subject", "session", "run", "trial", "onset", "duration", "image_name", "category", "img_type",
    "presentation", "image_path", "bold_path", "response", "rt",
)
STIMULUS_COLUMNS = ("image_name", "category", "image_path")


def read_events(path: Path) -> pd.DataFrame:
    """Read one task-5000scenes events.tsv and check its columns and values.

    Returns
    -------
    DataFrame with columns onset, duration (s), trial, image_name, img_type, category,
    response, rt (s); one row per trial in file order.
    """
    try:
        raw = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise NeurolatentError(f"{path}: not a readable TSV ({str(exc).splitlines()[0]})") from None
    columns = list(raw.columns)
    missing = [c for c in EVENTS_COLUMNS if c not in columns]
    extra = [c for c in columns if c not in EVENTS_COLUMNS]
    if missing or extra:
        parts = ([f"missing column(s) {', '.join(missing)}"] if missing else []) + (
            [f"unexpected column(s) {', '.join(extra)}"] if extra else [])
        raise NeurolatentError(f"{path}: {'; '.join(parts)}")
    if raw.empty:
        raise NeurolatentError(f"{path}: no trials")
    table = pd.DataFrame({"image_name": raw["ImgName"].str.strip(), "img_type": raw["ImgType"].str.strip()})
    for column, source in (("onset", "onset"), ("duration", "duration"), ("trial", "Trial"),
                           ("response", "Response"), ("rt", "RT")):
        values = pd.to_numeric(raw[source].str.strip(), errors="coerce")
        bad = values.isna()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise NeurolatentError(f"{path}: column {source} row {row + 1} is not a number ({raw[source].iloc[row]!r})")
        table[column] = values
    table = table.astype({"trial": int, "response": int})
    for row, (name, img_type) in enumerate(table[["image_name", "img_type"]].to_numpy()):
        if not is_safe_image_name(name):
            raise NeurolatentError(f"{path}: row {row + 1} image name {name!r} escapes the stimuli folder")
        try:
            category_of(img_type)
        except ValueError as exc:
            raise NeurolatentError(f"{path}: row {row + 1}: {exc}") from None
    for column, source in (("trial", "Trial"), ("onset", "onset")):
        repeated = np.flatnonzero(table[column].duplicated().to_numpy())
        if repeated.size:
            row = int(repeated[0])
            first = int(np.flatnonzero((table[column] == table[column].iloc[row]).to_numpy())[0])
            raise NeurolatentError(f"{path}: row {row + 1} repeats {source} {table[column].iloc[row]:g} of row "
                                   f"{first + 1} (a duplicated trial row)")
    if (table["onset"] < 0).any() or (table["duration"] <= 0).any():
        raise NeurolatentError(f"{path}: negative onset or non-positive duration")
    table["category"] = table["img_type"].map(category_of)
    return table[["trial", "onset", "duration", "image_name", "img_type", "category", "response", "rt"]]


def read_events_dir(root: Path) -> pd.DataFrame:
    """All task-5000scenes events files under a BIDS root as one chronological table.

    Adds subject, session, run, the presentation number of each image per subject (1 = first
    showing) and the image's path relative to the root. Other tasks (the localizer) are ignored.
    """
    files = find_runs(Path(root), "events.tsv")
    if not files:
        raise NeurolatentError(f"{root}: no sub-*/ses-*/func/*_task-{TASK}_run-*_events.tsv files")
    parts = [read_events(path).assign(subject=s, session=ses, run=run) for (s, ses, run), path in files.items()]
    table = pd.concat(parts, ignore_index=True).sort_values(["subject", "session", "run", "trial"], kind="stable")
    table["presentation"] = table.groupby(["subject", "image_name"]).cumcount() + 1
    table["image_path"] = [str(stimulus_path(c, n)) for c, n in table[["category", "image_name"]].to_numpy()]
    return table.reset_index(drop=True)


@checked(space=Literal["raw", "T1w"], method=Literal["rendered", "volume", "betas", "glmsingle"])
def build_tables(root: Path, space: str = "T1w", method: str = "betas",
                 progress: Callable[..., Iterable] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parse and cross-check a BOLD5000-layout folder for one configuration.

    The runs checked are those the configuration reads: ``space`` raw (bold.nii.gz) or T1w
    (fMRIPrep's preproc runs); with ``method`` glmsingle no run is read (the release's files are
    checked by the fmri stage), so a copy holding only events, stimuli and the release passes.
    Checks: every events file has its run and every run its events file; every run is a whole 4D
    NIfTI; the runs of one subject share one grid (pictures of raw runs excepted: they need no
    voxel to voxel correspondence); every onset lies within its run; every image file exists under
    the stimuli folder. ``progress`` wraps the runs checked (tqdm-like: ``total``, ``desc``,
    ``unit``), or None.

    Returns
    -------
    trials : DataFrame, one row per trial, columns :data:`TRIAL_COLUMNS` (``bold_path``: the run
        read, relative to ``root``; empty for glmsingle)
    stimuli : DataFrame, one row per unique image sorted by name, columns :data:`STIMULUS_COLUMNS`
    """
    root = Path(root)
    events_files = find_runs(root, "events.tsv")
    trials = read_events_dir(root)
    if method == "glmsingle":
        trials["bold_path"] = ""
    else:
        _check_runs(root, trials, events_files, space, same_grid=not (space == "raw" and method == "rendered"),
                    progress=progress)
    stimuli = (trials.drop_duplicates("image_name")[list(STIMULUS_COLUMNS)]
               .sort_values("image_name").reset_index(drop=True))
    clash = trials.groupby("image_name")["category"].nunique()
    if (clash > 1).any():
        raise NeurolatentError(f"{root}: image {clash[clash > 1].index[0]!r} appears under two categories")
    for rel in stimuli["image_path"]:
        if not (root / rel).is_file():
            raise NeurolatentError(f"{root / rel}: image named in the events is missing from the stimuli folder")
    return trials[list(TRIAL_COLUMNS)], stimuli


def _check_runs(root: Path, trials: pd.DataFrame, events_files: dict, space: str, same_grid: bool,
                progress: Callable[..., Iterable] | None) -> None:
    """Pair events with the runs of ``space``, check each run and the trials' timing; set bold_path."""
    run_files = find_space_runs(root, space)
    for key, path in events_files.items():
        if key not in run_files:
            expected = run_path(space, *key)
            raise NeurolatentError(f"{path}: events file has no matching {space} run ({expected})")
    for key, path in run_files.items():
        if key not in events_files:
            raise NeurolatentError(f"{path}: {space} run has no matching events file")
    grids: dict[str, tuple[Path, tuple[int, ...], np.ndarray]] = {}
    run_length: dict[tuple[str, int, int], float] = {}
    checked = run_files.items()
    if progress is not None:
        checked = progress(checked, total=len(run_files), desc="trials: runs checked", unit="run")
    for key, path in checked:
        image = check_bold(path)
        shape, affine = image.shape[:3], image.affine
        first_path, first_shape, first_affine = grids.setdefault(key[0], (path, shape, affine))
        if same_grid and shape != first_shape:
            raise NeurolatentError(f"{path}: grid {shape} differs from {first_path.name} {first_shape} "
                                   "(runs of one subject must share one grid)")
        if same_grid and not np.allclose(affine, first_affine, atol=1e-4):
            moved = np.abs(affine - first_affine).max()
            raise NeurolatentError(f"{path}: affine differs from {first_path.name}'s by up to {moved:.3g} "
                                   "(same shape; runs of one subject must share one grid)")
        tr = float(image.header.get_zooms()[3]) or TR_S
        if not np.isclose(tr, TR_S, rtol=0.01):
            unit = image.header.get_xyzt_units()[1]
            raise NeurolatentError(f"{path}: TR is {tr:g} ({unit}), BOLD5000's is {TR_S:g} s: the header's "
                                   "pixdim[4] must be in seconds")
        run_length[key] = image.shape[3] * tr
    keys = list(zip(trials["subject"], trials["session"], trials["run"]))
    trials["bold_path"] = [str(run_path(space, *key)) for key in keys]
    ends = trials["onset"] + trials["duration"]
    lengths = np.array([run_length[k] for k in keys])
    late = np.flatnonzero(ends.to_numpy() > lengths)
    if late.size:
        row = trials.iloc[late[0]]
        path = events_files[(row["subject"], row["session"], row["run"])]
        raise NeurolatentError(f"{path}: trial {row['trial']} ends at {ends.iloc[late[0]]:.1f} s, "
                               f"beyond the run's {lengths[late[0]]:.0f} s")
