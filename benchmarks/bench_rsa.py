"""Benchmark: RSA at BOLD5000's size (n = 4916 stimuli, d = 715 features), against rsatoolbox,
a naive numpy loop and the memory-bandwidth floor, all measured in this one process.

- RDM (1 - Pearson r): ``neurolatent.science.rsa.rdm_upper`` vs ``rsatoolbox.rdm.calc_rdm``.
- Spearman comparison of two RDMs: ``neurolatent.science.rsa.compare`` vs ``rsatoolbox.rdm.compare``.
- Mantel test, exact statistic on every permutation: ``neurolatent.science.rsa.mantel`` vs a naive numpy
  loop (gather the permuted matrix, take the upper triangle, correlate; timed on a few
  permutations and scaled) and vs the floor: streaming one n x n float32 matrix per permutation,
  rows in permuted order (the least any exact test must read), timed here with a fused numba sum.
- The ``rsa`` stage's form of the test: ``group_mantel_models``, one fMRI RDM against ``--models``
  image models under the same permutations (one pass over the permuted RDM serves them all),
  reported per model against the same floor.
- Peak memory of our path: resident-set growth of a fresh child process that runs it.

    python benchmarks/bench_rsa.py [--n 4916] [--d 715] [--permutations 10000] [--models 4] [--device cpu|cuda]
    python benchmarks/bench_rsa.py --smoke    # the same code at n = 300 (tests/test_benchmarks.py)
"""

from __future__ import annotations

import argparse
import multiprocessing
import time

import numba
import numpy as np

from timing import fastest


def patterns(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two (n, d) matrices that share a weak linear structure."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=(n, 20))
    first = shared @ rng.normal(size=(20, d)) + 4 * rng.normal(size=(n, d))
    second = shared @ rng.normal(size=(20, d)) + 4 * rng.normal(size=(n, d))
    return first, second


@numba.njit(parallel=True, fastmath=True, cache=True)
def _stream_rows(x: np.ndarray, order: np.ndarray) -> float:
    total = np.zeros(len(order))
    for i in numba.prange(len(order)):
        row = x[order[i]]
        acc = np.float32(0.0)
        for j in range(row.shape[0]):
            acc += row[j]
        total[i] = acc
    return total.sum()


def floor_per_permutation(n: int, repeat: int = 20) -> float:
    """Seconds to read one n x n float32 matrix, rows in a random order, on every core."""
    rng = np.random.default_rng(1)
    matrix = rng.normal(size=(n, n)).astype(np.float32)
    _stream_rows(matrix, np.arange(n))
    orders = [rng.permutation(n) for _ in range(repeat)]
    start = time.perf_counter()
    for order in orders:
        _stream_rows(matrix, order)
    return (time.perf_counter() - start) / repeat


def naive_per_permutation(first: np.ndarray, second: np.ndarray, count: int = 2) -> float:
    """Seconds per permutation of the obvious numpy Mantel loop (float64, re-correlating)."""
    from scipy.spatial.distance import squareform

    square = squareform(first)
    upper = np.triu_indices(len(square), k=1)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(count):
        p = rng.permutation(len(square))
        np.corrcoef(square[np.ix_(p, p)][upper], second)
    return (time.perf_counter() - start) / count


def _status_kib(field: str) -> int:
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _ours(args: argparse.Namespace, queue) -> None:
    from neurolatent.science.rsa.compare import compare
    from neurolatent.science.rsa.inference import mantel
    from neurolatent.science.rsa.rdm import rdm_upper

    mantel(np.arange(4950.0), np.arange(4950.0)[::-1], "spearman", 8, 0, device=args.device)
    base = _status_kib("VmRSS")
    first, second = patterns(args.n, args.d)
    a = rdm_upper(first)
    b = rdm_upper(second)
    compare(a, b, "spearman")
    result = mantel(a, b, "spearman", args.permutations, 0, device=args.device)
    queue.put(((_status_kib("VmHWM") - base) * 1024, result.statistic, result.p))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4916)
    parser.add_argument("--d", type=int, default=715)
    parser.add_argument("--permutations", type=int, default=10_000)
    parser.add_argument("--models", type=int, default=4, help="image models sharing one pass (the default pipeline's 4)")
    parser.add_argument("--device", default="cpu", help="cpu (numba) or cuda (torch)")
    parser.add_argument("--skip-rsatoolbox", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="a tiny size (n 300, d 20, 50 permutations, 2 models)")
    args = parser.parse_args()
    if args.smoke:
        args.n, args.d, args.permutations, args.models = 300, 20, 50, 2

    from neurolatent.science.rsa.compare import compare
    from neurolatent.science.rsa.inference import group_mantel_models, mantel
    from neurolatent.science.rsa.rdm import RDM, rdm_upper

    first, second = patterns(args.n, args.d)
    print(f"n = {args.n} stimuli, d = {args.d} features, {args.n * (args.n - 1) // 2:,} cells; "
          f"numba threads {numba.get_num_threads()}, device {args.device}")

    rdm_upper(first[:50])
    ours_rdm = fastest(lambda: rdm_upper(first), repeat=3)
    a, b = rdm_upper(first), rdm_upper(second)
    compare(a[:1000], b[:1000], "spearman")
    ours_spearman = fastest(lambda: compare(a, b, "spearman"), repeat=3)
    if not args.skip_rsatoolbox:
        from rsatoolbox.data import Dataset
        from rsatoolbox.rdm import calc_rdm
        from rsatoolbox.rdm import compare as rsatoolbox_compare  # not over ours: both are timed here

        dataset = Dataset(first)
        theirs_rdm = fastest(lambda: calc_rdm(dataset, method="correlation"))
        rdm_a, rdm_b = calc_rdm(dataset, method="correlation"), calc_rdm(Dataset(second), method="correlation")
        theirs_spearman = fastest(lambda: rsatoolbox_compare(rdm_a, rdm_b, method="spearman"))
        agree_rdm = np.abs(rdm_a.get_vectors()[0] - a).max()
        # rsatoolbox returns a (1, 1) matrix of comparisons
        agree_r = abs(float(rsatoolbox_compare(rdm_a, rdm_b, method="spearman")[0, 0]) - compare(a, b, "spearman"))
        print(f"RDM       ours {ours_rdm:7.3f} s   rsatoolbox {theirs_rdm:7.3f} s   "
              f"{theirs_rdm / ours_rdm:6.1f}x   (max |difference| {agree_rdm:.1e})")
        print(f"spearman  ours {ours_spearman:7.3f} s   rsatoolbox {theirs_spearman:7.3f} s   "
              f"{theirs_spearman / ours_spearman:6.1f}x   (|difference| {agree_r:.1e})")
    else:
        print(f"RDM ours {ours_rdm:.3f} s; spearman ours {ours_spearman:.3f} s")

    floor = floor_per_permutation(args.n)
    naive = naive_per_permutation(a, b)
    mantel(a[:4950], b[:4950], "spearman", 16, 0, device=args.device)  # compile / warm up
    start = time.perf_counter()
    result = mantel(a, b, "spearman", args.permutations, 0, device=args.device)
    mantel = time.perf_counter() - start
    k = args.permutations
    print(f"mantel    {k} permutations: ours {mantel:7.1f} s ({mantel / k * 1e3:.2f} ms each)   "
          f"r = {result.statistic:.4f}, p = {result.p:.4g}")
    print(f"          naive numpy loop {naive:.3f} s each -> {naive * k / 60:.1f} min: {naive * k / mantel:6.1f}x")
    print(f"          floor (stream n x n float32, permuted rows) {floor * 1e3:.2f} ms each "
          f"-> {floor * k:.1f} s ({args.n * args.n * 4 / floor / 1e9:.1f} GB/s): ours / floor = {mantel / (floor * k):.2f}")

    names = tuple(f"img{i}" for i in range(args.n))
    brain = RDM(a, names, "correlation", "fmri")
    noise = np.random.default_rng(9).normal(size=second.shape)
    models = {f"model{m}": RDM(rdm_upper(second + m * noise), names, "correlation") for m in range(args.models)}
    start = time.perf_counter()
    shared = group_mantel_models([brain], models, "spearman", args.permutations, 0, device=args.device)
    together = time.perf_counter() - start
    print(f"          {args.models} models sharing each pass (the rsa stage): {together:7.1f} s, "
          f"{together / args.models / k * 1e3:.2f} ms per model and permutation: ours / floor = "
          f"{together / args.models / (floor * k):.2f} per test "
          f"(r = {', '.join(f'{result.statistic:.3f}' for result in shared.values())})")

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_ours, args=(args, queue))
    child.start()
    peak, statistic, p = queue.get()
    child.join()
    print(f"peak memory (VmHWM growth) of two RDMs + spearman + mantel in a fresh process: {peak / 2**30:.2f} GiB "
          f"(r = {statistic:.4f}, p = {p:.4g})")


if __name__ == "__main__":
    main()
