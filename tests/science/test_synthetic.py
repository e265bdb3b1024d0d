"""The synthetic twin's building blocks, each against a known answer: stable seeds, affines,
trilinear sampling, the HRF regressors and the drift basis, drawn images, shared content."""

from __future__ import annotations

import numpy as np

from neurolatent.science.synthetic import (draw_image, drift_basis, name_seed, rigid, sample_trilinear, shared_content,
                                           trial_regressors)


def test_name_seed_is_stable_and_label_sensitive():
    # the first 8 bytes of sha256("CSI1\x1f3"), little-endian: the same in every process
    assert name_seed("CSI1", 3) == name_seed("CSI1", "3") == 0x6FF8_CC27_B238_EDF9
    assert name_seed("CSI1", 3) != name_seed("CSI13")  # the separator keeps labels apart
    assert 0 <= name_seed("x") < 2 ** 64


def test_rigid_scales_rotates_then_translates():
    affine = rigid(np.array([0.0, 0.0, 90.0]), np.array([1.0, 2.0, 3.0]), scale=2.0)
    np.testing.assert_allclose(affine @ [1, 0, 0, 1], [1.0, 4.0, 3.0, 1.0], atol=1e-12)  # x -> 2y, then moved


def test_trilinear_sampling_of_a_linear_volume_is_exact_and_zero_outside():
    i, j, k = np.meshgrid(np.arange(4), np.arange(4), np.arange(4), indexing="ij")
    volume = (i + 10 * j + 100 * k).astype(np.float32)
    half = np.diag([0.5, 0.5, 0.5, 1.0])  # output voxel (a, b, c) reads input (a/2, b/2, c/2)
    out = sample_trilinear(volume, half, (7, 7, 7))
    assert out[1, 3, 5] == 0.5 + 15 + 250
    shifted = np.eye(4)
    shifted[0, 3] = 10.0
    assert not sample_trilinear(volume, shifted, (2, 2, 2)).any()


def test_trial_regressors_peak_at_one_after_the_onset():
    design = trial_regressors(np.array([10.0, 40.0]), np.array([1.0, 1.0]), 40, 2.0)
    assert design.shape == (40, 2) and np.allclose(design.max(axis=0), 1.0)
    assert 10 + 3 <= 2.0 * design[:, 0].argmax() <= 10 + 7  # the Glover HRF peaks ~5 s after onset
    assert np.allclose(design[:5, 0], 0.0)


def test_drift_basis_is_slow_cosines_of_unit_sd():
    basis = drift_basis(194, 2.0)
    # periods >= 128 s over 388 s: floor(2 * 388 / 128) = 6 cosines
    assert basis.shape == (194, 6) and np.allclose(basis.std(axis=0), 1.0)


def test_images_and_shared_content_are_functions_of_their_names():
    first = draw_image("img1.jpg", "coco", 32)
    assert first.shape == (32, 32, 3) and first.dtype == np.uint8
    assert np.array_equal(first, draw_image("img1.jpg", "coco", 32))
    assert not np.array_equal(first, draw_image("img2.jpg", "coco", 32))
    content = shared_content(["a", "b"], 3, 0)
    assert np.array_equal(content[1], shared_content(["b"], 3, 0)[0]) and content.shape == (2, 3)
