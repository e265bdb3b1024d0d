"""Benchmark: the fast renderer against nilearn's plot_stat_map on the same volumes.

Target (issue #3): >= 20x faster per volume, mean pixel correlation >= 0.95; each engine's time is
its least of a few passes (the machine's other jobs only ever add). Both engines draw the same volumes of a BOLD5000-size run (106 x 106 x 69) in this process, one after the other, at the
study's 672 px and at the demo's 64 px. The fast engine draws a run's volumes as one batch, as the
fmri stage calls it: all 194 (``render.samples: all_trs``) or one per trial (37, ``trials``).

    python benchmarks/bench_render.py [--volumes 12] [--repeat 5] [--nilearn-repeat 3]
    python benchmarks/bench_render.py --smoke    # the same code on an 8 mm run, 2 volumes, 64 px (tests)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

from neurolatent.io.nifti import load_run
from neurolatent.science.render import render_fast, render_nilearn

from bold5000_run import bold5000_size_run
from timing import fastest


def pixel_correlations(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    return np.array([np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1]
                     for a, b in zip(first, second)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volumes", type=int, default=12, help="volumes drawn by nilearn (slow)")
    parser.add_argument("--threshold", type=float, default=100.0)
    parser.add_argument("--repeat", type=int, default=5, help="fast-engine calls timed, the least kept")
    parser.add_argument("--nilearn-repeat", type=int, default=3, help="passes of nilearn timed, the least kept")
    parser.add_argument("--smoke", action="store_true", help="a tiny size: 8 mm voxels, 2 volumes, 64 px, once")
    args = parser.parse_args()
    if args.smoke:
        args.volumes, args.repeat, args.nilearn_repeat = 2, 1, 1
    with tempfile.TemporaryDirectory() as folder:
        path, *_ = bold5000_size_run(Path(folder), 8 if args.smoke else 2)
        volumes, _ = load_run(path)
        affine = nib.load(path).affine
    render_fast(volumes[:2], affine, 64, args.threshold)  # compile the kernels outside the timing
    print(f"run {volumes.shape[1:]} x {len(volumes)} volumes; nilearn draws {args.volumes} of them")
    for size in (64,) if args.smoke else (672, 64):
        reference = np.stack([render_nilearn(v, affine, size, args.threshold) for v in volumes[:args.volumes]])
        nilearn_s = fastest(lambda: [render_nilearn(v, affine, size, args.threshold) for v in volumes[:args.volumes]],
                            args.nilearn_repeat) / args.volumes
        fast = render_fast(volumes, affine, size, args.threshold)
        run_s = fastest(lambda: render_fast(volumes, affine, size, args.threshold), args.repeat) / len(volumes)
        trials = volumes[3::5][:37]
        trials_s = fastest(lambda: render_fast(trials, affine, size, args.threshold), args.repeat) / len(trials)
        r = pixel_correlations(reference, fast[:args.volumes])
        print(f"{size:4d} px  nilearn {nilearn_s * 1e3:6.1f} ms/volume | fast, whole run {run_s * 1e3:5.2f} ms/volume "
              f"= {nilearn_s / run_s:5.1f}x, 37 trial volumes {trials_s * 1e3:5.2f} ms/volume = {nilearn_s / trials_s:5.1f}x "
              f"| pixel r mean {r.mean():.5f} min {r.min():.5f}")

if __name__ == "__main__":
    main()
