"""Small statistics every science module shares: z-scores, permutation p-values, named random streams."""

from __future__ import annotations

import zlib

import numpy as np

#: float32 sums (the permutation kernels) carry rounding of this order: a null value this close
#: below the observed one is counted as reaching it
PERMUTATION_TOLERANCE = 1e-6


def zscore(matrix: np.ndarray, axis: int = 0) -> np.ndarray:
    """Centre and scale to unit sd along ``axis`` (population sd); a constant line becomes zeros.

    The computation stays in the input's dtype (float32 series stay float32), so results are the
    same bits wherever it is used. Hand-written rather than scikit-learn's StandardScaler: its
    incremental mean and variance round differently, and every planted pattern and every RDM
    downstream would change in the last bits.

    Parameters
    ----------
    matrix : ndarray, e.g. (n_samples, n_features)
    axis : the axis to standardise along (0: each column over rows)

    Returns
    -------
    ndarray of the same shape and dtype (float64 for integer input).
    """
    matrix = np.asarray(matrix)
    if not np.issubdtype(matrix.dtype, np.floating):
        matrix = matrix.astype(np.float64)
    sd = matrix.std(axis=axis, keepdims=True)
    return (matrix - matrix.mean(axis=axis, keepdims=True)) / np.where(sd > 0, sd, 1.0).astype(matrix.dtype)


def zscore_groups(matrix: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """:func:`zscore` of the rows of each group (e.g. a session) separately.

    matrix : (n, d); groups : (n,) labels. Returns a new (n, d) array.
    """
    out = np.empty_like(matrix, dtype=matrix.dtype if np.issubdtype(matrix.dtype, np.floating) else np.float64)
    for group in np.unique(groups):
        rows = np.flatnonzero(groups == group)
        out[rows] = zscore(matrix[rows])
    return out


def permutation_p(observed: float, null: np.ndarray, tolerance: float = PERMUTATION_TOLERANCE) -> float:
    """One-sided permutation p-value, (1 + #{null >= observed - tolerance}) / (1 + k).

    The +1 counts the observed labelling as one of the permutations (Phipson & Smyth 2010), so p is
    never 0 and is exact for k random permutations. ``tolerance`` absorbs the float32 rounding of
    the permutation kernels: a null statistic equal to the observed one must count as reaching it.

    Parameters
    ----------
    observed : the statistic under the true labels
    null : ndarray, shape (k,), the statistic under each permutation
    """
    null = np.asarray(null, dtype=np.float64)
    return (1 + int((null >= observed - tolerance).sum())) / (1 + len(null))


def named_rng(seed: int, *names: str) -> np.random.Generator:
    """The random stream of ``seed`` and ``names`` (e.g. the representation and model a test is of):
    independent of every other name's, the same in any order of computation or process."""
    return np.random.default_rng([seed, *(zlib.crc32(name.encode()) for name in names)])


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Each row scaled to unit Euclidean norm; a zero row stays zero."""
    norm = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norm > 0, norm, 1.0)
