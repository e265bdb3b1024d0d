"""Stage ``trials``: every task-5000scenes events file, parsed and checked, as two tables.

``trials.parquet`` has one row per trial; ``stimuli.parquet`` one row per unique image in the
canonical order (sorted image name) that every per-stimulus matrix downstream follows.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from neurolatent import bids
from neurolatent.errors import NeurolatentError
from neurolatent.files import atomic_file

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
    missing = [c for c in bids.EVENTS_COLUMNS if c not in columns]
    extra = [c for c in columns if c not in bids.EVENTS_COLUMNS]
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
        if not bids.is_safe_image_name(name):
            raise NeurolatentError(f"{path}: row {row + 1} image name {name!r} escapes the stimuli folder")
        try:
            bids.category_of(img_type)
        except ValueError as exc:
            raise NeurolatentError(f"{path}: row {row + 1}: {exc}") from None
    if (table["onset"] < 0).any() or (table["duration"] <= 0).any():
        raise NeurolatentError(f"{path}: negative onset or non-positive duration")
    table["category"] = table["img_type"].map(bids.category_of)
    return table[["trial", "onset", "duration", "image_name", "img_type", "category", "response", "rt"]]


def read_events_dir(root: Path) -> pd.DataFrame:
    """All task-5000scenes events files under a BIDS root as one chronological table.

    Adds subject, session, run, the presentation number of each image per subject (1 = first
    showing) and the image's path relative to the root. Other tasks (the localizer) are ignored.
    """
    files = bids.find_runs(Path(root), "events.tsv")
    if not files:
        raise NeurolatentError(f"{root}: no sub-*/ses-*/func/*_task-{bids.TASK}_run-*_events.tsv files")
    parts = [read_events(path).assign(subject=s, session=ses, run=run) for (s, ses, run), path in files.items()]
    table = pd.concat(parts, ignore_index=True).sort_values(["subject", "session", "run", "trial"], kind="stable")
    table["presentation"] = table.groupby(["subject", "image_name"]).cumcount() + 1
    table["image_path"] = [str(bids.stimulus_path(c, n)) for c, n in table[["category", "image_name"]].to_numpy()]
    table["bold_path"] = [str(bids.bold_path(s, ses, r)) for s, ses, r in table[["subject", "session", "run"]].to_numpy()]
    return table.reset_index(drop=True)


def gzip_is_complete(path: Path, expected_size: int) -> bool:
    """True when a gzip file decompresses fully.

    Reads the trailer's ISIZE (uncompressed size mod 2**32) first: when it equals
    ``expected_size`` the file is whole and nothing more is read. Otherwise (a multi-member file,
    or a truncated one) the whole stream is decompressed to decide.
    """
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        if handle.tell() >= 18:
            handle.seek(-4, 2)
            if struct.unpack("<I", handle.read(4))[0] == expected_size % 2**32:
                return True
    try:
        with gzip.open(path, "rb") as stream:
            while stream.read(1 << 24):
                pass
    except (OSError, EOFError, gzip.BadGzipFile):
        return False
    return True


def check_bold(path: Path) -> nib.Nifti1Image:
    """Open a BOLD run's header and check that it is a whole, readable 4D NIfTI."""
    try:
        image = nib.load(path)
    except Exception as exc:  # nibabel raises many types for a damaged header
        raise NeurolatentError(f"{path}: not a readable NIfTI ({exc})") from None
    if len(image.shape) != 4:
        raise NeurolatentError(f"{path}: BOLD run is {len(image.shape)}D {image.shape}, expected 4D")
    # image.header is a copy with its offset reset; the proxy keeps the file's real data offset
    offset = int(getattr(image.dataobj, "offset", 352))
    expected = offset + int(np.prod(image.shape)) * image.header.get_data_dtype().itemsize
    if str(path).endswith(".gz") and not gzip_is_complete(path, expected):
        raise NeurolatentError(f"{path}: truncated or corrupt gzip stream")
    return image


def build_tables(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parse and cross-check a BOLD5000-layout folder.

    Checks: every events file has its BOLD run and every BOLD run its events file; every BOLD run
    is a whole 4D NIfTI; runs of one subject share one grid (shape and affine); every onset lies
    within its run; every image file exists under the stimuli folder.

    Returns
    -------
    trials : DataFrame, one row per trial, columns :data:`TRIAL_COLUMNS`
    stimuli : DataFrame, one row per unique image sorted by name, columns :data:`STIMULUS_COLUMNS`
    """
    root = Path(root)
    events_files = bids.find_runs(root, "events.tsv")
    bold_files = bids.find_runs(root, "bold.nii.gz")
    for key, path in events_files.items():
        if key not in bold_files:
            raise NeurolatentError(f"{path}: events file has no matching BOLD run ({path.name.replace('events.tsv', 'bold.nii.gz')})")
    for key, path in bold_files.items():
        if key not in events_files:
            raise NeurolatentError(f"{path}: BOLD run has no matching events file")
    trials = read_events_dir(root)

    grids: dict[str, tuple[Path, tuple[int, ...], np.ndarray]] = {}
    run_length: dict[tuple[str, int, int], float] = {}
    for key, path in bold_files.items():
        image = check_bold(path)
        shape, affine = image.shape[:3], image.affine
        if key[0] not in grids:
            grids[key[0]] = (path, shape, affine)
        first_path, first_shape, first_affine = grids[key[0]]
        if shape != first_shape or not np.allclose(affine, first_affine, atol=1e-4):
            raise NeurolatentError(f"{path}: grid {shape} differs from {first_path.name} {first_shape} "
                                   "(runs of one subject must share one grid)")
        tr = float(image.header.get_zooms()[3]) or bids.TR_S
        run_length[key] = image.shape[3] * tr

    ends = trials["onset"] + trials["duration"]
    lengths = np.array([run_length[k] for k in zip(trials["subject"], trials["session"], trials["run"])])
    late = np.flatnonzero(ends.to_numpy() > lengths)
    if late.size:
        row = trials.iloc[late[0]]
        path = events_files[(row["subject"], row["session"], row["run"])]
        raise NeurolatentError(f"{path}: trial {row['trial']} ends at {ends.iloc[late[0]]:.1f} s, "
                               f"beyond the run's {lengths[late[0]]:.0f} s")

    stimuli = (trials.drop_duplicates("image_name")[list(STIMULUS_COLUMNS)]
               .sort_values("image_name").reset_index(drop=True))
    clash = trials.groupby("image_name")["category"].nunique()
    if (clash > 1).any():
        raise NeurolatentError(f"{root}: image {clash[clash > 1].index[0]!r} appears under two categories")
    for rel in stimuli["image_path"]:
        if not (root / rel).is_file():
            raise NeurolatentError(f"{root / rel}: image named in the events is missing from the stimuli folder")
    return trials[list(TRIAL_COLUMNS)], stimuli


def run_trials(raw_dir: Path, trials_path: Path, stimuli_path: Path) -> dict:
    """The stage: build both tables, then write both (each atomically, only after all checks pass)."""
    trials, stimuli = build_tables(Path(raw_dir))
    with atomic_file(Path(trials_path)) as tmp_trials, atomic_file(Path(stimuli_path)) as tmp_stimuli:
        trials.to_parquet(tmp_trials, index=False)
        stimuli.to_parquet(tmp_stimuli, index=False)
    return {"trials": len(trials), "images": len(stimuli), "subjects": int(trials["subject"].nunique()),
            "runs": int(trials.groupby(["subject", "session", "run"]).ngroups)}
