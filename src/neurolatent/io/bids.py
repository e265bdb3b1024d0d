"""BOLD5000's on-disk layout (BIDS 1.0.2, OpenNeuro ds001499): names, paths and constants.

Facts come from BOLD5000's own files (OpenNeuro ds001499 and its stimulus release). Everything
that builds or parses a BOLD5000 path goes through here, so the synthetic generator and the reader
cannot drift apart. Standard library only: ``neurolatent.pipeline.params`` imports it before the process's
numerics are pinned (see ``neurolatent.pipeline.numerics``).
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

SUBJECTS: tuple[str, ...] = ("CSI1", "CSI2", "CSI3", "CSI4")
#: functional sessions per subject (anatomy sits in one more session after these)
N_SESSIONS: dict[str, int] = {"CSI1": 15, "CSI2": 15, "CSI3": 15, "CSI4": 9}
#: task-5000scenes runs per subject
N_RUNS: dict[str, int] = {"CSI1": 142, "CSI2": 142, "CSI3": 142, "CSI4": 84}
MAX_RUNS_PER_SESSION = 10

TASK = "5000scenes"
TR_S = 2.0
N_VOLUMES = 194
TRIALS_PER_RUN = 37

EVENTS_COLUMNS: tuple[str, ...] = (
    "onset", "duration", "Subj", "Sess", "Run", "Trial", "ImgName", "ImgType",
    "StimOn(s)", "StimOff(s)", "Response", "RT", "stim_file",
)
IMG_TYPES: tuple[str, ...] = ("coco", "imagenet", "scenes")
#: stimulus folder of each image category (ImgType with ``rep_`` stripped)
CATEGORY_FOLDER: dict[str, str] = {"coco": "COCO", "imagenet": "ImageNet", "scenes": "Scene"}
STIMULI_DIR = PurePosixPath("BOLD5000_Stimuli/Scene_Stimuli/Presented_Stimuli")

#: the five visual ROIs of the SPM masks (derivatives/spm), each in both hemispheres
ROIS: tuple[str, ...] = ("EarlyVis", "LOC", "OPA", "PPA", "RSC")
HEMISPHERES: tuple[str, ...] = ("LH", "RH")
#: the mask names on disk that differ from <hemi><roi>, per subject (OpenNeuro ds001499)
ROI_TYPOS: dict[str, dict[str, str]] = {
    "CSI2": {"LHLOC": "LHLO", "RHLOC": "RHLO", "RHRSC": "RHRRSC"},
    "CSI3": {"LHLOC": "LHLO", "RHLOC": "RHLO"},
}
#: GLMsingle release 2.0: the betas' file prefix, and the folder of the ROI betas
GLMSINGLE_PREFIX = "GLMbetas-TYPED-FITHRF-GLMDENOISE-RR"
GLMSINGLE_ROI_DIR = PurePosixPath("BOLD5000_GLMsingle_ROI_betas/py")
#: where data/raw/bold5000 keeps the GLMsingle release (written by the dataset stage)
GLMSINGLE_DIR = PurePosixPath("derivatives/glmsingle")
#: the conventional test set: the images shown repeatedly (stimulus release)
REPEATED_LIST = PurePosixPath("BOLD5000_Stimuli/Scene_Stimuli/repeated_stimuli_113_list.txt")

RUN_RE = re.compile(
    r"^sub-(?P<subject>CSI\d+)_ses-(?P<session>\d{2})_task-5000scenes_run-(?P<run>\d{2})_"
    r"(?P<suffix>bold\.nii\.gz|bold\.nii|bold\.json|events\.tsv)$"
)


def run_stem(subject: str, session: int, run: int) -> str:
    """``sub-CSI1_ses-01_task-5000scenes_run-01``: the prefix of every file of one run."""
    return f"sub-{subject}_ses-{session:02d}_task-{TASK}_run-{run:02d}"


def func_dir(subject: str, session: int) -> PurePosixPath:
    """Folder of a session's functional files, relative to the BIDS root."""
    return PurePosixPath(f"sub-{subject}/ses-{session:02d}/func")


def bold_path(subject: str, session: int, run: int) -> PurePosixPath:
    """A raw run as acquired (4D NIfTI), relative to the BIDS root."""
    return func_dir(subject, session) / f"{run_stem(subject, session, run)}_bold.nii.gz"


def events_path(subject: str, session: int, run: int) -> PurePosixPath:
    """A run's events file (tab-separated, one row per trial), relative to the BIDS root."""
    return func_dir(subject, session) / f"{run_stem(subject, session, run)}_events.tsv"


def preproc_path(subject: str, session: int, run: int) -> PurePosixPath:
    """fMRIPrep's motion-corrected run in the subject's T1w space (its old naming, as in ds001499)."""
    return PurePosixPath("derivatives/fmriprep") / func_dir(subject, session) / (
        f"{run_stem(subject, session, run)}_bold_space-T1w_preproc.nii.gz")


def preproc_mask_path(subject: str, session: int, run: int) -> PurePosixPath:
    """fMRIPrep's brain mask of a T1w-space run."""
    return PurePosixPath("derivatives/fmriprep") / func_dir(subject, session) / (
        f"{run_stem(subject, session, run)}_bold_space-T1w_brainmask.nii.gz")


def run_path(space: str, subject: str, session: int, run: int) -> PurePosixPath:
    """The run a ``preprocess.space`` reads: ``raw`` (bold.nii.gz) or ``T1w`` (fMRIPrep's preproc)."""
    return bold_path(subject, session, run) if space == "raw" else preproc_path(subject, session, run)


def roi_mask_path(subject: str, hemisphere: str, roi: str) -> PurePosixPath:
    """An SPM ROI mask (T1w space), spelled as on disk for that subject (``sub-CSI2_mask-LHLO``)."""
    name = ROI_TYPOS.get(subject, {}).get(f"{hemisphere}{roi}", f"{hemisphere}{roi}")
    return PurePosixPath(f"derivatives/spm/sub-{subject}/sub-{subject}_mask-{name}.nii.gz")


def glmsingle_roi_name(subject: str, hemisphere: str, roi: str) -> str:
    """``CSI1_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_allses_LHEarlyVis.npy``: (trials, voxels) float32."""
    return f"{subject}_{GLMSINGLE_PREFIX}_allses_{hemisphere}{roi}.npy"


def glmsingle_session_name(subject: str, session: int) -> str:
    """``CSI1_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_ses-01.nii.gz``: (X, Y, Z, trials of the session)."""
    return f"{subject}_{GLMSINGLE_PREFIX}_ses-{session:02d}.nii.gz"


def category_of(img_type: str) -> str:
    """``rep_coco`` -> ``coco``; raises ValueError for anything outside BOLD5000's six types."""
    category = img_type[4:] if img_type.startswith("rep_") else img_type
    if category not in CATEGORY_FOLDER:
        raise ValueError(f"ImgType {img_type!r} is not one of {sorted(IMG_TYPES)} (optionally rep_-prefixed)")
    return category


def stimulus_path(category: str, image_name: str) -> PurePosixPath:
    """Path of an image file relative to the dataset root, e.g.
    ``BOLD5000_Stimuli/Scene_Stimuli/Presented_Stimuli/COCO/COCO_train2014_000000420713.jpg``."""
    return STIMULI_DIR / CATEGORY_FOLDER[category] / image_name


def is_safe_image_name(image_name: str) -> bool:
    """A bare file name: no folder part, no ``..``, not absolute, not empty."""
    return bool(image_name) and image_name not in (".", "..") and "/" not in image_name and "\\" not in image_name


def find_runs(root: Path, suffix: str) -> dict[tuple[str, int, int], Path]:
    """All task-5000scenes files of one suffix (``events.tsv``, ``bold.nii.gz``) under a BIDS root,
    keyed by (subject, session, run). Localizer runs and other tasks are not matched."""
    found: dict[tuple[str, int, int], Path] = {}
    for path in sorted(root.glob(f"sub-*/ses-*/func/*_task-{TASK}_run-*_{suffix}")):
        match = RUN_RE.match(path.name)
        if match and match["suffix"] == suffix:
            found[(match["subject"], int(match["session"]), int(match["run"]))] = path
    return found


def find_space_runs(root: Path, space: str) -> dict[tuple[str, int, int], Path]:
    """The runs of ``space`` under a BOLD5000 root, keyed by (subject, session, run): raw bold.nii.gz
    or fMRIPrep's T1w-space preproc runs (under derivatives/fmriprep)."""
    if space == "raw":
        return find_runs(root, "bold.nii.gz")
    found: dict[tuple[str, int, int], Path] = {}
    suffix = "_bold_space-T1w_preproc.nii.gz"
    for path in sorted((root / "derivatives" / "fmriprep").glob(f"sub-*/ses-*/func/*_task-{TASK}_run-*{suffix}")):
        match = RUN_RE.match(path.name.replace(suffix, "_bold.nii.gz"))
        if match:
            found[(match["subject"], int(match["session"]), int(match["run"]))] = path
    return found
