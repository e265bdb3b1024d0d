"""Timing shared by the benchmarks."""

from __future__ import annotations

import time


def fastest(work, repeat: int = 1) -> float:
    """The least wall time in seconds of ``repeat`` calls of ``work()`` (timeit's convention: the
    slower calls measure the machine's other jobs, which a call of a fraction of a second cannot
    average away)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best
