"""Masks of the voxels a sample keeps, each in its own space: the rule is that a mask meets only data
in its own space.

- region (T1w space): the union of a subject's SPM ROI masks (``derivatives/spm``, BOLD5000's typos
  included), drawn on fMRIPrep's T1w-space data. Between two T1w grids a nearest-neighbour resample
  is fine and logged; raw runs never get ROI masks (``config`` refuses ``mask: region`` with
  ``space: raw``).
- brain: fMRIPrep's brain mask of a T1w run, or an EPI mask computed from a raw run (nilearn).
"""

from __future__ import annotations

import logging
from pathlib import Path

import nibabel as nib
import numpy as np
from nilearn.image import resample_to_img
from nilearn.masking import compute_epi_mask

from neurolatent.errors import NeurolatentError
from neurolatent.io import bids
from neurolatent.io.nifti import load_image

log = logging.getLogger(__name__)


def _on_grid(mask: nib.Nifti1Image, reference: nib.Nifti1Image, label: str) -> nib.Nifti1Image:
    if mask.shape[:3] == reference.shape[:3] and np.allclose(mask.affine, reference.affine, atol=1e-4):
        return mask
    log.info("%s: resampled (nearest) from grid %s to the runs' T1w grid %s", label, mask.shape[:3], reference.shape[:3])
    target = nib.Nifti1Image(np.zeros(reference.shape[:3], np.uint8), reference.affine)
    return resample_to_img(mask, target, interpolation="nearest", force_resample=True, copy_header=True)


def region_mask(root: Path, subject: str, rois: list[str], reference: nib.Nifti1Image) -> nib.Nifti1Image:
    """The union of the subject's SPM ROI masks ``rois`` (both hemispheres) on ``reference``'s T1w grid.

    root : the BOLD5000-layout folder; reference : a T1w-space run (or image) of the subject.
    """
    data = np.zeros(reference.shape[:3], dtype=bool)
    for roi in rois:
        for hemisphere in bids.HEMISPHERES:
            path = Path(root) / bids.roi_mask_path(subject, hemisphere, roi)
            if not path.is_file():
                raise NeurolatentError(f"{path}: ROI mask missing (preprocess.rois names {roi})")
            data |= np.asanyarray(_on_grid(load_image(path), reference, path.name).dataobj) > 0
    if not data.any():
        raise NeurolatentError(f"{Path(root) / 'derivatives' / 'spm' / f'sub-{subject}'}: the ROI masks of "
                               f"sub-{subject} select no voxel of its runs' grid")
    return nib.Nifti1Image(data.astype(np.uint8), reference.affine)


def brain_mask(root: Path, space: str, first_run: tuple[str, int, int], reference: nib.Nifti1Image) -> nib.Nifti1Image:
    """The brain: fMRIPrep's mask of the subject's first T1w run, or an EPI mask of its first raw run."""
    if space == "T1w":
        path = Path(root) / bids.preproc_mask_path(*first_run)
        if not path.is_file():
            raise NeurolatentError(f"{path}: fMRIPrep's brain mask of the run is missing")
        return _on_grid(load_image(path), reference, path.name)
    return compute_epi_mask(nib.Nifti1Image(np.asanyarray(reference.dataobj).mean(axis=3), reference.affine))
