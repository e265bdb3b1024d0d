"""The kernels under RSA's inference: every permutation of a comparison as one dot product, and
every bootstrap resample as quadratic forms of its draw counts.

Why the permutation test is fast: ranks and the moments of an RDM's cells do not change when its
stimuli are relabelled, so each permutation of ``compare`` is one dot product of the permuted,
centred matrix with a fixed weight vector. A numba kernel gathers each permuted row once, takes
its float32 dot product with the weights of every RDM compared with it (the models that share a
pass), and tiles the work so that a chunk of permutations shares each pass over memory (see
:func:`permuted_dots`); on CUDA the same sums are a batched torch gather. The kernel is
hand-written because ``benchmarks/bench_rsa.py`` measures it against rsatoolbox and a numpy loop
at BOLD5000's size. The bootstrap needs no kernel: a resample's moments are quadratic forms of its
draw counts, one BLAS matrix product for all resamples.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain

import numba
import numpy as np
from scipy.spatial.distance import squareform

from neurolatent.science.rsa.compare import (COMPARISONS, Comparison, Triangle, check_full, correlation_from_moments, full_cells,
                                             full_moments, rank, rank_pair, tau_a)


@dataclass(frozen=True)
class Prepared:
    """One permuted RDM and K fixed ones turned into what a permuted comparison needs:
    statistic of fixed k = <x[p][:, p], weights[k]> over the upper cells."""

    x_square: np.ndarray  # (n, n) float32, centred values of the permuted side, unit norm
    weights: np.ndarray   # (K, m) float32, upper triangles of the fixed sides, centred, unit norm
    observed: np.ndarray  # (K,) float64, the unpermuted statistics


def unit_vector(values: np.ndarray, centre: bool) -> np.ndarray:
    """``values`` (float64) centred (if ``centre``) and scaled to unit norm; ValueError if constant."""
    values = values - values.mean() if centre else values
    norm = np.sqrt(values @ values)
    if norm == 0:
        raise ValueError("an RDM is constant: its correlation with anything is undefined")
    return values / norm


def prepare(permuted: np.ndarray, fixed: Sequence[np.ndarray], method: Comparison) -> Prepared:
    """One RDM to relabel and K fixed ones (upper triangles, (m,) each) as :class:`Prepared`: ranked
    for spearman, centred (not for cosine) and scaled to unit norm, so each permuted statistic is
    one dot product. ``fixed`` is indexed once per item, in order, and each is dropped once it is a
    row of the weights: a sequence that makes or reads its items when indexed
    (:func:`~neurolatent.science.rsa.inference.group_mantel_models`' models) is held one at a time."""
    if method not in ("pearson", "spearman", "cosine"):
        raise ValueError(f"the fast permutation test supports pearson, spearman and cosine, not {method!r}")
    vectors = _comparable(chain([permuted], (fixed[k] for k in range(len(fixed)))), method)
    x = unit_vector(next(vectors), centre=method != "cosine")
    # row by row into one array: K unit vectors and their stacked copy are never held together (at
    # BOLD5000's 12 million cells a row is 97 MB, and the CKA kernels compare 9 models at once)
    weights = np.empty((len(fixed), len(x)))
    for k in range(len(fixed)):
        weights[k] = unit_vector(next(vectors), centre=method != "cosine")
    return Prepared(squareform(x.astype(np.float32), checks=False), weights.astype(np.float32), weights @ x)


def _comparable(vectors: Iterator[np.ndarray], method: Comparison) -> Iterator[np.ndarray]:
    """Each vector as float64, ranked for spearman, in order; two are ranked at a time on two
    threads (numpy's sort releases the GIL). What was yielded is let go before the next is taken."""
    for first in vectors:
        if method != "spearman":
            yield np.asarray(first, dtype=np.float64)
            del first
            continue
        second = next(vectors, None)
        if second is None:
            yield rank(first)
            return
        ranked = list(rank_pair(first, second))
        del first, second
        yield ranked.pop(0)
        yield ranked.pop(0)


@numba.njit(parallel=True, cache=True, fastmath=True, boundscheck=False)
def permuted_dots(x: np.ndarray, w: np.ndarray, perms: np.ndarray, block: int) -> np.ndarray:
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


def tile_block(n: int, n_fixed: int = 1) -> int:
    """Rows per tile: a tile's x rows and w segments take ~16 MB of last-level cache together
    (measured at n = 4,916 on a 32 MB L3: 426 rows for one fixed RDM, 213 for four)."""
    return max(32, min(n, 2**21 // (n * max(1, n_fixed // 2))))


def permuted_dots_torch(x: np.ndarray, w: np.ndarray, perms: np.ndarray, device: str) -> np.ndarray:
    """:func:`permuted_dots` as a batched torch gather on ``device`` (a GPU): (k, K) float64."""
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


def null_sums(prepared: Prepared, perms: np.ndarray, device: str) -> np.ndarray:
    """(k, K): the statistics of the K fixed RDMs under each permutation of the permuted side."""
    if device == "cpu":
        return permuted_dots(prepared.x_square, prepared.weights, perms,
                              tile_block(len(prepared.x_square), len(prepared.weights)))
    return permuted_dots_torch(prepared.x_square, prepared.weights, perms, device)


def resample_counts(samples: np.ndarray, n: int) -> np.ndarray:
    """(n_boot, n) float64: how often each of n stimuli was drawn in each row of ``samples``
    (n_boot, draws) int stimulus indices."""
    samples = np.asarray(samples, dtype=np.int64)
    offsets = (samples + n * np.arange(len(samples))[:, None]).ravel()
    return np.bincount(offsets, minlength=n * len(samples)).reshape(len(samples), n).astype(np.float64)


def resampled_moments(x: np.ndarray, y: np.ndarray, counts: np.ndarray) -> np.ndarray:
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


def resampled_comparison(first: np.ndarray, second: np.ndarray, method: Comparison, counts: np.ndarray,
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
            check_full(method)
        xs, ys = squareform(x, checks=False), squareform(y, checks=False)
        out = np.empty(len(counts))
        for b, row in enumerate(counts.astype(np.int64)):
            drawn = np.repeat(np.arange(len(row)), row)
            a, c = np.triu_indices(len(drawn), k=1)
            keep = drawn[a] != drawn[c]
            out[b] = tau_a(xs[drawn[a[keep]], drawn[c[keep]]], ys[drawn[a[keep]], drawn[c[keep]]])
        return out
    dx = dy = 0.0
    if triangle == "full":
        x, y, dx, dy = full_cells(x, y, method)
    elif method == "spearman":
        x, y = rank_pair(x, y)
    elif method not in ("pearson", "cosine"):
        raise ValueError(f"unknown comparison {method!r} (one of {', '.join(COMPARISONS)})")
    if method != "cosine":  # a correlation ignores a shift; centring keeps the float64 sums exact
        mx, my = x.mean(), y.mean()
        x, y, dx, dy = x - mx, y - my, dx - mx, dy - my
    moments = resampled_moments(x, y, counts)
    if triangle == "full":
        moments = full_moments(*moments, counts.sum(axis=1), dx, dy)
    return correlation_from_moments(moments, method)
