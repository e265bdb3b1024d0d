"""Comparing RDMs: ``pearson`` (the study), ``spearman``, ``kendall_tau_a`` or ``cosine`` of their
upper triangles (equal to rsatoolbox's ``corr``, ``spearman``, ``tau-a``, ``cosine``), the study's
naive p, and the whole-square comparison the study's pitfall would make (``triangle: full``).
rsatoolbox's ``rsatoolbox.rdm.compare``.

The ranks (:func:`rank`) are hand-written (numba): ``benchmarks/bench_rsa.py`` measures them
against scipy's at BOLD5000's 12 million cells.
"""

from __future__ import annotations

from typing import Literal

import numba
import numpy as np
from scipy import stats
from scipy.spatial.distance import squareform

from neurolatent.science.rsa.rdm import n_items

Comparison = Literal["pearson", "spearman", "kendall_tau_a", "cosine"]
COMPARISONS = ("pearson", "spearman", "kendall_tau_a", "cosine")
Triangle = Literal["upper", "full"]
#: Kendall tau-a compares every pair of cells (O(cells^2)); beyond this many stimuli use spearman
KENDALL_MAX_STIMULI = 150


@numba.njit(cache=True)
def _ranks_from_sorted_keys(keys: np.ndarray, x: np.ndarray, index_bits: int) -> np.ndarray:
    """Ranks of ``x`` from its packed keys sorted ascending (see :func:`rank`)."""
    m = len(keys)
    mask = (np.uint64(1) << np.uint64(index_bits)) - np.uint64(1)
    shift = np.uint64(index_bits)
    ranks = np.empty(m)
    start = 0
    while start < m:
        prefix = keys[start] >> shift
        end = start + 1
        while end < m and (keys[end] >> shift) == prefix:
            end += 1
        if end == start + 1:  # the common case: a value alone in its prefix
            ranks[np.int64(keys[start] & mask)] = start + 1.0
            start = end
            continue
        # equal prefixes are in index order, and may hold ties: order by exact value
        run = np.empty(end - start, dtype=np.int64)
        for k in range(start, end):
            run[k - start] = np.int64(keys[k] & mask)
        run = run[np.argsort(x[run], kind="mergesort")]
        i = 0
        while i < len(run):
            j = i
            while j + 1 < len(run) and x[run[j + 1]] == x[run[i]]:
                j += 1
            average = start + (i + j) / 2.0 + 1.0
            for k in range(i, j + 1):
                ranks[run[k]] = average
            i = j + 1
        start = end
    return ranks


def rank(values: np.ndarray) -> np.ndarray:
    """Ranks 1..m with ties given their average rank (scipy ``rankdata``), float64.

    numpy's argsort has no SIMD path on AVX2 machines, but its sort does: each value's
    order-preserving bit pattern is packed with its index into one uint64 (value bits high),
    sorted, and the rare keys whose truncated value bits collide are re-ordered by exact value.
    At 12 million cells this is several times faster than ``np.argsort`` (the Spearman line of
    ``benchmarks/bench_rsa.py``).
    """
    values = np.ascontiguousarray(values, dtype=np.float64)
    if values.ndim != 1 or np.isnan(values).any():
        raise ValueError("rank takes a vector without NaN")
    if len(values) == 0:
        return values.copy()
    index_bits = max(1, (len(values) - 1).bit_length())
    values = values + 0.0  # -0.0 becomes 0.0: equal values must have equal bits
    bits = values.view(np.uint64)
    # the order-preserving pattern, in place in one array (at 12 million cells each temporary is
    # 97 MB): bits ^ mask, mask all ones for a negative value (~bits), the sign bit otherwise
    keys = bits >> np.uint64(63)
    keys *= np.uint64(0x7FFF_FFFF_FFFF_FFFF)
    keys |= np.uint64(1 << 63)
    keys ^= bits
    keys >>= np.uint64(index_bits)
    keys <<= np.uint64(index_bits)
    keys |= np.arange(len(values), dtype=np.uint64)
    keys.sort()
    return _ranks_from_sorted_keys(keys, values, index_bits)


def rank_pair(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`rank` of two vectors, the second on a worker thread (numpy's sort releases the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        other = pool.submit(rank, second)
        return rank(first), other.result()


@numba.njit(cache=True)
def tau_a(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-a of two (m,) vectors: concordant minus discordant pairs over all m(m-1)/2 pairs
    (ties count as neither), exactly, in O(m^2)."""
    m = len(x)
    total = 0
    for i in range(m - 1):
        for j in range(i + 1, m):
            total += np.sign(x[i] - x[j]) * np.sign(y[i] - y[j])
    return total / (m * (m - 1) / 2.0)


def compare(first: np.ndarray, second: np.ndarray, method: Comparison = "spearman",
            triangle: Triangle = "upper") -> float:
    """Similarity of two RDMs given as upper triangles (or any paired vectors) of equal length.

    ``pearson``: Pearson r (the study); ``spearman``: Pearson r of ranks; ``kendall_tau_a``:
    Kendall's tau-a (ties count as neither concordant nor discordant: the right choice for models
    that predict tied dissimilarities, Nili et al. 2014; rsatoolbox's ``tau-a``, not scipy's
    tau-b); ``cosine``: uncentred cosine similarity.

    ``triangle="full"`` compares the whole square matrices instead (n^2 cells: the zero diagonal
    and every pair twice), a pitfall kept to show its effect: the n diagonal cells agree
    perfectly in any two RDMs, so the correlation is pulled towards a positive value even when
    the off-diagonal cells are unrelated (:func:`full_square_map`).
    """
    x = np.asarray(first, dtype=np.float64)
    y = np.asarray(second, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"RDMs to compare must be vectors of one length, got {x.shape} and {y.shape}")
    if triangle == "full":
        check_full(method)
        return compare(squareform(x, checks=False).ravel(), squareform(y, checks=False).ravel(), method)
    if triangle != "upper":
        raise ValueError(f"unknown triangle {triangle!r} (upper or full)")
    if method == "spearman":
        (x, y), method = rank_pair(x, y), "pearson"
    if method == "pearson":
        x, y = x - x.mean(), y - y.mean()
    elif method == "kendall_tau_a":
        return float(tau_a(x, y))
    elif method != "cosine":
        raise ValueError(f"unknown comparison {method!r} (one of {', '.join(COMPARISONS)})")
    denominator = np.sqrt((x @ x) * (y @ y))
    return float(x @ y / denominator) if denominator > 0 else float("nan")


def naive_p(r: float, cells: int) -> float:
    """The study's p-value: Pearson's t-test with ``cells - 2`` degrees of freedom, two-sided.

    Wrong for RDMs: the n(n-1)/2 cells share stimuli and are far from independent, so the real
    degrees of freedom are of the order of n, not n^2. Reported beside :func:`mantel` for contrast.
    """
    df = cells - 2
    t = r * np.sqrt(df / max(1e-300, 1.0 - r * r))
    return float(2 * stats.t.sf(abs(t), df))


def check_full(method: Comparison) -> None:
    """ValueError unless ``method`` has a whole-square form (pearson, spearman, cosine)."""
    if method not in ("pearson", "spearman", "cosine"):
        raise ValueError(f"triangle 'full' supports pearson, spearman and cosine, not {method!r}")


def full_cells(first: np.ndarray, second: np.ndarray, method: Comparison
                ) -> tuple[np.ndarray, np.ndarray, float, float]:
    """The values the full-square statistic correlates, split as (x, y) on the upper cells and
    (dx, dy) on the diagonal: the dissimilarities and 0 for pearson and cosine, their ranks among
    all n^2 cells of the square for spearman (ties, the diagonal's included, averaged)."""
    x = np.asarray(first, dtype=np.float64)
    y = np.asarray(second, dtype=np.float64)
    if method != "spearman":
        return x, y, 0.0, 0.0
    upper = np.triu_indices(n_items(len(x)), k=1)
    ranked = []
    for values in (x, y):
        square = squareform(values, checks=False)
        square = rank(square.ravel()).reshape(square.shape)
        ranked += [square[upper], float(square[0, 0])]
    return ranked[0], ranked[2], ranked[1], ranked[3]


def full_moments(cells: np.ndarray, sx, sy, sxx, syy, sxy, diagonal, dx: float, dy: float) -> np.ndarray:
    """Moments over the square (every upper cell twice, ``diagonal`` cells of value (dx, dy)) from
    those over the upper cells; each argument a scalar or an array of replicates."""
    return np.array([2 * cells + diagonal, 2 * sx + diagonal * dx, 2 * sy + diagonal * dy,
                     2 * sxx + diagonal * dx * dx, 2 * syy + diagonal * dy * dy, 2 * sxy + diagonal * dx * dy])


def correlation_from_moments(moments: np.ndarray, method: Comparison) -> np.ndarray:
    """Pearson r (or cosine) from the moments (count, sum x, sum y, sum x^2, sum y^2, sum xy), each
    an array of the same shape (one per resample); NaN where a side has no variance."""
    cnt, sx, sy, sxx, syy, sxy = moments
    with np.errstate(invalid="ignore", divide="ignore"):
        if method == "cosine":
            return sxy / np.sqrt(sxx * syy)
        return (sxy - sx * sy / cnt) / np.sqrt((sxx - sx * sx / cnt) * (syy - sy * sy / cnt))


def full_square_map(first: np.ndarray, second: np.ndarray, method: Comparison) -> tuple[np.ndarray, np.ndarray, float, float]:
    """How the full-square comparison follows from a comparison of upper cells under relabelling.

    Relabelling the stimuli of one RDM moves its upper cells among themselves and keeps its
    diagonal, so every moment of the square but the cross-product is fixed, and the full-square
    statistic is ``a + b * s`` where ``s`` is the Pearson r (cosine for cosine) of the returned
    upper-cell values (x, y). The Mantel p of the full square is therefore the p of ``s``: the
    pitfall inflates r, not the permutation test.

    Returns
    -------
    x, y : (m,) float64, the upper-cell values ``s`` correlates; a, b : floats
    """
    check_full(method)
    x, y, dx, dy = full_cells(first, second, method)
    if method == "cosine":  # a zero diagonal adds nothing to any cosine sum
        return x, y, 0.0, 1.0
    m = len(x)
    vx, vy = x @ x - x.sum() ** 2 / m, y @ y - y.sum() ** 2 / m
    cnt, sx, sy, sxx, syy, _ = full_moments(m, x.sum(), y.sum(), x @ x, y @ y, 0.0, n_items(m), dx, dy)
    scale = np.sqrt((sxx - sx * sx / cnt) * (syy - sy * sy / cnt))
    a = (2 * x.sum() * y.sum() / m + n_items(m) * dx * dy - sx * sy / cnt) / scale
    return x, y, float(a), float(2 * np.sqrt(vx * vy) / scale)
