"""neurolatent.science.glm: single-trial amplitudes recovered from a series built with known ones."""

from __future__ import annotations

import numpy as np
import pytest

from neurolatent.science.glm import trial_betas, trial_design

TR = 2.0


def _series(amplitudes: np.ndarray, onsets: np.ndarray, n_volumes: int, noise: float, seed: int) -> np.ndarray:
    """BOLD (n_volumes, n_voxels) = baseline 1000 * (1 + design @ amplitudes / 100) + noise, so the
    amplitudes are in percent signal change per unit peak response, as trial_betas reports."""
    design = trial_design(onsets, np.ones_like(onsets), n_volumes, TR, 1 / 128)[:, :len(onsets)]
    rng = np.random.default_rng(seed)
    return 1000.0 * (1 + design @ amplitudes / 100) + noise * rng.standard_normal((n_volumes, amplitudes.shape[1]))


@pytest.mark.parametrize("glm", ["lsa", "lss"])
def test_planted_single_trial_amplitudes_are_recovered(glm):
    onsets = np.arange(10.0, 280.0, 12.0)  # a trial every 12 s, as BOLD5000's 10 s with jitter
    amplitudes = np.random.default_rng(0).normal(1.0, 0.5, (len(onsets), 3))
    series = _series(amplitudes, onsets, 150, noise=0.5, seed=1)
    betas = trial_betas(series, onsets, np.ones_like(onsets), TR, glm=glm, noise_model="ols")
    assert betas.shape == amplitudes.shape and betas.dtype == np.float32
    assert np.corrcoef(betas.ravel(), amplitudes.ravel())[0, 1] > 0.9


def test_no_signal_gives_amplitudes_around_zero():
    onsets = np.arange(10.0, 280.0, 12.0)
    series = _series(np.zeros((len(onsets), 50)), onsets, 150, noise=2.0, seed=2)
    betas = trial_betas(series, onsets, np.ones_like(onsets), TR)
    assert abs(betas.mean()) < 0.05


def test_the_lss_design_puts_the_target_trial_first():
    onsets = np.array([10.0, 30.0, 50.0])
    design = trial_design(onsets, np.ones(3), 40, TR, 1 / 128, target=1)
    lsa = trial_design(onsets, np.ones(3), 40, TR, 1 / 128)
    np.testing.assert_allclose(design[:, 0], lsa[:, 1])
    np.testing.assert_allclose(design[:, 1], lsa[:, 0] + lsa[:, 2])


def test_an_unknown_glm_is_an_error():
    with pytest.raises(ValueError, match=r"^glm: Input should be 'lsa' or 'lss' \(got 'lsq'\)$"):
        trial_betas(np.ones((10, 2)), np.array([2.0]), np.array([1.0]), TR, glm="lsq")
