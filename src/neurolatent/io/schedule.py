"""BOLD5000's trial schedule: which image each subject saw in which run, trial by trial.

The real task-5000scenes events files of CSI1 and CSI2 (a copy is in tests/data/bold5000/events) are packed,
cell for cell as text, into ``resources/bold5000_schedule.tsv.gz``, so the synthetic generator
writes events files byte-identical to the real ones. CSI3 and CSI4 have no real files here; their
schedules are derived from CSI1's and CSI2's with the same structure (see :func:`derive_schedule`).
"""

from __future__ import annotations

import gzip
import io
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from neurolatent.io.bids import EVENTS_COLUMNS, N_RUNS, find_runs
from neurolatent.science.constraints import Count, Seed, checked

RESOURCE = "bold5000_schedule.tsv.gz"
#: the real subject whose schedule a derived subject is built from
DERIVED_FROM = {"CSI3": "CSI1", "CSI4": "CSI2"}
KEY_COLUMNS = ("subject", "session", "run")


def pack_events_dir(events_root: Path) -> bytes:
    """Pack every task-5000scenes events file under ``events_root`` into the resource format.

    Returns the gzip bytes (mtime 0, so the same input gives the same bytes). Each row is one
    trial: subject, session, run, then the file's 13 cells exactly as written.
    """
    lines = ["\t".join(KEY_COLUMNS + EVENTS_COLUMNS)]
    for (subject, session, run), path in sorted(find_runs(events_root, "events.tsv").items()):
        text = path.read_bytes().decode("ascii")
        rows = text.split("\r\n")
        if rows[0].split("\t") != list(EVENTS_COLUMNS) or rows[-1] != "":
            raise ValueError(f"{path}: not a CRLF task-5000scenes events file with BOLD5000's 13 columns")
        lines += [f"{subject}\t{session}\t{run}\t{row}" for row in rows[1:-1]]
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as gz:
        gz.write(("\n".join(lines) + "\n").encode("ascii"))
    return buffer.getvalue()


def _real_schedules() -> pd.DataFrame:
    data = resources.files("neurolatent.resources").joinpath(RESOURCE).read_bytes()
    table = pd.read_csv(io.BytesIO(gzip.decompress(data)), sep="\t", dtype=str, keep_default_na=False)
    return table.astype({"session": int, "run": int})


@checked(n_runs=Count, seed=Seed)
def derive_schedule(base: pd.DataFrame, subject: str, n_runs: int, seed: int) -> pd.DataFrame:
    """A schedule with BOLD5000's structure for a subject without real events files.

    Keeps ``base``'s run slots (sessions, runs, onsets, durations) for its first ``n_runs`` runs,
    and shuffles which image (with its type, response and RT) fills which slot within each
    session. Typing stays as in the real files: one presentation of each image is typed plainly,
    its other presentations ``rep_`` (in the real data the plain one is not always the first).

    Parameters
    ----------
    base : DataFrame
        One real subject's schedule (rows as in the resource, chronological).
    subject : str
        The derived subject, written into ``Subj``.
    n_runs : int
        Runs to keep (CSI4 has 84).
    seed : int
        Seed of the shuffle.
    """
    runs = base[["session", "run"]].drop_duplicates().iloc[:n_runs]
    table = base.merge(runs, on=["session", "run"]).reset_index(drop=True)
    rng = np.random.default_rng(seed)
    moving = ["ImgName", "ImgType", "Response", "RT", "stim_file"]
    for _, rows in table.groupby("session", sort=True):
        order = rng.permutation(rows.index.to_numpy())
        table.loc[rows.index, moving] = table.loc[order, moving].to_numpy()
    # cutting runs can drop an image's plain presentation: then its first showing becomes plain
    plain = ~table["ImgType"].str.startswith("rep_")
    orphan = ~table["ImgName"].isin(table.loc[plain, "ImgName"]) & ~table["ImgName"].duplicated()
    table.loc[orphan, "ImgType"] = table.loc[orphan, "ImgType"].str.removeprefix("rep_")
    table["subject"] = subject
    table["Subj"] = subject.removeprefix("CSI")
    return table


@checked(seed=Seed)
def load_schedule(subject: str, seed: int = 0) -> pd.DataFrame:
    """The schedule of one subject: one row per trial, chronological.

    Columns: subject, session, run, then BOLD5000's 13 events columns as text.
    Real for CSI1 and CSI2, derived (seeded) for CSI3 and CSI4.
    """
    table = _real_schedules()
    if subject in DERIVED_FROM:
        base = table[table["subject"] == DERIVED_FROM[subject]]
        return derive_schedule(base, subject, N_RUNS[subject], seed)
    return table[table["subject"] == subject].reset_index(drop=True)


def events_text(trials: pd.DataFrame) -> bytes:
    """One run's events.tsv, exactly as BOLD5000 writes it (tab-separated, CRLF endings)."""
    rows = ["\t".join(EVENTS_COLUMNS)] + ["\t".join(cells) for cells in trials[list(EVENTS_COLUMNS)].to_numpy()]
    return ("\r\n".join(rows) + "\r\n").encode("ascii")


def plant_repeats(selection: pd.DataFrame, whole: pd.DataFrame, repeated: list[str], count: int,
                  image_seed: int, slot_seed: int) -> pd.DataFrame:
    """One subject's ``selection`` of runs with ``count`` of BOLD5000's repeated images shown in it
    as often as the subject's ``whole`` schedule shows them (CSI1: 4 times each).

    BOLD5000 shows its 113 repeated images (the conventional test set) about four times each,
    spread over all sessions, so a few runs hold almost no image twice; this puts the repeat design
    into the selected runs. The images are the first ``count`` of ``repeated`` that ``whole`` shows
    more than once, in an order drawn with ``image_seed`` (give every subject the same one: the real
    subjects share the repeated images). Each image's presentations (its rows of ``whole``: type,
    response and RT, one typed plainly and the others ``rep_``) take its own slots in the
    selection and then slots, drawn with ``slot_seed``, of images the selection shows once; each slot
    keeps its session, run, trial, onset and duration.

    Parameters
    ----------
    selection, whole : DataFrame
        Rows as :func:`load_schedule`'s, of one subject: the selected runs and every run.
    repeated : list of str
        BOLD5000's repeated images (the stimulus release's list).
    count : int
        How many to plant; 0 returns ``selection`` unchanged.
    image_seed, slot_seed : int
        Seeds of the images' order and of the slots they take.

    Raises ValueError when the subject's schedule has fewer repeated images than ``count`` or the
    selection too few trials for their presentations.
    """
    if count == 0:
        return selection
    shown = whole["ImgName"].value_counts()
    order = np.random.default_rng(image_seed).permutation(sorted(repeated))
    candidates = [str(name) for name in order if shown.get(name, 0) > 1]
    if len(candidates) < count:
        raise ValueError(f"{len(candidates)} repeated images in the schedule, {count} asked for")
    planted = candidates[:count]
    needed = int(shown[planted].sum())
    table = selection.reset_index(drop=True).copy()
    own = table["ImgName"].isin(planted)
    once = ~own & ~table["ImgName"].duplicated(keep=False) & ~table["ImgType"].str.startswith("rep_")
    if needed > own.sum() + once.sum():
        raise ValueError(f"{count} repeated images need {needed} trials, the selection has {len(table)}")
    rng = np.random.default_rng(slot_seed)
    free = np.concatenate([np.flatnonzero(own.to_numpy()),
                           rng.permutation(np.flatnonzero(once.to_numpy()))[:needed - own.sum()]])
    slots = rng.permutation(free)
    moving = ["ImgName", "ImgType", "Response", "RT", "stim_file"]
    rows = whole[whole["ImgName"].isin(planted)].sort_values("ImgName", kind="stable")
    table.loc[slots, moving] = rows[moving].to_numpy()
    return table
