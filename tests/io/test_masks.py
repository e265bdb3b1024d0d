"""ROI masks: read in both hemispheres on the run's grid (the release's spellings), their union as
the region, each region voxel labelled by the first mask that holds it, and missing masks named."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from neurolatent.errors import NeurolatentError
from neurolatent.io.bids import roi_mask_path
from neurolatent.io.masks import region_mask, roi_masks, voxel_rois
from neurolatent.io.nifti import write_nifti_gz


def _mask(root, subject, hemisphere, roi, voxels):
    data = np.zeros((3, 3, 3), np.uint8)
    for voxel in voxels:
        data[voxel] = 1
    path = root / roi_mask_path(subject, hemisphere, roi)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_nifti_gz(nib.Nifti1Image(data, np.eye(4)), path)


def test_masks_region_and_labels(tmp_path):
    _mask(tmp_path, "CSI2", "LH", "LOC", [(0, 0, 0), (1, 1, 1)])  # on disk as LHLO (the release's spelling)
    _mask(tmp_path, "CSI2", "RH", "LOC", [(1, 1, 1), (2, 2, 2)])
    reference = nib.Nifti1Image(np.zeros((3, 3, 3, 2), np.float32), np.eye(4))
    masks = roi_masks(tmp_path, "CSI2", ["LOC"], reference)
    assert list(masks) == [("LH", "LOC"), ("RH", "LOC")]
    region = region_mask(masks, np.eye(4), "CSI2")
    inside = np.asanyarray(region.dataobj) > 0
    assert inside.sum() == 3
    # the overlap voxel (1, 1, 1) is counted in the first mask, LH
    assert voxel_rois(masks, inside) == [("LH", "LOC"), ("LH", "LOC"), ("RH", "LOC")]


def test_a_missing_mask_and_an_empty_region_are_named(tmp_path):
    reference = nib.Nifti1Image(np.zeros((3, 3, 3, 2), np.float32), np.eye(4))
    with pytest.raises(NeurolatentError, match="ROI mask missing \\(preprocess.rois names PPA\\)"):
        roi_masks(tmp_path, "CSI1", ["PPA"], reference)
    with pytest.raises(NeurolatentError, match="select no voxel"):
        region_mask({("LH", "PPA"): np.zeros((3, 3, 3), bool)}, np.eye(4), "CSI1")
