"""Where alignment gains over scratch and where it does not: few-shot identification over SNR x k.

Planted subjects (:func:`neurolatent.science.fewshot.planted_subjects`: 4 subjects, 150 images,
500 voxels each, 30 test images), each its own random linear map of 18 planted features, with and
without ``shared_dims`` of shared content beyond them; every subject held out in turn. Prints the
mean 2-way accuracy over held-out subjects per (target, SNR, shared dims, method) and k.

    python benchmarks/align_snr_k.py [--snr 0 0.2 0.4 1] [--shared-dims 0 30] [--smoke]

``--smoke``: SNR 1 alone, no shared dims and 100 voxels a subject (seconds, the same code path).
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from neurolatent.science.fewshot import SCRATCH, FewShotDesign, leave_one_out, planted_subjects


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snr", type=float, nargs="+", default=[0.0, 0.2, 0.4, 1.0])
    parser.add_argument("--shared-dims", type=int, nargs="+", default=[0, 30])
    parser.add_argument("--voxels", type=int, default=500)
    parser.add_argument("--smoke", action="store_true", help="SNR 1, no shared dims, 100 voxels")
    args = parser.parse_args()
    if args.smoke:
        args.snr, args.shared_dims, args.voxels = [1.0], [0], 100
    rows = []
    for snr in args.snr:
        for dims in args.shared_dims:
            subjects, planted = planted_subjects(snr, voxels=args.voxels, shared_dims=dims)
            design = FewShotDesign(tuple(planted.stimuli[:30]), (10, 25, 50), planted, {"planted": planted}, 16, 10, 0,
                                   bootstrap=100)
            for method in ("srm", "procrustes", "adapter", SCRATCH):
                for subject in subjects:
                    rows += [{"snr": snr, "shared_dims": dims, **row} for row in
                             leave_one_out(method, subjects, subject, design, np.random.default_rng(0))]
    table = pd.DataFrame(rows)
    table["k"] = table["k"].where(table["k"] <= 50, "all")
    print(table.groupby(["target", "snr", "shared_dims", "method", "k"])["two_way"].mean().unstack("k")
          .round(3).to_markdown())


if __name__ == "__main__":
    main()
