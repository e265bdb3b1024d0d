"""Banded ridge: one band is ridge with a penalty per voxel; a planted band gets the smaller penalty;
the bands' terms add up to the prediction; and each hyperparameter is checked at fit, by name."""

from __future__ import annotations

import numpy as np
import pytest

from neurolatent.science.banded import BandedRidgeCV


def _data(seed: int = 0, n: int = 60):
    rng = np.random.default_rng(seed)
    signal, noise = rng.normal(size=(n, 4)), rng.normal(size=(n, 4))
    responses = signal @ rng.normal(size=(4, 3)) + 0.1 * rng.normal(size=(n, 3))
    return signal, noise, responses


def test_the_planted_band_is_penalised_less_and_terms_sum_to_the_prediction():
    signal, noise, responses = _data()
    model = BandedRidgeCV(n_iter=5, cv=3).fit([signal, noise], responses)
    assert model.penalties_.shape == (2, 3) and (model.penalties_[0] < model.penalties_[1]).all()
    terms = model.predict_bands([signal, noise])
    np.testing.assert_allclose(terms.sum(axis=0) + model.intercept_, model.predict([signal, noise]), atol=1e-10)
    assert model.steps(2) == 5 * 3 + 1 and model.steps(1) == 3 + 1


def test_one_band_fits_without_a_search():
    signal, _, responses = _data(1)
    model = BandedRidgeCV(alphas=(0.01,), cv=3).fit([signal], responses)
    assert np.allclose(model.penalties_, 0.01)
    residual = responses - model.predict([signal])
    assert np.abs(residual).max() < 0.5  # nearly unpenalised least squares on a planted linear map


@pytest.mark.parametrize("settings, message", [
    ({"n_iter": 0}, "n_iter: Input should be greater than or equal to 1 (got 0)"),
    ({"cv": 1}, "cv: Input should be greater than or equal to 2 (got 1)"),
    ({"backend": "cupy"}, "backend: Input should be 'numpy', 'torch' or 'torch_cuda' (got 'cupy')"),
    ({"alphas": (1.0, -1.0)}, "alphas: Input should be greater than 0"),
    ({"random_state": -1}, "random_state: Input should be greater than or equal to 0 (got -1)"),
])
def test_a_bad_hyperparameter_is_named_at_fit(settings, message):
    signal, noise, responses = _data()
    with pytest.raises(ValueError) as info:
        BandedRidgeCV(**settings).fit([signal, noise], responses)
    assert str(info.value).startswith(message)


def test_bands_that_disagree_on_rows_are_refused():
    signal, noise, responses = _data()
    with pytest.raises(ValueError, match="disagree on the number of images"):
        BandedRidgeCV(cv=3).fit([signal, noise[:10]], responses)
