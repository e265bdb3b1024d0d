"""An encoding model's per-voxel r and the noise ceiling, on planted responses with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from neurolatent.science.mapping import RidgeMapping
from neurolatent.science.voxelwise import noise_ceiling_r, voxelwise_r
from planted import N_IMAGES, planted_features, responses, split


def test_encoding_finds_the_planted_region_not_the_rest():
    features = planted_features()
    train, test = split()
    region = responses(features, 2.0, seed=6, voxels=200)
    outside = np.random.default_rng(7).normal(size=(N_IMAGES, 200))
    voxels = np.hstack([region, outside])
    ridge = RidgeMapping(alpha_per_target=True).fit(features[train], voxels[train])
    r = voxelwise_r(*ridge.transform(features[test], voxels[test]))
    assert np.median(r[:200]) > 0.6 and abs(np.median(r[200:])) < 0.15


def test_noise_ceiling_matches_the_correlation_of_truth_with_the_repeat_average():
    rng = np.random.default_rng(8)
    n_images, repeats, n_voxels = 1000, 3, 50
    signal = rng.normal(size=(n_images, n_voxels))
    noise_sd = np.linspace(0.3, 3.0, n_voxels)
    image_of_trial = np.repeat(np.arange(n_images), repeats)
    trials = signal[image_of_trial] + rng.normal(size=(len(image_of_trial), n_voxels)) * noise_sd
    ceiling = noise_ceiling_r(trials, image_of_trial)
    average = trials.reshape(n_images, repeats, n_voxels).mean(axis=1)
    achieved = voxelwise_r(signal, average)  # the best possible model: the true signal
    assert np.abs(ceiling - achieved).max() < 0.08 and np.abs(ceiling - achieved).mean() < 0.02
    assert ceiling[0] > 0.95 and ceiling[-1] < 0.6
    with pytest.raises(ValueError, match="more than once"):
        noise_ceiling_r(trials[:n_images], np.arange(n_images))


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
    ours = noise_ceiling_r(trials, labels)
    np.testing.assert_allclose(ours, _nsd_ceiling(trials, labels), rtol=1e-10)
    # the mean-repeat form (1 / mean n) it replaces is higher wherever the noise matters
    z = (trials - trials.mean(axis=0)) / trials.std(axis=0)
    sigma2 = np.mean([z[labels == i].var(axis=0, ddof=1) for i in range(300)], axis=0)
    ncsnr2 = (1 - sigma2) / sigma2
    assert (np.sqrt(ncsnr2 / (ncsnr2 + 1 / repeats.mean())) >= ours - 1e-12).all()
