"""Identification of stimuli from predictions: the 2-way accuracy and retrieval on known similarities."""

from __future__ import annotations

import numpy as np
import pytest

from neurolatent.science.identification import identification, row_correlations, two_way_accuracy


def test_two_way_top_k_on_a_known_similarity():
    similarity = np.array([[0.9, 0.1, 0.2], [0.5, 0.4, 0.3], [0.0, 0.8, 0.7]])
    assert two_way_accuracy(similarity) == pytest.approx((2 + 1 + 1) / 6)
    found = identification(np.eye(3), np.eye(3), 10, 0)
    assert (found.two_way, found.top1, found.top5) == (1.0, 1.0, 1.0)


def test_row_correlations_are_pearson_r_between_rows():
    rng = np.random.default_rng(0)
    predicted, candidates = rng.normal(size=(4, 7)), rng.normal(size=(5, 7))
    expected = np.corrcoef(predicted, candidates)[:4, 4:]
    np.testing.assert_allclose(row_correlations(predicted, candidates), expected, atol=1e-12)


def test_identification_refuses_unpaired_matrices():
    with pytest.raises(ValueError, match="two"):
        identification(np.zeros((3, 2)), np.zeros((4, 2)))
