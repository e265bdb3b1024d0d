"""neurolatent.science.prediction: ridge from one feature space to every voxel, scored on held-out
images, with its shuffled control and the noise ceiling of the test images' repeats."""

from __future__ import annotations

import numpy as np
import pytest

from neurolatent.science.voxelwise import noise_ceiling_r
from neurolatent.science.prediction import (group_prediction, held_out_ceiling_r, held_out_r, predict_voxels)
from neurolatent.science.stimuli import StimulusMatrix
from planted import N_IMAGES, planted_features, responses, split

NAMES = tuple(f"img{i}.jpg" for i in range(N_IMAGES))


@pytest.fixture(scope="module")
def data():
    """(features, voxels at SNR 2, each image's two presentations, the test images)."""
    features = planted_features()
    voxels = StimulusMatrix("v", responses(features, 2.0, seed=3, voxels=100), NAMES)
    rng = np.random.default_rng(4)
    trials = StimulusMatrix("t", np.repeat(voxels.matrix, 2, axis=0) + rng.normal(size=(2 * N_IMAGES, 100)),
                            tuple(np.repeat(NAMES, 2)))
    _, test = split()
    return StimulusMatrix("f", features, NAMES), voxels, trials, [NAMES[i] for i in test]


def test_prediction_finds_the_signal_and_its_control_does_not(data):
    features, voxels, trials, test = data
    found = predict_voxels(features, voxels, test, np.random.default_rng(5), trials)
    # the control fits features shuffled among the training images: far below the real fit
    assert found.r.shape == (100,) and found.median_r > 0.6 and found.median_r_shuffled < found.median_r - 0.4
    assert 0 < found.median_r_normalised < 1.5
    assert np.isnan(predict_voxels(features, voxels, test, np.random.default_rng(5)).median_r_normalised)
    once = StimulusMatrix("once", trials.matrix[::2], trials.stimuli[::2])  # no test image presented twice
    assert np.isnan(predict_voxels(features, voxels, test, np.random.default_rng(5), once).median_r_normalised)
    np.testing.assert_array_equal(found.r, held_out_r(features, voxels, test))


def test_the_ceiling_is_the_test_images_own():
    """Only the test images' presentations enter the ceiling: two voxels, one repeating exactly on
    the test images (ceiling 1) and noisy on the others; no repeated test image, no ceiling."""
    rng = np.random.default_rng(0)
    names = tuple(np.repeat([f"i{k}" for k in range(6)], 2))
    values = np.repeat(rng.standard_normal((6, 2)), 2, axis=0)
    values[6:] += rng.standard_normal((6, 2))  # images i3..i5 differ between their presentations
    trials = StimulusMatrix("t", values, names)
    np.testing.assert_allclose(held_out_ceiling_r(trials, ["i0", "i1", "i2"]), 1.0)
    np.testing.assert_array_equal(held_out_ceiling_r(trials, ["i3", "i4", "i5"]),
                                  noise_ceiling_r(values[6:], np.asarray(names)[6:]))
    assert held_out_ceiling_r(StimulusMatrix("t", values[::2], names[::2]), ["i0", "i1"]) is None


def test_the_group_is_the_mean_of_the_subjects(data):
    features, voxels, trials, test = data
    other = StimulusMatrix("v2", responses(features.matrix, 0.0, seed=9, voxels=100), NAMES)
    samples = {"S1": voxels, "S2": other}
    regions = {"first": {"S1": np.arange(10), "S2": np.arange(20)}}
    group = group_prediction(features, samples, {"S1": test, "S2": test},
                             {s: np.random.default_rng(k) for k, s in enumerate(samples)}, None, regions)
    own = [predict_voxels(features, v, test, np.random.default_rng(k)) for k, v in enumerate(samples.values())]
    assert group.median_r == pytest.approx(np.mean([s.median_r for s in own]))
    assert group.median_r_shuffled == pytest.approx(np.mean([s.median_r_shuffled for s in own]))
    assert np.isnan(group.median_r_normalised)
    assert group.regions["first"] == pytest.approx(np.mean([np.nanmedian(own[0].r[:10]), np.nanmedian(own[1].r[:20])]))
    # the subject without signal pulls the mean down: it predicts nothing
    assert abs(group.subjects["S2"].median_r) < 0.2 < group.subjects["S1"].median_r
    with_ceiling = group_prediction(features, {"S1": voxels}, {"S1": test}, {"S1": np.random.default_rng(0)},
                                    {"S1": trials})
    assert np.isfinite(with_ceiling.median_r_normalised) and with_ceiling.regions == {}
