"""NIfTI files: written as the same bytes for the same image, read back as stored (scaled when the
header says so), a run as (volumes, voxels) with its TR, and damaged files named."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest

from neurolatent.errors import NeurolatentError
from neurolatent.io.nifti import check_bold, gunzip, gzip_is_complete, load_image, load_run, read_nifti, write_nifti_gz


def _run(tmp_path, name="run.nii.gz", data=None):
    data = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5) if data is None else data
    image = nib.Nifti1Image(data, np.eye(4))
    image.header.set_zooms((2.0, 2.0, 2.0, 1.5))
    write_nifti_gz(image, tmp_path / name)
    return tmp_path / name, data


def test_the_same_image_writes_the_same_bytes_and_reads_back(tmp_path):
    path, data = _run(tmp_path)
    again, _ = _run(tmp_path, "again.nii.gz")
    assert path.read_bytes() == again.read_bytes()
    read, header = read_nifti(path)
    assert np.array_equal(read, data) and header.get_zooms()[3] == 1.5
    assert np.array_equal(load_image(path).get_fdata(), data)


def test_a_run_is_volumes_by_voxels_in_the_mask_with_its_tr(tmp_path):
    path, data = _run(tmp_path)
    mask = np.zeros((2, 3, 4), bool)
    mask[1, 2, 3] = mask[0, 0, 0] = True
    series, tr = load_run(path, mask)
    assert series.shape == (5, 2) and tr == 1.5
    assert series[:, 0].tolist() == data[0, 0, 0].tolist() and series[:, 1].tolist() == data[1, 2, 3].tolist()


def test_nan_in_a_run_and_a_truncated_stream_are_named(tmp_path):
    data = np.zeros((2, 2, 2, 3), np.float32)
    data[0, 0, 0, 1] = np.nan
    path, _ = _run(tmp_path, "nan.nii.gz", data)
    with pytest.raises(NeurolatentError, match="NaN or infinite"):
        load_run(path)
    whole, _ = _run(tmp_path)
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(whole.read_bytes()[:-20])
    with pytest.raises(NeurolatentError, match="corrupt gzip stream"):
        gunzip(cut)
    assert gzip_is_complete(whole, len(gzip.decompress(whole.read_bytes())))
    assert not gzip_is_complete(cut, len(gzip.decompress(whole.read_bytes())))


def test_check_bold_wants_four_dimensions(tmp_path):
    path = tmp_path / "three.nii.gz"
    write_nifti_gz(nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.eye(4)), path)
    with pytest.raises(NeurolatentError, match=r"BOLD run is 3D \(2, 2, 2\), expected 4D"):
        check_bold(path)
    assert check_bold(_run(tmp_path)[0]).shape == (2, 3, 4, 5)
