"""neurolatent.science.stitching: where mappings meet data, so no test stimulus reaches a fit; the
scores of identification and reconstruction on data with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from neurolatent.science import mapping
from neurolatent.science.stimuli import StimulusMatrix
from neurolatent.science.stitching import (GroupIdentification, fit_on_training, identify_held_out, picture_scores,
                                           pooled_latents, reconstruct_held_out)
from planted import N_IMAGES, planted_features, responses, split

NAMES = tuple(f"img{i}.jpg" for i in range(N_IMAGES))


@pytest.fixture(scope="module")
def features() -> np.ndarray:
    return planted_features()


def test_no_test_row_reaches_a_fit(features):
    """Test rows are poisoned with NaN on both sides: any fit that touched one would raise or hold NaN."""
    names = NAMES
    train, test = split()
    brain = responses(features, 3.0, seed=5)
    poisoned_x, poisoned_y = brain.copy(), features.copy()
    poisoned_x[test] = np.nan
    poisoned_y[test] = np.nan
    x, y = StimulusMatrix("x", poisoned_x, names), StimulusMatrix("y", poisoned_y, names)
    test_names = [names[i] for i in test]
    for method in ("ridge", "procrustes", "relative"):
        fitted = fit_on_training(mapping.build_mapping(method, 8, 32, 0), x, y, names, test_names)
        clean = mapping.build_mapping(method, 8, 32, 0).fit(brain[train], features[train])
        probe = brain[test]
        assert np.isfinite(fitted.transform(probe)).all(), method
        np.testing.assert_allclose(fitted.transform(probe), clean.transform(probe), atol=1e-8)
    per_subject = {"CSI1": StimulusMatrix("ae/CSI1", brain[:70], names[:70]),
                   "CSI2": StimulusMatrix("ae/CSI2", brain[50:], names[50:])}
    held_out = set(test_names)
    pooled_train, pooled_test = pooled_latents(per_subject, held_out)
    assert not held_out & set(pooled_train.stimuli) and set(pooled_test.stimuli) == held_out


def test_held_out_images_are_identified_where_a_signal_is_planted_and_at_chance_where_none_is(features):
    _, test = split()
    test_names = [NAMES[i] for i in test]
    for snr, planted in ((3.0, True), (0.0, False)):
        per_subject = [identify_held_out(mapping.build_mapping("ridge", 8, 32, 0),
                                         StimulusMatrix("x", responses(features, snr, seed), NAMES),
                                         StimulusMatrix("y", features, NAMES), test_names, 200,
                                         np.random.default_rng(seed)) for seed in (1, 2)]
        group = GroupIdentification.of_subjects(per_subject)
        assert group.two_way == np.mean([r.two_way for r in per_subject])
        assert list(group.row()) == list(GroupIdentification.STATISTICS)
        if planted:
            assert group.two_way > 0.9 and group.p < 0.01 and group.top1 > group.top5 / 5
        else:
            assert abs(group.two_way - 0.5) < 0.15 and group.p > 0.01 and group.chance_high < 0.75


def test_a_perfect_reconstruction_scores_one_and_identifies_every_image():
    rng = np.random.default_rng(6)
    originals = rng.random((10, 3, 8, 8))
    perfect = picture_scores(originals, originals, 100, np.random.default_rng(0))
    assert perfect["pixel_r"] == pytest.approx(1.0) and perfect["ssim"] > 0.999 and perfect["two_way"] == 1.0
    assert abs(perfect["pixel_r_other_images"]) < 0.2
    noise = picture_scores(rng.random((10, 3, 8, 8)), originals, 100, np.random.default_rng(0))
    assert abs(noise["pixel_r"]) < 0.2 and noise["two_way_p"] > 0.01


def test_reconstruction_from_the_true_latents_is_perfect_and_from_noise_is_not():
    """The 'latents' are the pictures themselves, decoded by reshaping: the ceiling (the decoder on
    the true latents) gives back the originals exactly; an fMRI representation that is a linear
    image of the pictures' five factors reconstructs them closely, one of pure noise does not."""
    rng = np.random.default_rng(7)
    n, shape = 60, (3, 8, 8)
    factors = rng.standard_normal((n, 5))
    pictures = 0.5 + 0.1 * factors @ rng.standard_normal((5, 192))
    target = StimulusMatrix("latents", pictures, NAMES[:n])
    pictures = pictures.reshape(n, *shape)
    test_of = {"S1": list(NAMES[:10]), "S2": list(NAMES[10:22])}
    originals = {s: pictures[[NAMES.index(name) for name in test]] for s, test in test_of.items()}
    fmri = {"linear": {s: StimulusMatrix(s, factors @ rng.standard_normal((5, 48)) + 0.05 * rng.standard_normal((n, 48)),
                                         NAMES[:n]) for s in test_of},
            "noise": {s: StimulusMatrix(s, rng.standard_normal((n, 48)), NAMES[:n]) for s in test_of}}
    result = reconstruct_held_out(fmri, target, originals, test_of, lambda z: z.reshape(len(z), *shape), 100, 0,
                                  shown=4)
    assert result.ceiling["pixel_r"] == pytest.approx(1.0) and result.ceiling["two_way"] == 1.0
    assert result.scores["linear"]["pixel_r"] > 0.9 and result.scores["linear"]["two_way"] > 0.9
    assert abs(result.scores["noise"]["pixel_r"] - result.scores["noise"]["pixel_r_other_images"]) < 0.1
    label, shown_originals, own, decoded = result.shown
    assert label == "linear, S1" and shown_originals.shape == own.shape == decoded.shape == (4, *shape)
    np.testing.assert_array_equal(own, originals["S1"][:4])
    # the score of each kind is the mean of the subjects' own
    one = reconstruct_held_out({"linear": {"S2": fmri["linear"]["S2"]}}, target, originals, test_of,
                               lambda z: z.reshape(len(z), *shape), 100, 0)
    assert one.ceiling["pixel_r"] == pytest.approx(1.0) and one.scores["linear"]["pixel_r"] > 0.9
