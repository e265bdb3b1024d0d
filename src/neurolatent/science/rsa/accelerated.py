"""Permutation p-values from fewer permutations (Winkler et al. 2016, "Faster permutation inference
in brain imaging", NeuroImage 141:502-516; FSL PALM's ``-accel tail`` and ``-accel gamma``).

- :func:`tail_p`: a generalized Pareto distribution (GPD) fitted to the null's upper tail gives
  the p of a statistic far out in it (PALM's ``palm_pareto``: the tail's threshold is the lowest
  of the quantiles 0.751, 0.761, ... whose fit passes the Anderson-Darling test at 0.05,
  Choulakian & Stephens 2001; the fit is Hosking & Wallis's method of moments).
- :func:`gamma_p`: a gamma (Pearson type III) distribution with the null's mean, variance and
  skewness (PALM's ``palm_gamma``).
- :func:`mantel_moments`: the exact mean and variance of the Mantel statistic over all n!
  relabellings (Mantel 1967), a check of a sampled null's first two moments.
- :func:`p_values` chooses among them and the plain permutation p (:data:`Inference`), and says
  which method made each p (:data:`METHODS`).

Both fits are applied to the max-statistic null too (the family-wise p): the family-wise p is the
tail probability of the family's maximum.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import stats
from scipy.spatial.distance import squareform

from neurolatent.science.stats import PERMUTATION_TOLERANCE

#: exact: the permutation p, (1 + #null >= observed) / (1 + k); tail: the GPD fit where the
#: permutation p is below :data:`TAIL_BELOW`; gamma: the gamma fit for every p
Inference = Literal["exact", "tail", "gamma"]

#: the label of each p: how it was made
METHODS = {
    "permutation": "(1 + #null >= observed) / (1 + k)",
    "gpd": "generalized Pareto fit to the null's upper tail",
    "gamma": "gamma (Pearson III) fit to the null's mean, variance and skewness",
    "bound": "beyond the fitted distribution's end: the permutation p, 1 / (1 + k) at most an upper bound",
}

#: PALM's default: permutation p's below this are refined by the tail fit
TAIL_BELOW = 0.1
#: the candidate tail thresholds, as quantiles of the null (PALM's 751:10:999 / 1000)
TAIL_QUANTILES = np.arange(751, 1000, 10) / 1000
#: the fit is kept when the Anderson-Darling test's p exceeds this (PALM)
FIT_ALPHA = 0.05

# Choulakian & Stephens (2001), Table 2 (a and k unknown): rows k, columns the upper-tail p's; the
# entries are the critical values of A^2
_AD_K = np.array([0.9, 0.5, 0.2, 0.1, 0.0, -0.1, -0.2, -0.3, -0.4, -0.5])
_AD_P = np.array([0.5, 0.25, 0.1, 0.05, 0.025, 0.01, 0.005, 0.001])
_AD_A2 = np.array([
    [0.339, 0.471, 0.641, 0.771, 0.905, 1.086, 1.226, 1.559],
    [0.356, 0.499, 0.685, 0.830, 0.978, 1.180, 1.336, 1.707],
    [0.376, 0.534, 0.741, 0.903, 1.069, 1.296, 1.471, 1.893],
    [0.386, 0.550, 0.766, 0.935, 1.110, 1.348, 1.532, 1.966],
    [0.397, 0.569, 0.796, 0.974, 1.158, 1.409, 1.603, 2.064],
    [0.410, 0.591, 0.831, 1.020, 1.215, 1.481, 1.687, 2.176],
    [0.426, 0.617, 0.873, 1.074, 1.283, 1.567, 1.788, 2.314],
    [0.445, 0.649, 0.924, 1.140, 1.365, 1.672, 1.909, 2.475],
    [0.468, 0.688, 0.985, 1.221, 1.465, 1.799, 2.058, 2.674],
    [0.496, 0.735, 1.061, 1.321, 1.590, 1.958, 2.243, 2.922]])


def permutation_ps(observed: np.ndarray, null: np.ndarray, tolerance: float = PERMUTATION_TOLERANCE) -> np.ndarray:
    """(m,) one-sided permutation p of each observed statistic against one null (k,):
    (1 + #{null >= observed - tolerance}) / (1 + k), as :func:`neurolatent.science.stats.permutation_p`."""
    ordered = np.sort(np.asarray(null, dtype=np.float64))
    below = np.searchsorted(ordered, np.asarray(observed, dtype=np.float64) - tolerance, side="left")
    return (1 + len(ordered) - below) / (1 + len(ordered))


def _gpd_sf(y: np.ndarray, scale: float, shape: float) -> np.ndarray:
    """Survival function of the GPD in Hosking & Wallis's parameters, (1 - shape y / scale)^(1 / shape)
    (shape > 0: a tail that ends at scale / shape, as a bounded statistic's does)."""
    if abs(shape) < np.finfo(float).eps:
        return np.exp(-y / scale)
    with np.errstate(invalid="ignore", divide="ignore"):
        base = 1 - shape * y / scale
        return np.where(base > 0, np.abs(base) ** (1 / shape), 0.0)  # base <= 0: past the tail's end


def _extrapolate(x: float, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Linear interpolation in increasing ``xs`` that extends the end segments (MATLAB's 'extrap')."""
    if x <= xs[0]:
        return ys[0] + (x - xs[0]) * (ys[1] - ys[0]) / (xs[1] - xs[0])
    if x >= xs[-1]:
        return ys[-1] + (x - xs[-1]) * (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
    return np.interp(x, xs, ys)


def anderson_darling_p(survival: np.ndarray, shape: float) -> float:
    """p of the Anderson-Darling test that a tail's values, through their fitted survival
    probabilities (any order), follow the fitted GPD (Choulakian & Stephens 2001, Table 2, by
    linear interpolation in shape and in A^2, extended past the table's ends; shape limited to the
    table's range)."""
    z = np.sort(np.asarray(survival, dtype=np.float64))
    n = len(z)
    j = np.arange(1, n + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        a2 = -n - np.sum((2 * j - 1) * (np.log(z) + np.log(1 - z[::-1]))) / n
    if not np.isfinite(a2):
        return 0.0
    k = min(max(shape, _AD_K[-1]), _AD_K[0])
    critical = np.array([np.interp(-k, -_AD_K, column) for column in _AD_A2.T])
    return float(np.clip(_extrapolate(a2, critical, _AD_P), 0.0, 1.0))


def fit_tail(null: np.ndarray) -> tuple[float, float, float, float] | None:
    """The GPD of the null's upper tail: (threshold u, scale, shape, share of the null above u) at
    the lowest of :data:`TAIL_QUANTILES` whose fit passes the Anderson-Darling test at
    :data:`FIT_ALPHA` (PALM's ``palm_pareto``), or None when none does."""
    ordered = np.sort(np.asarray(null, dtype=np.float64))
    k = len(ordered)
    cdf = np.arange(1, k + 1) / k
    for quantile in TAIL_QUANTILES[:-2]:  # PALM stops two short of the last
        first = int(np.searchsorted(cdf, quantile, side="left"))
        tail = ordered[first:]
        if len(tail) < 3:
            return None
        # u between the tail's first value and the one below it (PALM)
        below = ordered[first - 1] if first > 0 else 2 * ordered[0] - ordered[1]
        u = (below + ordered[first]) / 2
        y = tail - u
        mean, variance = y.mean(), y.var(ddof=1)
        if variance <= 0:
            continue
        ratio = mean * mean / variance
        scale, shape = mean * (ratio + 1) / 2, (ratio - 1) / 2
        if anderson_darling_p(_gpd_sf(y, scale, shape), shape) > FIT_ALPHA:
            return float(u), float(scale), float(shape), len(tail) / k
    return None


def tail_p(observed: np.ndarray, null: np.ndarray, below: float = TAIL_BELOW,
           tolerance: float = PERMUTATION_TOLERANCE) -> tuple[np.ndarray, np.ndarray]:
    """p of each observed statistic (m,) against one null (k,): the permutation p, and where any
    is below ``below``, the GPD tail's p for every statistic above the tail's threshold (PALM's
    ``palm_pareto``). A statistic beyond the fitted tail's end (p 0 by the fit) keeps its
    permutation p, labelled ``bound``.

    Returns
    -------
    (p, method) : (m,) float64 and (m,) str (:data:`METHODS`)
    """
    observed = np.atleast_1d(np.asarray(observed, dtype=np.float64))
    p = permutation_ps(observed, null, tolerance)
    method = np.full(len(observed), "permutation", dtype=object)
    if not (p < below).any():
        return p, method
    fit = fit_tail(null)
    if fit is None:
        return p, method
    u, scale, shape, share = fit
    above = observed > u
    fitted = share * _gpd_sf(observed[above] - u, scale, shape)
    p[above] = np.where(fitted > 0, fitted, p[above])
    method[above] = np.where(fitted > 0, "gpd", "bound")
    return p, method


def gamma_p(observed: np.ndarray, null: np.ndarray, tolerance: float = PERMUTATION_TOLERANCE
            ) -> tuple[np.ndarray, np.ndarray]:
    """p of each observed statistic (m,) from the gamma (Pearson type III) distribution with the
    null's (k,) mean, variance and skewness (PALM's ``palm_gamma``; a normal at skewness 0). A
    statistic beyond the distribution's end (p 0) keeps its permutation p, labelled ``bound``.

    Returns
    -------
    (p, method) : as :func:`tail_p`
    """
    observed = np.atleast_1d(np.asarray(observed, dtype=np.float64))
    null = np.asarray(null, dtype=np.float64)
    sd = null.std(ddof=1)
    fitted = stats.pearson3.sf(observed, stats.skew(null, bias=False), loc=null.mean(), scale=sd) if sd > 0 else \
        (observed <= null.mean()).astype(np.float64)
    p = np.where(fitted > 0, fitted, permutation_ps(observed, null, tolerance))
    return p, np.where(fitted > 0, "gamma", "bound").astype(object)


def p_values(observed: np.ndarray, null: np.ndarray, inference: Inference,
             tolerance: float = PERMUTATION_TOLERANCE) -> tuple[np.ndarray, np.ndarray]:
    """p of each observed statistic (m,) against one null (k,) by ``inference`` (:data:`Inference`):
    (p (m,), method (m,) str, :data:`METHODS`)."""
    if inference == "tail":
        return tail_p(observed, null, tolerance=tolerance)
    if inference == "gamma":
        return gamma_p(observed, null, tolerance)
    observed = np.atleast_1d(np.asarray(observed, dtype=np.float64))
    return permutation_ps(observed, null, tolerance), np.full(len(observed), "permutation", dtype=object)


def mantel_moments(first: np.ndarray, second: np.ndarray) -> tuple[float, float]:
    """Exact mean and variance, over all n! relabellings of the stimuli, of the Mantel statistic
    sum_{i<j} a_ij b_pi(i)pi(j) of two RDMs' upper triangles (Mantel 1967, in Hubert's sums; for
    centred unit vectors, e.g. :func:`neurolatent.science.rsa.kernels.unit_vector` of ranks, the
    statistic is the Spearman or Pearson r and its exact mean is 0).

    Parameters
    ----------
    first, second : ndarray, shape (n * (n - 1) / 2,), over the same n >= 4 stimuli

    Returns
    -------
    (mean, variance) of the statistic
    """
    squares = [squareform(np.asarray(upper, dtype=np.float64), checks=False) for upper in (first, second)]
    n = len(squares[0])
    if n < 4 or len(squares[1]) != n:
        raise ValueError(f"the Mantel moments need two RDMs over the same n >= 4 stimuli, not {n} and {len(squares[1])}")
    # Hubert's sums of each matrix: all cells, their squares, the squared row sums
    sums = [(square.sum(), (square * square).sum(), (square.sum(axis=1) ** 2).sum()) for square in squares]
    (a1, a2, a3), (b1, b2, b3) = sums
    # Gamma = sum over ordered pairs i != j = 2 x the statistic (symmetric matrices, zero diagonal)
    mean = a1 * b1 / (n * (n - 1))
    second_moment = (2 * a2 * b2 / (n * (n - 1))
                     + 4 * (a3 - a2) * (b3 - b2) / (n * (n - 1) * (n - 2))
                     + (a1 * a1 + 2 * a2 - 4 * a3) * (b1 * b1 + 2 * b2 - 4 * b3) / (n * (n - 1) * (n - 2) * (n - 3)))
    return float(mean / 2), float((second_moment - mean * mean) / 4)
