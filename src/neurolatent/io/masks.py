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


def roi_masks(root: Path, subject: str, rois: list[str], reference: nib.Nifti1Image) -> dict[tuple[str, str], np.ndarray]:
    """The subject's SPM ROI masks ``rois`` (both hemispheres) on ``reference``'s T1w grid:
    {(hemisphere, roi): (X, Y, Z) bool}, in the order of ``rois``, each LH then RH.

    root : the BOLD5000-layout folder; reference : a T1w-space run (or image) of the subject.
    """
    masks = {}
    for roi in rois:
        for hemisphere in bids.HEMISPHERES:
            path = Path(root) / bids.roi_mask_path(subject, hemisphere, roi)
            if not path.is_file():
                raise NeurolatentError(f"{path}: ROI mask missing (preprocess.rois names {roi})")
            masks[hemisphere, roi] = np.asanyarray(_on_grid(load_image(path), reference, path.name).dataobj) > 0
    return masks


def region_mask(masks: dict[tuple[str, str], np.ndarray], affine: np.ndarray, subject: str) -> nib.Nifti1Image:
    """The union of ROI masks (:func:`roi_masks`), as a NIfTI on ``affine``; an error if it is empty."""
    data = np.any(np.stack(list(masks.values())), axis=0)
    if not data.any():
        raise NeurolatentError(f"derivatives/spm/sub-{subject}: the ROI masks of sub-{subject} select no voxel of "
                               "its runs' grid")
    return nib.Nifti1Image(data.astype(np.uint8), affine)


def voxel_rois(masks: dict[tuple[str, str], np.ndarray], region: np.ndarray) -> list[tuple[str, str]]:
    """The (hemisphere, roi) of each voxel of ``region`` (X, Y, Z bool), in C order: the first mask
    of ``masks`` that holds it (BOLD5000's masks can overlap by a few voxels; the log says how many)."""
    labels: list[tuple[str, str] | None] = [None] * int(region.sum())
    taken = np.zeros(int(region.sum()), dtype=bool)
    overlap = 0
    for key, mask in masks.items():
        inside = mask[region]
        overlap += int((inside & taken).sum())
        for column in np.flatnonzero(inside & ~taken):
            labels[column] = key
        taken |= inside
    if overlap:
        log.info("%d voxels lie in two ROI masks: each is counted in the first (%s)", overlap,
                 ", ".join(f"{h}{r}" for h, r in masks))
    return labels  # every region voxel is in some mask: the region is their union


def brain_mask(root: Path, space: str, first_run: tuple[str, int, int], reference: nib.Nifti1Image) -> nib.Nifti1Image:
    """The brain: fMRIPrep's mask of the subject's first T1w run, or an EPI mask of its first raw run."""
    if space == "T1w":
        path = Path(root) / bids.preproc_mask_path(*first_run)
        if not path.is_file():
            raise NeurolatentError(f"{path}: fMRIPrep's brain mask of the run is missing")
        return _on_grid(load_image(path), reference, path.name)
    return compute_epi_mask(nib.Nifti1Image(np.asanyarray(reference.dataobj).mean(axis=3), reference.affine))
