"""Benchmark: `volume` and `betas` samples of one BOLD5000-size run against just reading it.

Target (issue #3): throughput >= 0.7x that of decompressing and reading the run with nibabel, i.e.
read time / method time >= 0.7. Both are measured in this process on the same file (106 x 106 x 69
x 194 int16, gzip), best of ``--repeats``; the visual mask has the planted region's size.

    python benchmarks/bench_fmri_throughput.py [--repeats 3]
    python benchmarks/bench_fmri_throughput.py --smoke    # the same code on an 8 mm run, once (tests)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

from neurolatent.io.nifti import load_run
from neurolatent.science.sampling import masked_samples

from bold5000_run import bold5000_size_run


def best_of(repeats: int, work) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="a tiny size: 8 mm voxels, one repeat")
    args = parser.parse_args()
    if args.smoke:
        args.repeats = 1
    with tempfile.TemporaryDirectory() as folder:
        path, onsets, durations, mask = bold5000_size_run(Path(folder), 8 if args.smoke else 2)
        read_s = best_of(args.repeats, lambda: np.asanyarray(nib.load(path).dataobj))
        print(f"run {nib.load(path).shape}, mask {int(mask.sum())} voxels, {len(onsets)} trials")
        print(f"nibabel read   {read_s:6.3f} s")
        for method in ("volume", "betas"):
            def samples():  # what the fmri stage does per run: read inside the mask, then the method
                series, tr = load_run(path, mask)
                return masked_samples(series, tr, onsets, durations, method)

            method_s = best_of(args.repeats, samples)
            print(f"{method:8s}       {method_s:6.3f} s   throughput ratio {read_s / method_s:.2f}x of reading")


if __name__ == "__main__":
    main()
