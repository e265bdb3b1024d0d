"""Representational similarity analysis as pure functions on arrays.

The pieces, in the order the ``rsa`` stage uses them:

- :func:`reduce` standardises a (stimuli x features) matrix and keeps the leading singular
  components (the study: TruncatedSVD to 70 % of the variance).
- :func:`rdm_upper` gives the dissimilarities of every stimulus pair (upper triangle without the
  diagonal, scipy ``squareform`` order); :class:`RDM` carries them with the stimulus names.
- :func:`compare` correlates two RDMs: ``pearson`` (the study), ``spearman``, ``kendall_tau_a``
  or ``cosine``; equal to rsatoolbox's ``corr``, ``spearman``, ``tau-a``, ``cosine``.
- :func:`mantel` permutes stimulus labels (exact statistic on every permutation), :func:`bootstrap`
  resamples stimuli, :func:`noise_ceiling` gives rsatoolbox's leave-one-subject-out bounds, and
  :func:`naive_p` the study's p-value, whose degrees of freedom count RDM cells as independent.

Why the permutation test is fast: ranks and the moments of an RDM's cells do not change when its
stimuli are relabelled, so each permutation of ``compare`` is one dot product of the permuted,
centred matrix with a fixed weight vector. A numba kernel gathers each permuted row once, takes
its float32 dot product with the weights of every RDM compared with it (the models that share a
pass, :func:`group_mantel_models`), and tiles the work so that a chunk of permutations shares each
pass over memory (see :func:`_permuted_dots`); on CUDA the same sums are a batched torch gather. The hand-written kernels
here (the Mantel kernel, :func:`rank`) are kept because ``benchmarks/bench_rsa.py`` measures them
against rsatoolbox and a numpy loop at BOLD5000's size. The bootstrap needs no kernel: a resample's
moments are quadratic forms of its draw counts, one BLAS matrix product for all resamples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Literal

import numba
import numpy as np
from scipy import stats
from scipy.spatial.distance import squareform

from neurolatent.science.stats import permutation_p, zscore

Dissimilarity = Literal["correlation", "euclidean", "cosine"]
Comparison = Literal["pearson", "spearman", "kendall_tau_a", "cosine"]
DISSIMILARITIES = ("correlation", "euclidean", "cosine")
COMPARISONS = ("pearson", "spearman", "kendall_tau_a", "cosine")
Triangle = Literal["upper", "full"]
#: the rsatoolbox name of our plain euclidean distance (see :meth:`RDM.to_rsatoolbox`)
EUCLIDEAN_FOR_RSATOOLBOX = "euclidean distance (not squared)"
#: Kendall tau-a compares every pair of cells (O(cells^2)); beyond this many stimuli use spearman
KENDALL_MAX_STIMULI = 150


def n_items(cells: int) -> int:
    """Stimuli of an upper triangle of ``cells`` entries; ValueError if no n fits."""
    n = int(round((1 + np.sqrt(1 + 8 * cells)) / 2))
    if n * (n - 1) // 2 != cells:
        raise ValueError(f"{cells} cells are not the upper triangle of any square matrix")
    return n


@dataclass(frozen=True)
class RDM:
    """A representational dissimilarity matrix over named stimuli.

    upper : ndarray, shape (n * (n - 1) / 2,), float64
        Dissimilarities of every stimulus pair, scipy ``squareform`` order.
    stimuli : tuple of str, length n
        Image names, in the row order of the matrix.
    dissimilarity : str
        How ``upper`` was measured (``correlation``, ``euclidean``, ``cosine``).
    name : str
        What the RDM is of (``ae/CSI1``, ``pixels/CSI1``, ...).
    meta : dict
        Anything else worth keeping (components, explained variance, subject).
    """

    upper: np.ndarray
    stimuli: tuple[str, ...]
    dissimilarity: str
    name: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if n_items(len(self.upper)) != len(self.stimuli):
            raise ValueError(f"RDM {self.name!r}: {len(self.upper)} cells for {len(self.stimuli)} stimuli")

    @property
    def n(self) -> int:
        return len(self.stimuli)

    def square(self) -> np.ndarray:
        """(n, n) symmetric matrix, zero diagonal."""
        return squareform(self.upper, checks=False)

    def subset(self, stimuli: list[str] | tuple[str, ...]) -> "RDM":
        """The RDM of ``stimuli`` (names, in that order); KeyError names a missing one."""
        position = {name: i for i, name in enumerate(self.stimuli)}
        missing = [name for name in stimuli if name not in position]
        if missing:
            raise KeyError(f"RDM {self.name!r} has no stimulus {missing[0]!r}")
        rows = np.array([position[name] for name in stimuli], dtype=int)
        return RDM(squareform(self.square()[np.ix_(rows, rows)], checks=False), tuple(stimuli),
                   self.dissimilarity, self.name, dict(self.meta))

    def to_rsatoolbox(self, squared_euclidean: bool = False):
        """The same RDM as an ``rsatoolbox.rdm.RDMs``.

        ``correlation`` and ``cosine`` mean what they mean in rsatoolbox. Our ``euclidean`` is the
        plain distance; rsatoolbox's ``calc_rdm(method="euclidean")`` gives the squared distance over
        the number of features (``squared euclidean``) and names its square root ``euclidean``, so
        our values are exported under their own name, ``euclidean distance (not squared)``, which
        no rsatoolbox transform mistakes for its own; every comparison is unchanged. With
        ``squared_euclidean=True`` they are converted to rsatoolbox's definition instead (needs the
        number of features in ``meta["components"]``, which :func:`reduced_rdm` records).
        """
        from rsatoolbox.rdm import RDMs

        values, measure = self.upper, self.dissimilarity
        if self.dissimilarity == "euclidean":
            measure = EUCLIDEAN_FOR_RSATOOLBOX
            if squared_euclidean:
                if "components" not in self.meta:
                    raise ValueError(f"RDM {self.name!r}: converting to squared euclidean needs the number of "
                                     "features (meta['components'])")
                values, measure = self.upper ** 2 / self.meta["components"], "squared euclidean"
        return RDMs(values[None, :], dissimilarity_measure=measure, rdm_descriptors={"name": [self.name]},
                    pattern_descriptors={"image_name": list(self.stimuli)})


def reduce(matrix: np.ndarray, variance: float | None = None, components: int | None = None,
           standardise_columns: bool = True, min_components: int = 1) -> tuple[np.ndarray, float]:
    """Standardise, then keep the leading singular components (the study's TruncatedSVD).

    Parameters
    ----------
    matrix : ndarray, shape (n_stimuli, n_features)
    variance : float in (0, 1], optional
        Keep the fewest components whose explained-variance ratios sum to at least this.
    components : int, optional
        Keep exactly this many (capped at the rank). Neither given: every component.
    standardise_columns : bool
        z-score features first (the study did).
    min_components : int
        Keep at least this many (capped at the rank), whatever ``variance`` asks.

    Returns
    -------
    scores : ndarray, shape (n_stimuli, k), float64
        ``U_k S_k``, which is TruncatedSVD's ``fit_transform`` up to the sign of each column
        (signs are fixed so the largest-magnitude entry of each column is positive).
    explained : float
        Fraction of the (standardised) matrix's total variance the k components hold.
    """
    if variance is not None and components is not None:
        raise ValueError("give variance or components, not both")
    x = np.asarray(matrix, dtype=np.float64)
    if standardise_columns:
        x = zscore(x)
    # the smaller Gram matrix gives the same singular vectors at a fraction of the cost when
    # one side is much longer (the study's flattened latents: 112,896 features)
    n, d = x.shape
    if d >= n:
        evals, u = np.linalg.eigh(x @ x.T)
    else:
        evals, v = np.linalg.eigh(x.T @ x)
    order = np.argsort(evals)[::-1]
    evals = np.clip(evals[order], 0.0, None)
    total = evals.sum()
    if total <= 0:
        raise ValueError("the matrix has no variance: every stimulus is the same")
    rank = int((evals > evals[0] * 1e-12).sum())
    if components is not None:
        k = min(components, rank)
    elif variance is not None:
        k = min(int(np.searchsorted(np.cumsum(evals) / total, variance - 1e-12) + 1), rank)
    else:
        k = rank
    k = max(k, min(min_components, rank))
    if d >= n:
        scores = u[:, order[:k]] * np.sqrt(evals[:k])
    else:
        scores = x @ v[:, order[:k]]
    flip = np.sign(scores[np.abs(scores).argmax(axis=0), np.arange(k)])
    return scores * np.where(flip == 0, 1.0, flip), float(evals[:k].sum() / total)


def rdm_upper(patterns: np.ndarray, dissimilarity: Dissimilarity = "correlation") -> np.ndarray:
    """Dissimilarity of every pair of rows, upper triangle (scipy ``pdist`` order).

    Parameters
    ----------
    patterns : ndarray, shape (n_stimuli, n_features)
    dissimilarity : ``correlation`` (1 - Pearson r between rows, the study), ``euclidean``
        (distance in feature units), or ``cosine`` (1 - cosine similarity).

    Returns
    -------
    ndarray, shape (n * (n - 1) / 2,), float64. One BLAS product (n^2 d), no Python loop.
    """
    x = np.asarray(patterns, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"patterns must be (n_stimuli >= 2, n_features), got shape {x.shape}")
    if dissimilarity == "correlation":
        x = x - x.mean(axis=1, keepdims=True)
    if dissimilarity in ("correlation", "cosine"):
        norm = np.linalg.norm(x, axis=1, keepdims=True)
        if (norm == 0).any():
            raise ValueError(f"{dissimilarity} dissimilarity is undefined for a constant row "
                             f"(row {int(np.flatnonzero(norm == 0)[0])})")
        x = x / norm
        square = 1.0 - x @ x.T
    elif dissimilarity == "euclidean":
        sq = np.einsum("ij,ij->i", x, x)
        square = np.sqrt(np.clip(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0, None))
    else:
        raise ValueError(f"unknown dissimilarity {dissimilarity!r} (one of {', '.join(DISSIMILARITIES)})")
    return square[np.triu_indices(len(x), k=1)]


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
    ordered = np.where(bits >> np.uint64(63), ~bits, bits | np.uint64(1 << 63))
    keys = (ordered >> np.uint64(index_bits)) << np.uint64(index_bits)
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
def _tau_a(x: np.ndarray, y: np.ndarray) -> float:
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
        _check_full(method)
        return compare(squareform(x, checks=False).ravel(), squareform(y, checks=False).ravel(), method)
    if triangle != "upper":
        raise ValueError(f"unknown triangle {triangle!r} (upper or full)")
    if method == "spearman":
        (x, y), method = rank_pair(x, y), "pearson"
    if method == "pearson":
        x, y = x - x.mean(), y - y.mean()
    elif method == "kendall_tau_a":
        return float(_tau_a(x, y))
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


def _check_full(method: Comparison) -> None:
    if method not in ("pearson", "spearman", "cosine"):
        raise ValueError(f"triangle 'full' supports pearson, spearman and cosine, not {method!r}")


def _full_cells(first: np.ndarray, second: np.ndarray, method: Comparison
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


def _full_moments(cells: np.ndarray, sx, sy, sxx, syy, sxy, diagonal, dx: float, dy: float) -> np.ndarray:
    """Moments over the square (every upper cell twice, ``diagonal`` cells of value (dx, dy)) from
    those over the upper cells; each argument a scalar or an array of replicates."""
    return np.array([2 * cells + diagonal, 2 * sx + diagonal * dx, 2 * sy + diagonal * dy,
                     2 * sxx + diagonal * dx * dx, 2 * syy + diagonal * dy * dy, 2 * sxy + diagonal * dx * dy])


def _correlation_from_moments(moments: np.ndarray, method: Comparison) -> np.ndarray:
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
    _check_full(method)
    x, y, dx, dy = _full_cells(first, second, method)
    if method == "cosine":  # a zero diagonal adds nothing to any cosine sum
        return x, y, 0.0, 1.0
    m = len(x)
    vx, vy = x @ x - x.sum() ** 2 / m, y @ y - y.sum() ** 2 / m
    cnt, sx, sy, sxx, syy, _ = _full_moments(m, x.sum(), y.sum(), x @ x, y @ y, 0.0, n_items(m), dx, dy)
    scale = np.sqrt((sxx - sx * sx / cnt) * (syy - sy * sy / cnt))
    a = (2 * x.sum() * y.sum() / m + n_items(m) * dx * dy - sx * sy / cnt) / scale
    return x, y, float(a), float(2 * np.sqrt(vx * vy) / scale)


@dataclass(frozen=True)
class _Prepared:
    """One permuted RDM and K fixed ones turned into what a permuted comparison needs:
    statistic of fixed k = <x[p][:, p], weights[k]> over the upper cells."""

    x_square: np.ndarray  # (n, n) float32, centred values of the permuted side, unit norm
    weights: np.ndarray   # (K, m) float32, upper triangles of the fixed sides, centred, unit norm
    observed: np.ndarray  # (K,) float64, the unpermuted statistics


def _unit(values: np.ndarray, centre: bool) -> np.ndarray:
    values = values - values.mean() if centre else values
    norm = np.sqrt(values @ values)
    if norm == 0:
        raise ValueError("an RDM is constant: its correlation with anything is undefined")
    return values / norm


def _prepare(permuted: np.ndarray, fixed: list[np.ndarray], method: Comparison) -> _Prepared:
    if method not in ("pearson", "spearman", "cosine"):
        raise ValueError(f"the fast permutation test supports pearson, spearman and cosine, not {method!r}")
    vectors = [np.asarray(v, dtype=np.float64) for v in (permuted, *fixed)]
    if method == "spearman":
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(2) as pool:  # numpy's sort releases the GIL
            vectors = list(pool.map(rank, vectors))
    x, *ys = [_unit(v, centre=method != "cosine") for v in vectors]
    weights = np.stack(ys)
    return _Prepared(squareform(x.astype(np.float32), checks=False), weights.astype(np.float32), weights @ x)


@numba.njit(parallel=True, cache=True, fastmath=True, boundscheck=False)
def _permuted_dots(x: np.ndarray, w: np.ndarray, perms: np.ndarray, block: int) -> np.ndarray:
    """out[k, m] = sum_{i<j} x[p[i], p[j]] * w[m, cell(i, j)] for each permutation p = perms[k].

    x : (n, n) float32; w : (K, n(n-1)/2) float32; perms : (k, n) uint32. Returns (k, K) float64.
    The work is tiled by (block of i, block of p[i]): a tile touches ``block`` rows of x and
    ``block`` segments of each w, which together stay in the last-level cache while every
    permutation of the chunk passes through them, so memory is read about once per chunk instead
    of once per permutation. Each row is copied to a local buffer (a sequential read the
    prefetcher streams), its permuted upper part gathered once from L1 into a second buffer, and
    that buffer's dot with each of the K weight segments is a contiguous loop the compiler
    vectorises: K fixed RDMs cost one gather pass, not K. With one fixed RDM the gather feeds the
    dot directly, with no buffer between them (benchmarks/bench_rsa.py at n = 4,916: 7.76 ->
    5.13 ms a permutation, 1.96x -> 1.25x its memory-read floor).
    """
    n_perm, n = perms.shape
    n_fixed = w.shape[0]
    n_blocks = (n + block - 1) // block
    out = np.zeros((n_perm, n_fixed))
    # bucket each permutation's positions i by tile, ascending i within a tile
    order = np.empty((n_perm, n), dtype=np.uint32)
    starts = np.zeros((n_perm, n_blocks * n_blocks + 1), dtype=np.int64)
    for k in numba.prange(n_perm):
        p = perms[k]
        for i in range(n):
            starts[k, (i // block) * n_blocks + p[i] // block + 1] += 1
        for t in range(n_blocks * n_blocks):
            starts[k, t + 1] += starts[k, t]
        fill = starts[k].copy()
        for i in range(n):
            tile = (i // block) * n_blocks + p[i] // block
            order[k, fill[tile]] = i
            fill[tile] += 1
    for tile in range(n_blocks * n_blocks):
        for k in numba.prange(n_perm):
            p = perms[k]
            row = np.empty(n, dtype=np.float32)
            gathered = np.empty(n, dtype=np.float32)
            totals = np.zeros(n_fixed)
            for position in range(starts[k, tile], starts[k, tile + 1]):
                i = np.int64(order[k, position])
                row[:] = x[p[i]]
                first = i * n - i * (i + 1) // 2  # w[m, first + j - i - 1] is cell (i, j)
                length = n - i - 1
                tail = p[i + 1:]
                if n_fixed == 1:  # gather and dot in one loop: no buffer to write and read back
                    segment = w[0, first:first + length]
                    total = np.float32(0.0)
                    for j in range(length):
                        total += row[tail[j]] * segment[j]
                    totals[0] += total
                    continue
                for j in range(length):
                    gathered[j] = row[tail[j]]
                for m in range(n_fixed):
                    segment = w[m, first:first + length]
                    total = np.float32(0.0)
                    for j in range(length):
                        total += gathered[j] * segment[j]
                    totals[m] += total
            for m in range(n_fixed):
                out[k, m] += totals[m]
    return out


def _tile_block(n: int, n_fixed: int = 1) -> int:
    """Rows per tile: a tile's x rows and w segments take ~16 MB of last-level cache together
    (measured at n = 4,916 on a 32 MB L3: 426 rows for one fixed RDM, 213 for four)."""
    return max(32, min(n, 2**21 // (n * max(1, n_fixed // 2))))


def _permuted_dots_torch(x: np.ndarray, w: np.ndarray, perms: np.ndarray, device: str) -> np.ndarray:
    import torch

    n = x.shape[0]
    xs = torch.from_numpy(x).to(device)
    weights = torch.zeros((len(w), n, n), dtype=torch.float32, device=device)
    upper = torch.triu_indices(n, n, offset=1, device=device)
    weights[:, upper[0], upper[1]] = torch.from_numpy(w).to(device)
    per_batch = max(1, int(2**29 // (n * n)))  # ~2 GB of gathered float32 per step
    out = []
    p_all = torch.from_numpy(perms.astype(np.int64)).to(device)
    for start in range(0, len(perms), per_batch):
        p = p_all[start:start + per_batch]
        gathered = xs[p[:, :, None], p[:, None, :]]
        out.append(torch.einsum("bij,kij->bk", gathered, weights))
    return torch.cat(out).double().cpu().numpy()


def _null_sums(prepared: _Prepared, perms: np.ndarray, device: str) -> np.ndarray:
    """(k, K): the statistics of the K fixed RDMs under each permutation of the permuted side."""
    if device == "cpu":
        return _permuted_dots(prepared.x_square, prepared.weights, perms,
                              _tile_block(len(prepared.x_square), len(prepared.weights)))
    return _permuted_dots_torch(prepared.x_square, prepared.weights, perms, device)


@dataclass(frozen=True)
class PermutationResult:
    """statistic : the observed comparison; p : one-sided (greater), (1 + #null >= observed) / (1 + k);
    null : (k,) the statistic under each permutation of stimulus labels."""

    statistic: float
    p: float
    null: np.ndarray


def permutations(n: int, count: int, random_state: int | np.random.Generator) -> np.ndarray:
    """(count, n) uint32: ``count`` independent uniform permutations of range(n)."""
    rng = np.random.default_rng(random_state)
    return rng.permuted(np.tile(np.arange(n, dtype=np.uint32), (count, 1)), axis=1)


def mantel(permuted: np.ndarray, fixed: np.ndarray, method: Comparison = "spearman",
           n_permutations: int = 10_000, random_state: int | np.random.Generator = 0,
           device: str = "cpu", chunk: int = 128) -> PermutationResult:
    """Permutation test of stimulus labels for the similarity of two RDMs (Mantel test).

    Parameters
    ----------
    permuted, fixed : ndarray, shape (n * (n - 1) / 2,)
        Upper triangles over the same n stimuli in the same order; ``permuted`` is relabelled.
    method : pearson | spearman | cosine | kendall_tau_a
        As :func:`compare`; the null statistic is computed exactly on each permutation.
    n_permutations : int
    random_state : int or numpy Generator
    device : ``cpu`` (numba kernel) or a torch CUDA device (``cuda``, ``cuda:0``)
    chunk : permutations drawn at a time (memory: chunk * n * 4 bytes)

    Returns
    -------
    PermutationResult
    """
    n = n_items(len(permuted))
    if len(fixed) != len(permuted):
        raise ValueError(f"RDMs of {len(permuted)} and {len(fixed)} cells cannot be compared")
    rng = np.random.default_rng(random_state)
    if method == "kendall_tau_a":
        if n > KENDALL_MAX_STIMULI:
            raise ValueError(f"kendall tau-a is O(cells^2): {n} stimuli is too many (at most "
                             f"{KENDALL_MAX_STIMULI}); use spearman")
        square = squareform(np.asarray(permuted, dtype=np.float64), checks=False)
        upper = np.triu_indices(n, k=1)
        y = np.asarray(fixed, dtype=np.float64)
        observed = compare(permuted, fixed, "kendall_tau_a")
        null = np.array([_tau_a(square[np.ix_(p, p)][upper], y) for p in permutations(n, n_permutations, rng)])
    else:
        prepared = _prepare(permuted, [fixed], method)
        observed = prepared.observed[0]
        null = np.empty(n_permutations)
        for start in range(0, n_permutations, chunk):
            perms = permutations(n, min(chunk, n_permutations - start), rng)
            null[start:start + len(perms)] = _null_sums(prepared, perms, device)[:, 0]
    return PermutationResult(float(observed), permutation_p(observed, null), null)


def resample_counts(samples: np.ndarray, n: int) -> np.ndarray:
    """(n_boot, n) float64: how often each of n stimuli was drawn in each row of ``samples``
    (n_boot, draws) int stimulus indices."""
    samples = np.asarray(samples, dtype=np.int64)
    offsets = (samples + n * np.arange(len(samples))[:, None]).ravel()
    return np.bincount(offsets, minlength=n * len(samples)).reshape(len(samples), n).astype(np.float64)


def _resampled_moments(x: np.ndarray, y: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(6, n_boot): count, sums, sums of squares and cross-product of (x, y) over the pairs of draws
    of each resample that are two different stimuli. x, y : upper triangles over n stimuli;
    counts : (n_boot, n) draws per stimulus.

    With c a resample's counts and M a symmetric zero-diagonal matrix of cell values, the sum over
    those pairs is sum_{i<j} c_i c_j M_ij = c M c / 2: one matrix product per moment for all
    resamples, which BLAS runs near the CPU's peak (a loop over the drawn pairs gathers 10^7
    random cells per resample at n ~ 5,000 and is ~20x slower)."""
    squares = {"x": squareform(x, checks=False), "y": squareform(y, checks=False)}
    pairs = 0.5 * (counts.sum(axis=1) ** 2 - (counts * counts).sum(axis=1))
    moments = [pairs]
    for cells in ("x", "y", "xx", "yy", "xy"):
        square = squares[cells[0]] if len(cells) == 1 else squares[cells[0]] * squares[cells[1]]
        moments.append(0.5 * np.einsum("bi,bi->b", counts @ square, counts))
    return np.array(moments)


def _resampled_comparison(first: np.ndarray, second: np.ndarray, method: Comparison, counts: np.ndarray,
                          triangle: Triangle = "upper") -> np.ndarray:
    """The comparison of two RDMs (upper triangles over n stimuli) on each resample of their stimuli,
    counts (n_boot, n): how often each stimulus was drawn (:func:`resample_counts`). Cells between
    two copies of one stimulus are left out (with ``triangle="full"``, the resample's square: its
    upper cells twice and one diagonal cell per draw). Returns (n_boot,) float64."""
    x = np.asarray(first, dtype=np.float64)
    y = np.asarray(second, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    if method == "kendall_tau_a":
        if triangle == "full":
            _check_full(method)
        xs, ys = squareform(x, checks=False), squareform(y, checks=False)
        out = np.empty(len(counts))
        for b, row in enumerate(counts.astype(np.int64)):
            drawn = np.repeat(np.arange(len(row)), row)
            a, c = np.triu_indices(len(drawn), k=1)
            keep = drawn[a] != drawn[c]
            out[b] = _tau_a(xs[drawn[a[keep]], drawn[c[keep]]], ys[drawn[a[keep]], drawn[c[keep]]])
        return out
    dx = dy = 0.0
    if triangle == "full":
        x, y, dx, dy = _full_cells(x, y, method)
    elif method == "spearman":
        x, y = rank_pair(x, y)
    elif method not in ("pearson", "cosine"):
        raise ValueError(f"unknown comparison {method!r} (one of {', '.join(COMPARISONS)})")
    if method != "cosine":  # a correlation ignores a shift; centring keeps the float64 sums exact
        mx, my = x.mean(), y.mean()
        x, y, dx, dy = x - mx, y - my, dx - mx, dy - my
    moments = _resampled_moments(x, y, counts)
    if triangle == "full":
        moments = _full_moments(*moments, counts.sum(axis=1), dx, dy)
    return _correlation_from_moments(moments, method)


def bootstrap(first: np.ndarray, second: np.ndarray, method: Comparison = "spearman",
              n_bootstrap: int = 1000, random_state: int | np.random.Generator = 0,
              triangle: Triangle = "upper") -> np.ndarray:
    """The comparison on ``n_bootstrap`` resamples of the stimuli (with replacement).

    Cells between two copies of one stimulus are left out (they are self-dissimilarities).
    For ``spearman`` the ranks of the full RDMs are used in every resample (not re-ranked: the
    resample's cells are a subset of the ranked ones, and re-ranking 10^7 cells a resample would
    cost more than the whole analysis); ``kendall_tau_a`` is computed exactly on each resample.

    Returns
    -------
    ndarray, shape (n_bootstrap,), float64. ``np.quantile`` of it gives a percentile CI.
    """
    n = n_items(len(first))
    samples = np.random.default_rng(random_state).integers(0, n, size=(n_bootstrap, n))
    return _resampled_comparison(first, second, method, resample_counts(samples, n), triangle)


# ----------------------------------------------------------------------------- group statistics


def _canonical(fmri_rdms: list[RDM], model_rdm: RDM | list[RDM]) -> tuple[list[str], list[RDM], list[RDM]]:
    """The union of the subjects' stimuli in the model's order, and each subject's RDM and the model's
    RDM over that subject's stimuli, both in union order (so a relabelling of the union is the
    same relabelling for every subject, whatever order its RDM came in). ``model_rdm`` may be one
    RDM per subject (over at least that subject's stimuli) when the model side is not a subset of
    one matrix (CKA's U-centred kernels, :mod:`neurolatent.science.cka`)."""
    per_subject = model_rdm if isinstance(model_rdm, list) else [model_rdm] * len(fmri_rdms)
    seen = set().union(*(r.stimuli for r in fmri_rdms))
    listed = list(dict.fromkeys(name for model in per_subject for name in model.stimuli))
    missing = seen - set(listed)
    if missing:
        raise ValueError(f"model RDM {per_subject[0].name!r} lacks stimulus {sorted(missing)[0]!r} of the subjects' union")
    union = [name for name in listed if name in seen]
    position = {name: i for i, name in enumerate(union)}
    subjects, models = [], []
    for item, model in zip(fmri_rdms, per_subject):
        order = sorted(item.stimuli, key=position.__getitem__)
        subjects.append(item if list(item.stimuli) == order else item.subset(order))
        models.append(model if list(model.stimuli) == order else model.subset(order))
    return union, subjects, models


class _SharedDesign:
    """Who saw what: the union of the subjects' stimuli split into atoms, the images seen by exactly
    the same subjects (real BOLD5000: the 2,952 images all four subjects saw, the 1,964 only CSI1-3
    saw). A relabelling that permutes within atoms maps every subject's images onto themselves, so
    it is one relabelling of the union that every subject takes, restricted to its own images; a
    resample drawn within atoms gives every subject as many draws as it saw images."""

    def __init__(self, union: list[str], subjects: list[RDM]):
        self.size = len(union)
        position = {name: i for i, name in enumerate(union)}
        self.positions = [np.array([position[name] for name in item.stimuli]) for item in subjects]
        membership = np.zeros((self.size, len(subjects)), dtype=bool)
        for s, rows in enumerate(self.positions):
            membership[rows, s] = True
        _, atom = np.unique(membership, axis=0, return_inverse=True)
        self.atoms = [np.flatnonzero(atom.ravel() == a) for a in range(atom.max() + 1)]
        self.local = []
        for rows in self.positions:
            local = np.full(self.size, -1, dtype=np.int64)
            local[rows] = np.arange(len(rows))
            self.local.append(local)

    def relabellings(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """(count, size) int64: each row a uniformly random permutation of the union within atoms
        (row[u] is the image whose model values image u takes)."""
        out = np.tile(np.arange(self.size), (count, 1))
        for rows in self.atoms:
            out[:, rows] = rng.permuted(np.tile(rows, (count, 1)), axis=1)
        return out

    def resamples(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """(count, size) int64: each row a resample of the union with replacement, within atoms."""
        out = np.empty((count, self.size), dtype=np.int64)
        for rows in self.atoms:
            out[:, rows] = rows[rng.integers(0, len(rows), size=(count, len(rows)))]
        return out

    def restrict(self, replicates: np.ndarray, subject: int) -> np.ndarray:
        """The subject's part of union-wide relabellings or resamples, in its own indices:
        (count, m) with m its number of images."""
        # C order: the Mantel kernel reads a permutation as a row (a strided one is 3x slower)
        return np.ascontiguousarray(self.local[subject][replicates[:, self.positions[subject]]])


@dataclass(frozen=True)
class GroupPermutationResult:
    """statistic : mean over subjects of each subject's comparison; p : its permutation p;
    null : (k,) that mean under each shared relabelling of the stimuli; subject_statistics,
    subject_p : (n_subjects,); subject_nulls : (n_subjects, k), each an exact Mantel null of its
    own subject (relabellings of its images within atoms, see :class:`_SharedDesign`)."""

    statistic: float
    p: float
    null: np.ndarray
    subject_statistics: np.ndarray
    subject_p: np.ndarray
    subject_nulls: np.ndarray


def group_mantel(fmri_rdms: list[RDM], model_rdm: RDM | list[RDM], method: Comparison = "spearman",
                 n_permutations: int = 10_000, random_state: int | np.random.Generator = 0,
                 device: str = "cpu", chunk: int = 128, triangle: Triangle = "upper",
                 progress: Callable[[int], object] | None = None) -> GroupPermutationResult:
    """Group permutation test of the mean over subjects of the model-to-subject RDM comparison.

    Each permutation is one relabelling of the stimuli that every subject takes, restricted to the
    images it saw: it permutes images within the atoms of who saw them (:class:`_SharedDesign`),
    which is what maps every subject's images onto themselves. Subjects who saw the same images
    therefore get the same relabelling. Independent permutations per subject would make the mean
    of their nulls too narrow whenever the subjects' RDMs are alike (the same images, similar
    brains) and p anti-conservative (``tests/science/test_group_statistics.py`` measures both).
    The subjects' RDMs are the relabelled side (relabelling one side or the other gives the same
    null distribution), so that several models share each pass: :func:`group_mantel_models`.

    Parameters
    ----------
    fmri_rdms : one RDM per subject, each over the images that subject saw
    model_rdm : an RDM over (at least) the union of those images, or one per subject over (at least)
        its images
    method : as :func:`compare`
    n_permutations, random_state, device, chunk : as :func:`mantel`
    triangle : upper, or full (the whole squares: each subject's null is the exact affine image
        of its upper-cell null, :func:`full_square_map`)
    progress : called with the number of permutations done after each chunk (a progress bar's
        ``update``)

    Returns
    -------
    GroupPermutationResult
    """
    return group_mantel_models(fmri_rdms, {"model": model_rdm}, method, n_permutations, random_state, device, chunk,
                               triangle, progress)["model"]


def group_mantel_models(fmri_rdms: list[RDM], model_rdms: dict[str, RDM | list[RDM]], method: Comparison = "spearman",
                        n_permutations: int = 10_000, random_state: int | np.random.Generator = 0,
                        device: str = "cpu", chunk: int = 128, triangle: Triangle = "upper",
                        progress: Callable[[int], object] | None = None) -> dict[str, GroupPermutationResult]:
    """:func:`group_mantel` of several models against the same subjects, under the same relabellings.

    Each chunk of relabellings gathers every subject's permuted RDM once and takes its dot product
    with every model's fixed weights (:func:`_permuted_dots`): K models cost about 2x one at
    K = 4 (``benchmarks/bench_rsa.py``). Sharing the relabellings makes the models' nulls
    dependent, not any one of them different: each p is the exact permutation p of its model.

    Returns
    -------
    {model name: GroupPermutationResult}, in the order of ``model_rdms``
    """
    if triangle == "full":
        _check_full(method)
    names = list(model_rdms)
    union, subjects, first = _canonical(fmri_rdms, model_rdms[names[0]])
    # every model over each subject's images in that subject's canonical order: models[m][s]
    models = [first] + [[model.subset(item.stimuli) for model, item in zip(_canonical(subjects, model_rdms[name])[2],
                                                                            subjects)]
                        for name in names[1:]]
    design = _SharedDesign(union, subjects)
    rng = np.random.default_rng(random_state)
    n_models, n_subjects = len(names), len(subjects)
    nulls = np.empty((n_models, n_subjects, n_permutations))
    scale = np.tile([0.0, 1.0], (n_models, n_subjects, 1))  # statistic = a + b * permuted sum
    prepared: list[_Prepared | None] = []
    for s, item in enumerate(subjects):
        fixed = [per_subject[s].upper for per_subject in models]
        if method == "kendall_tau_a":
            prepared.append(None)
            continue
        if triangle == "full":
            maps = [full_square_map(model, item.upper, method) for model in fixed]
            scale[:, s] = [(a, b) for _, _, a, b in maps]
            prepared.append(_prepare(maps[0][1], [x for x, _, _, _ in maps], "cosine" if method == "cosine" else "pearson"))
        else:
            prepared.append(_prepare(item.upper, fixed, method))
    for start in range(0, n_permutations, chunk):
        relabellings = design.relabellings(min(chunk, n_permutations - start), rng)
        stop = start + len(relabellings)
        for s, item in enumerate(subjects):
            perms = design.restrict(relabellings, s).astype(np.uint32)
            if prepared[s] is None:
                square, upper = item.square(), np.triu_indices(item.n, k=1)
                permuted = [square[np.ix_(p, p)][upper] for p in perms]
                for m, per_subject in enumerate(models):
                    nulls[m, s, start:stop] = [_tau_a(cells, per_subject[s].upper) for cells in permuted]
            else:
                nulls[:, s, start:stop] = _null_sums(prepared[s], perms, device).T
        if progress is not None:
            progress(stop - start)
    nulls = scale[..., :1] + scale[..., 1:] * nulls
    results = {}
    for m, name in enumerate(names):
        if method == "kendall_tau_a":
            observed = np.array([_tau_a(models[m][s].upper, item.upper) for s, item in enumerate(subjects)])
        else:
            observed = scale[m, :, 0] + scale[m, :, 1] * np.array([prep.observed[m] for prep in prepared])
        null = nulls[m].mean(axis=0)
        statistic = float(observed.mean())
        results[name] = GroupPermutationResult(statistic, permutation_p(statistic, null), null, observed,
                                               np.array([permutation_p(o, row) for o, row in zip(observed, nulls[m])]),
                                               nulls[m])
    return results


@dataclass(frozen=True)
class GroupBootstrapResult:
    """replicates : (n_bootstrap,) the mean over subjects on each shared resample of the stimuli;
    subject_replicates : (n_subjects, n_bootstrap)."""

    replicates: np.ndarray
    subject_replicates: np.ndarray


def group_bootstrap(fmri_rdms: list[RDM], model_rdm: RDM, method: Comparison = "spearman",
                    n_bootstrap: int = 1000, random_state: int | np.random.Generator = 0,
                    triangle: Triangle = "upper") -> GroupBootstrapResult:
    """Bootstrap of the mean over subjects of the model-to-subject comparison, resampling stimuli.

    Each replicate draws one resample (with replacement) of the union of the subjects' stimuli,
    within the atoms of who saw them (:class:`_SharedDesign`), and every subject takes the draws
    among its images, as many as it saw: subjects who saw the same images see the same resample,
    as rsatoolbox's pattern bootstrap resamples one shared stimulus set. Cells between two copies
    of one stimulus are left out; ``spearman`` uses each subject's full-RDM ranks (as
    :func:`bootstrap`).

    Returns
    -------
    GroupBootstrapResult; ``np.quantile(result.replicates, [0.025, 0.975])`` is a percentile CI.
    """
    union, subjects, models = _canonical(fmri_rdms, model_rdm)
    design = _SharedDesign(union, subjects)
    resamples = design.resamples(n_bootstrap, np.random.default_rng(random_state))
    replicates = np.empty((len(subjects), n_bootstrap))
    for s, (model, item) in enumerate(zip(models, subjects)):
        counts = resample_counts(design.restrict(resamples, s), item.n)
        replicates[s] = _resampled_comparison(model.upper, item.upper, method, counts, triangle)
    return GroupBootstrapResult(replicates.mean(axis=0), replicates)


def _pooled_form(vectors: np.ndarray, method: Comparison) -> np.ndarray:
    """Each RDM (row, NaN = missing cell) normalised so that averaging them gives rsatoolbox's
    ``pool_rdm``: z-scored for pearson, ranked for spearman/kendall_tau_a, RMS-scaled for cosine."""
    out = np.full_like(vectors, np.nan, dtype=np.float64)
    for i, row in enumerate(vectors):
        ok = ~np.isnan(row)
        v = row[ok]
        if method == "pearson":
            v = (v - v.mean()) / v.std()
        elif method in ("spearman", "kendall_tau_a"):
            v = rank(v)
        else:
            v = v / np.sqrt(np.mean(v * v))
        out[i, ok] = v
    return out


def noise_ceiling(subject_rdms: np.ndarray, method: Comparison = "spearman",
                  min_cells: int = 10) -> tuple[float, float]:
    """Lower and upper noise ceiling across subjects (rsatoolbox ``boot_noise_ceiling``).

    Parameters
    ----------
    subject_rdms : ndarray, shape (n_subjects, n_cells)
        Each subject's RDM over one common stimulus order; NaN marks a cell the subject lacks
        (a pair of images it did not see both of).
    method : the comparison used for models
    min_cells : a subject sharing fewer cells with the others is left out of the bounds

    Returns
    -------
    (lower, upper) : mean over subjects of the comparison of a subject's RDM with the pooled RDM
        of the other subjects (lower) and of all subjects (upper), each on the cells both have.
        NaN when no subject shares ``min_cells`` cells with the others.
    """
    vectors = np.asarray(subject_rdms, dtype=np.float64)
    if vectors.ndim != 2 or len(vectors) < 2:
        raise ValueError("a noise ceiling needs the RDMs of at least two subjects")
    pooled = _pooled_form(vectors, method)

    def nanmean(rows: np.ndarray) -> np.ndarray:
        counts = (~np.isnan(rows)).sum(axis=0)
        return np.where(counts > 0, np.nansum(rows, axis=0) / np.maximum(counts, 1), np.nan)

    everyone = nanmean(pooled)
    lower, upper = [], []
    for s in range(len(vectors)):
        others = nanmean(np.delete(pooled, s, axis=0))
        own = vectors[s]
        shared = ~np.isnan(own) & ~np.isnan(others)
        if shared.sum() < min_cells:
            continue
        lower.append(compare(own[shared], others[shared], method))
        mine = ~np.isnan(own)
        upper.append(compare(own[mine], everyone[mine], method))
    if not lower:
        return float("nan"), float("nan")
    return float(np.mean(lower)), float(np.mean(upper))


def reduced_rdm(matrix: np.ndarray, stimuli: tuple[str, ...], name: str, dissimilarity: Dissimilarity = "correlation",
                variance: float | None = 0.7, components: int | None = None, standardise_columns: bool = True,
                min_components: int = 1) -> RDM:
    """Reduce a (n_stimuli, d) matrix (:func:`reduce`) and take its RDM (:func:`rdm_upper`).

    ``meta`` of the result holds ``components`` (kept) and ``variance`` (fraction explained).
    """
    scores, explained = reduce(matrix, variance, components, standardise_columns, min_components)
    return RDM(rdm_upper(scores, dissimilarity), tuple(stimuli), dissimilarity, name,
               {"components": int(scores.shape[1]), "variance": explained})


def union_vectors(rdms: list[RDM], order: list[str]) -> np.ndarray:
    """RDMs over subsets of stimuli as rows over the union ``order``: (n_rdms, cells) with NaN for
    the pairs an RDM does not have (a subject that did not see both images)."""
    position = {name: i for i, name in enumerate(order)}
    n = len(order)
    upper = np.triu_indices(n, k=1)
    out = np.full((len(rdms), len(upper[0])), np.nan)
    for k, item in enumerate(rdms):
        rows = np.array([position[name] for name in item.stimuli])
        square = np.full((n, n), np.nan)
        square[np.ix_(rows, rows)] = item.square()
        out[k] = square[upper]
    return out
