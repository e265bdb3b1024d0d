"""Comparing RDMs (neurolatent.science.rsa.compare) against rsatoolbox and scipy."""

from __future__ import annotations

import numpy as np
import pytest
from rsatoolbox.rdm import RDMs
from rsatoolbox.rdm import compare as rsatoolbox_compare
from scipy import stats
from scipy.spatial.distance import pdist

from neurolatent.science.rsa.compare import compare, naive_p, rank
from neurolatent.science.rsa.rdm import rdm_upper

RSATOOLBOX_METHOD = {"pearson": "corr", "spearman": "spearman", "kendall_tau_a": "tau-a", "cosine": "cosine"}


def random_patterns(seed: int, n: int = 40, d: int = 15) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d))


@pytest.mark.parametrize("method", ["pearson", "spearman", "kendall_tau_a", "cosine"])
@pytest.mark.parametrize("ties", [False, True])
def test_every_comparison_equals_rsatoolbox(method, ties):
    a, b = rdm_upper(random_patterns(1)), rdm_upper(random_patterns(2))
    if ties:  # a model that predicts tied dissimilarities (categorical)
        a = np.round(a * 4) / 4
    theirs = rsatoolbox_compare(RDMs(a[None]), RDMs(b[None]), method=RSATOOLBOX_METHOD[method])[0, 0]
    assert abs(compare(a, b, method) - theirs) < 1e-6


def test_comparisons_equal_scipy():
    a, b = rdm_upper(random_patterns(3)), rdm_upper(random_patterns(4))
    assert abs(compare(a, b, "pearson") - stats.pearsonr(a, b)[0]) < 1e-6
    assert abs(compare(a, b, "spearman") - stats.spearmanr(a, b)[0]) < 1e-6
    assert abs(compare(a, b, "kendall_tau_a") - stats.kendalltau(a, b)[0]) < 1e-6  # no ties: tau-a = tau-b
    assert abs(naive_p(compare(a, b, "pearson"), len(a)) - stats.pearsonr(a, b)[1]) < 1e-6


def test_rank_equals_scipy_with_ties_and_signed_zero():
    rng = np.random.default_rng(5)
    for values in (rng.normal(size=5000), rng.integers(0, 7, size=5000).astype(float),
                   np.r_[np.zeros(50), -0.0, 3.0, -np.inf], 1.0 + rng.integers(0, 3, size=999) * 1e-15):
        np.testing.assert_array_equal(rank(values), stats.rankdata(values))


def test_full_square_inflates_r_of_unrelated_rdms():
    rng = np.random.default_rng(12)
    r_upper, r_full = [], []
    for _ in range(50):
        first, second = pdist(rng.normal(size=(40, 5)), "correlation"), pdist(rng.normal(size=(40, 5)), "correlation")
        r_upper.append(compare(first, second, "pearson"))
        r_full.append(compare(first, second, "pearson", "full"))
    assert abs(np.mean(r_upper)) < 0.01 and np.mean(r_full) > 0.05
