"""A subset of a real BOLD5000 copy, linked into the pipeline's folder in BOLD5000's layout: the
runs, masks and GLMsingle files of the forms asked for, the stimuli the events name. datalad /
git-annex copies are followed into their annex, never out of the dataset."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal

import pandas as pd

from neurolatent.errors import NeurolatentError
from neurolatent.io import bids
from neurolatent.io.events import read_events
from neurolatent.io.files import atomic_dir, write_json
from neurolatent.io.glmsingle import write_glmsingle_schedule
from neurolatent.science.constraints import checked


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


def _release_files(glmsingle_root: Path, stimuli_root: Path, subjects: list[str],
                   roots: tuple[Path, ...]) -> dict[str, Path]:
    """The GLMsingle release's files by name (real paths), found anywhere under ``glmsingle_root``;
    the presentation lists also under the stimulus release's Stimuli_Presentation_Lists."""
    root = Path(glmsingle_root)
    if not root.is_dir():
        raise NeurolatentError(f"{root}: data.glmsingle_root is not a folder")
    candidates = [path for path in sorted(root.rglob("*")) if path.is_file() or path.is_symlink()]
    candidates += [stimuli_root / "Stimuli_Presentation_Lists" / subject / f"{subject}_imgnames.txt"
                   for subject in subjects]
    found: dict[str, Path] = {}
    for path in candidates:
        real = _dataset_file(path, roots)
        if real is not None:
            found.setdefault(path.name, real)
    return found


def _link_glmsingle(glmsingle_root: Path, bids_root: Path, stimuli_root: Path, root: Path, roots: tuple[Path, ...],
                    subjects: list[str], sessions: list[int] | None, link: str) -> None:
    """Link each subject's GLMsingle files into ``derivatives/glmsingle`` (ROI betas, the selected
    sessions' whole-brain betas, brain mask, presentation list) and write the schedule the release's
    rows follow: every trial of the subject's events files in the real copy, in order."""
    found = _release_files(glmsingle_root, stimuli_root, subjects, roots)
    folder = root / bids.GLMSINGLE_DIR
    for subject in subjects:
        names = [bids.glmsingle_roi_name(subject, h, r) for h in bids.HEMISPHERES for r in bids.ROIS]
        required = [f"{subject}_imgnames.txt", *names]
        missing = [name for name in required if name not in found]
        if missing:
            raise NeurolatentError(f"{glmsingle_root}: no {missing[0]} in the GLMsingle release (data.glmsingle_root)")
        for name in names:
            _link(found[name], folder / bids.GLMSINGLE_ROI_DIR / name, link)
        _link(found[f"{subject}_imgnames.txt"], folder / subject / f"{subject}_imgnames.txt", link)
        chosen = sessions or range(1, bids.N_SESSIONS[subject] + 1)
        for name in [f"{subject}_brainmask.nii.gz", *(bids.glmsingle_session_name(subject, s) for s in chosen)]:
            if name in found:  # only mask: brain reads them; the fmri stage names what is missing
                _link(found[name], folder / subject / name, link)
        events = [read_events(path).assign(session=ses, run=run)
                  for (who, ses, run), path in bids.find_runs(bids_root, "events.tsv").items() if who == subject]
        write_glmsingle_schedule(pd.concat(events, ignore_index=True), folder / subject / f"{subject}_schedule.tsv")


@checked(forms=list[Literal["raw", "T1w", "glmsingle"]], link=Literal["hardlink", "copy"])
def link_subset(bids_root: Path, stimuli_root: Path, glmsingle_root: Path | None, out_dir: Path, truth_dir: Path, *,
                subjects: list[str], sessions: list[int] | None, runs: list[int] | None, forms: list[str],
                link: str = "hardlink", progress: Callable[..., Iterable] | None = None) -> dict:
    """Link a subset of a real BOLD5000 copy (OpenNeuro ds001499 at ``bids_root``, the stimulus
    release at ``stimuli_root``, GLMsingle release 2.0 at ``glmsingle_root``) into ``out_dir``.

    Takes each selected run's (``subjects``, ``sessions``, ``runs``; None: all) events.tsv, and by
    ``forms``: its raw bold.nii.gz and bold.json, fMRIPrep's T1w-space run and brain mask with the
    subjects' SPM ROI masks, the GLMsingle release's files; then the stimuli the events name, the
    113 repeated images' list, and the dataset's top-level files; ``truth_dir`` gets a
    ``truth.json`` saying nothing is planted. Files are hard-linked (``link``: ``hardlink``, or
    ``copy``; a hard link falls back to a copy across filesystems). A form asked for and missing is a
    one-line error. ``progress`` wraps the runs' iterable (tqdm-like), or None. Returns counts.
    """
    bids_root, stimuli_root = Path(bids_root), Path(stimuli_root)
    for name, path in (("data.bids_root", bids_root), ("data.stimuli_root", stimuli_root)):
        if not path.is_dir():
            raise NeurolatentError(f"{path}: {name} is not a folder")
    presented = stimuli_root / bids.STIMULI_DIR.relative_to("BOLD5000_Stimuli")
    if not presented.is_dir():
        raise NeurolatentError(f"{presented}: missing; data.stimuli_root must be the BOLD5000_Stimuli folder")
    found_runs = bids.find_runs(bids_root, "events.tsv")
    chosen = [key for key in found_runs if key[0] in subjects
              and (sessions is None or key[1] in sessions)
              and (runs is None or key[2] in runs)]
    for subject in subjects:
        if not any(key[0] == subject for key in chosen):
            raise NeurolatentError(f"{bids_root}: no task-5000scenes events of sub-{subject} in the selected sessions/runs")
    per_run = [bids.events_path]
    if "raw" in forms:
        per_run += [bids.bold_path, lambda *key: bids.func_dir(*key[:2]) / f"{bids.run_stem(*key)}_bold.json"]
    if "T1w" in forms:
        per_run += [bids.preproc_path, bids.preproc_mask_path]

    roots = tuple(Path(r) for r in (bids_root, stimuli_root, glmsingle_root) if r is not None)

    def present(path: Path) -> Path | None:
        return _dataset_file(path, roots)

    with atomic_dir(out_dir) as root, atomic_dir(truth_dir) as truth:
        for name in ("dataset_description.json", "participants.tsv", f"task-{bids.TASK}_bold.json", ".bidsignore"):
            if (real := present(bids_root / name)) is not None:
                _link(real, root / name, link)
        images: set[tuple[str, str]] = set()
        for key in sorted(chosen) if progress is None else progress(sorted(chosen), desc="runs", unit="run"):
            for path_of in per_run:
                rel = path_of(*key)
                real = present(bids_root / rel)
                if real is None and not rel.name.endswith("_bold.json"):
                    raise NeurolatentError(f"{bids_root / rel}: missing (data.forms asks for it)")
                if real is not None:
                    _link(real, root / rel, link)
            events = read_events(bids_root / bids.events_path(*key))
            images |= set(zip(events["image_name"], events["category"]))
        if "T1w" in forms:
            for subject in subjects:
                for hemisphere in bids.HEMISPHERES:
                    for roi in bids.ROIS:
                        rel = bids.roi_mask_path(subject, hemisphere, roi)
                        if (real := present(bids_root / rel)) is None:
                            raise NeurolatentError(f"{bids_root / rel}: SPM ROI mask missing (data.forms has T1w)")
                        _link(real, root / rel, link)
        if "glmsingle" in forms:
            _link_glmsingle(Path(glmsingle_root), bids_root, stimuli_root, root, roots, subjects, sessions, link)
        for name, category in sorted(images):
            rel = bids.stimulus_path(category, name)
            source = presented / rel.relative_to(bids.STIMULI_DIR)
            if (real := present(source)) is None:
                raise NeurolatentError(f"{source}: image named in the events is missing from data.stimuli_root")
            _link(real, root / rel, link)
        repeated = present(stimuli_root / bids.REPEATED_LIST.relative_to("BOLD5000_Stimuli"))
        if repeated is not None:
            _link(repeated, root / bids.REPEATED_LIST, link)
        write_json({"planted": False, "source": "bids", "bids_root": str(bids_root)}, truth / "truth.json")
    return {"runs": len(chosen), "images": len(images)}
