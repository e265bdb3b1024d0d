"""Identifying stimuli from predicted latents: each prediction matched against every candidate by
Pearson r, the 2-way accuracy of VanRullen & Reddy 2019 with a permutation null, top-1 and top-5
retrieval."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurolatent.science.stats import permutation_p, unit_rows
from neurolatent.science._docs import fill_doc
from neurolatent.science.constraints import Count, RandomState, checked


def row_correlations(predicted: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """(n_pred, n_cand) Pearson r between every predicted row and every candidate row."""
    p = predicted - predicted.mean(axis=1, keepdims=True)
    c = candidates - candidates.mean(axis=1, keepdims=True)
    return unit_rows(p) @ unit_rows(c).T


def two_way_accuracy(similarity: np.ndarray) -> float:
    """Mean over test items i and foils j != i of [s(i, i) > s(i, j)] (ties count 1/2); chance 0.5."""
    n = len(similarity)
    own = np.diag(similarity)[:, None]
    wins = (own > similarity).sum() + 0.5 * ((own == similarity).sum() - n)
    return float(wins / (n * (n - 1)))


@dataclass(frozen=True)
class Identification:
    """two_way : 2-way accuracy; p : permutation p (candidate labels shuffled); null_low/null_high :
    the central 95 % of the null (the chance interval); top1/top5 : retrieval among all test items."""

    two_way: float
    p: float
    null_low: float
    null_high: float
    top1: float
    top5: float
    null: np.ndarray


@checked(permutations=Count, random_state=RandomState)
@fill_doc
def identification(predicted: np.ndarray, candidates: np.ndarray, permutations: int = 1000,
                   random_state: int | np.random.Generator = 0) -> Identification:
    """Identify each predicted row among the candidates (row i's true match is candidate i).

    Parameters
    ----------
    predicted, candidates : ndarray, shape (n_test, k), in one space
    %(permutations)s
    %(random_state)s
    """
    if predicted.shape != candidates.shape or len(predicted) < 2:
        raise ValueError(f"identification needs two (n >= 2, k) matrices of one shape, got {predicted.shape} "
                         f"and {candidates.shape}")
    similarity = row_correlations(predicted, candidates)
    observed = two_way_accuracy(similarity)
    rng = np.random.default_rng(random_state)
    null = np.array([two_way_accuracy(similarity[:, rng.permutation(len(similarity))])
                     for _ in range(permutations)])
    rank = (similarity > np.diag(similarity)[:, None]).sum(axis=1)  # better foils than the truth
    return Identification(observed, permutation_p(observed, null),
                          float(np.quantile(null, 0.025)), float(np.quantile(null, 0.975)),
                          float(np.mean(rank < 1)), float(np.mean(rank < 5)), null)
