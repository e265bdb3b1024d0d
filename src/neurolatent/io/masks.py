"""Masks of the voxels a sample keeps: the planted region (synthetic) or BOLD5000's SPM ROI masks."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from nilearn.image import resample_to_img

from neurolatent.errors import NeurolatentError

#: BOLD5000's ROI mask names on disk, typos included: LO for LOC, RRSC for RSC
ROI_SPELLINGS = {"EarlyVis": ("EarlyVis",), "LOC": ("LOC", "LO"), "OPA": ("OPA",), "PPA": ("PPA",),
                 "RSC": ("RSC", "RRSC")}


def region_mask(raw_root: Path, truth_dir: Path, subject: str, reference: nib.Nifti1Image,
                rois: list[str]) -> nib.Nifti1Image:
    """The visual region of a subject on its BOLD grid.

    Synthetic data: the planted region (``truth/roi_mask.nii.gz``). Real data: the union of the
    subject's SPM ROI masks (``derivatives/spm/sub-X/sub-X_mask-{LH,RH}<roi>.nii.gz``, BOLD5000's
    misspellings accepted), resampled (nearest) to the BOLD grid when it differs.
    """
    planted = truth_dir / "roi_mask.nii.gz"
    if planted.is_file():
        mask = nib.load(planted)
    else:
        folder = raw_root / "derivatives" / "spm" / f"sub-{subject}"
        found = []
        for roi in rois:
            for hemi in ("LH", "RH"):
                paths = [folder / f"sub-{subject}_mask-{hemi}{name}.nii.gz" for name in ROI_SPELLINGS[roi]]
                path = next((p for p in paths if p.is_file()), None)
                if path is None:
                    raise NeurolatentError(f"{paths[0]}: ROI mask missing (preprocess.rois names {roi})")
                found.append(path)
        images = [nib.load(p) for p in found]
        data = np.zeros(images[0].shape, dtype=bool)
        for image in images:
            if image.shape != data.shape or not np.allclose(image.affine, images[0].affine):
                image = resample_to_img(image, images[0], interpolation="nearest", force_resample=True,
                                        copy_header=True)
            data |= np.asanyarray(image.dataobj) > 0
        mask = nib.Nifti1Image(data.astype(np.uint8), images[0].affine)
    if mask.shape != reference.shape[:3] or not np.allclose(mask.affine, reference.affine, atol=1e-4):
        mask = resample_to_img(mask, nib.Nifti1Image(np.zeros(reference.shape[:3], np.uint8), reference.affine),
                               interpolation="nearest", force_resample=True, copy_header=True)
    if not np.asanyarray(mask.dataobj).any():
        raise NeurolatentError(f"{planted if planted.is_file() else raw_root}: the region mask of sub-{subject} is empty")
    return mask
