"""Mappings between latent spaces, identification, encoding and the held-out split, on data with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ortho_group
from sklearn.utils.estimator_checks import parametrize_with_checks

from neurolatent.science import mapping
from planted import N_IMAGES, planted_features, responses, split

@pytest.fixture(scope="module")
def features() -> np.ndarray:
    return planted_features()


@pytest.mark.parametrize("method", ["ridge", "procrustes", "relative"])
def test_identification_high_at_high_snr_and_chance_at_zero(features, method):
    train, test = split()
    for snr, planted in ((3.0, True), (0.0, False)):
        brain = responses(features, snr, seed=1)
        fitted = mapping.build_mapping(method, dims=8, anchors=32, seed=0).fit(brain[train], features[train])
        found = mapping.identification(*fitted.transform(brain[test], features[test]), 500, 0)
        if planted:
            assert found.two_way >= 0.90 and found.p < 0.01, (method, found.two_way)
        else:
            assert found.null_low <= found.two_way <= found.null_high, (method, found.two_way)


def test_two_way_top_k_on_a_known_similarity():
    similarity = np.array([[0.9, 0.1, 0.2], [0.5, 0.4, 0.3], [0.0, 0.8, 0.7]])
    assert mapping.two_way_accuracy(similarity) == pytest.approx((2 + 1 + 1) / 6)
    found = mapping.identification(np.eye(3), np.eye(3), 10, 0)
    assert (found.two_way, found.top1, found.top5) == (1.0, 1.0, 1.0)


def test_procrustes_and_relative_recover_a_rotated_space():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(80, 6)) * np.array([6, 5, 4, 3, 2, 1])  # distinct variances: PCA axes are defined
    y = x @ ortho_group.rvs(6, random_state=3)
    procrustes = mapping.ProcrustesMapping(dims=6).fit(x[:60], y[:60])
    np.testing.assert_allclose(procrustes.predict(x[60:]), y[60:], atol=1e-6)
    relative = mapping.RelativeMapping(n_anchors=20, random_state=0).fit(x[:60], y[:60])
    # an isometry keeps every angle: the relative representations are equal, no map is fitted
    np.testing.assert_allclose(*relative.transform(x[60:], y[60:]), atol=1e-9)


def test_ridge_picks_its_penalty_on_training_rows_only(features):
    train, _ = split()
    brain = responses(features, 3.0, seed=4)
    ridge = mapping.RidgeMapping().fit(brain[train], features[train])
    assert ridge.ridge_.alpha_ in mapping.ALPHAS


def test_encoding_finds_the_planted_region_not_the_rest(features):
    train, test = split()
    region = responses(features, 2.0, seed=6, voxels=200)
    outside = np.random.default_rng(7).normal(size=(N_IMAGES, 200))
    voxels = np.hstack([region, outside])
    ridge = mapping.RidgeMapping(alpha_per_target=True).fit(features[train], voxels[train])
    r = mapping.voxelwise_r(*ridge.transform(features[test], voxels[test]))
    assert np.median(r[:200]) > 0.6 and abs(np.median(r[200:])) < 0.15


def test_noise_ceiling_matches_the_correlation_of_truth_with_the_repeat_average():
    rng = np.random.default_rng(8)
    n_images, repeats, n_voxels = 1000, 3, 50
    signal = rng.normal(size=(n_images, n_voxels))
    noise_sd = np.linspace(0.3, 3.0, n_voxels)
    image_of_trial = np.repeat(np.arange(n_images), repeats)
    trials = signal[image_of_trial] + rng.normal(size=(len(image_of_trial), n_voxels)) * noise_sd
    ceiling = mapping.noise_ceiling_r(trials, image_of_trial)
    average = trials.reshape(n_images, repeats, n_voxels).mean(axis=1)
    achieved = mapping.voxelwise_r(signal, average)  # the best possible model: the true signal
    assert np.abs(ceiling - achieved).max() < 0.08 and np.abs(ceiling - achieved).mean() < 0.02
    assert ceiling[0] > 0.95 and ceiling[-1] < 0.6
    with pytest.raises(ValueError, match="more than once"):
        mapping.noise_ceiling_r(trials[:n_images], np.arange(n_images))


def test_split_takes_repeats_or_a_seeded_holdout():
    images = pd.DataFrame({"subject": ["CSI1"] * 10 + ["CSI2"] * 10, "image_name": [f"i{i}" for i in range(20)],
                           "presentations": [2, 1] * 5 + [3, 1] * 5})
    test = mapping.split_test_images(images, "repeats", 0.2, 2, 0)
    assert list(test) == [True, False] * 10
    holdout = mapping.split_test_images(images, "holdout", 0.3, 2, 0)
    assert holdout.groupby(images["subject"]).sum().tolist() == [3, 3]
    assert (holdout == mapping.split_test_images(images, "holdout", 0.3, 2, 0)).all()
    with pytest.raises(ValueError, match="CSI1 has 0 test images"):
        mapping.split_test_images(images.assign(presentations=1), "repeats", 0.2, 2, 0)


#: checks of scikit-learn's suite that do not apply, with the reason (everything else must pass)
NOT_APPLICABLE = {
    "ProcrustesMapping": {
        "check_regressors_train": "an orthogonal map to a single target is a sign flip of X's first principal "
                                  "component: it is for paired multivariate spaces, not single-target regression",
    },
}


def _expected_failures(estimator):
    return NOT_APPLICABLE.get(type(estimator).__name__, {})


@parametrize_with_checks([mapping.RidgeMapping(), mapping.ProcrustesMapping(dims=2), mapping.RelativeMapping(n_anchors=5)],
                         expected_failed_checks=_expected_failures, xfail_strict=True)
def test_mappings_are_scikit_learn_estimators(estimator, check):
    check(estimator)


def _nsd_ceiling(trials: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """NSD's definition written out (Allen et al. 2022, with the 1/n term for unequal repeat counts)."""
    z = (trials - trials.mean(axis=0)) / trials.std(axis=0)
    images, counts = np.unique(labels, return_counts=True)
    repeated = images[counts > 1]
    sigma2 = np.mean([z[labels == image].var(axis=0, ddof=1) for image in repeated], axis=0)
    ncsnr = np.sqrt(np.clip(1 - sigma2, 0, None) / sigma2)
    mean_inverse_n = np.mean([1 / (labels == image).sum() for image in repeated])
    return np.sqrt(ncsnr**2 / (ncsnr**2 + mean_inverse_n))


def test_encoding_noise_ceiling_is_nsds_with_unequal_repeats():
    rng = np.random.default_rng(19)
    repeats = rng.choice([2, 3, 4, 5], size=300)  # CSI3-like: 2 to 5 presentations
    labels = np.repeat(np.arange(300), repeats)
    signal = rng.normal(size=(300, 40))
    trials = signal[labels] + rng.normal(size=(len(labels), 40)) * np.linspace(0.3, 3.0, 40)
    ours = mapping.noise_ceiling_r(trials, labels)
    np.testing.assert_allclose(ours, _nsd_ceiling(trials, labels), rtol=1e-10)
    # the mean-repeat form (1 / mean n) it replaces is higher wherever the noise matters
    z = (trials - trials.mean(axis=0)) / trials.std(axis=0)
    sigma2 = np.mean([z[labels == i].var(axis=0, ddof=1) for i in range(300)], axis=0)
    ncsnr2 = (1 - sigma2) / sigma2
    assert (np.sqrt(ncsnr2 / (ncsnr2 + 1 / repeats.mean())) >= ours - 1e-12).all()
