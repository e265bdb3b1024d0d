"""Benchmark: banded ridge (every band together, one penalty per band and voxel) against the
baseline, one scikit-learn ``RidgeCV(alpha_per_target=True)`` per band, in the same process, on
random features and responses of a given shape; with ``--before``, himalaya's own primal search
(``solve_group_ridge_random_search``, what ``BandedRidgeCV`` ran before #37) on the same data; and
himalaya's torch_cuda backend against its numpy one when torch sees a GPU.

    python benchmarks/bench_encoding.py                        # the default's shape and BOLD5000's
    python benchmarks/bench_encoding.py --images 4916 --voxels 2000 --widths 768 64 192 192 32
    python benchmarks/bench_encoding.py --smoke                # a tiny shape, a few seconds, same code

Shapes (the default's): 89 training images, 2,018 voxels, bands of 768 (pixels), 64 (image AE),
64 (ViT), 32 (noise) features. BOLD5000's: 4,916 images (80 % trained on), the voxels given,
five bands (pixels, image AE, three ViT-B layers of 768 would be 2,432 features; given by
``--widths``). Prints seconds per fit and the ratio to the baseline. ``--smoke``: the same code on
a tiny shape (tests/test_benchmarks.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from timing import fastest  # noqa: E402

SHAPES = {"default": (111, 2018, (768, 64, 64, 32)), "bold5000": (4916, 2000, (768, 64, 192, 192, 32))}
#: a shape that takes a few seconds: more images than features, so the primal search runs
SMOKE = {"smoke": (150, 50, (20, 10, 5))}


def measure(images: int, voxels: int, widths: tuple[int, ...], search: int, repeat: int, before: bool):
    """Yields (what, seconds of one fit) on random data of that shape (80 % of the images fitted),
    each as soon as it is measured."""
    from sklearn.linear_model import RidgeCV
    from sklearn.preprocessing import StandardScaler

    from neurolatent.science.encoding import ALPHAS, BandedRidgeCV

    rng = np.random.default_rng(0)
    train = int(0.8 * images)
    bands = [rng.standard_normal((train, width)) for width in widths]
    responses = rng.standard_normal((train, voxels))
    yield "RidgeCV, one per band (baseline)", fastest(lambda: [
        RidgeCV(alphas=ALPHAS, alpha_per_target=True).fit(StandardScaler().fit_transform(band), responses)
        for band in bands], repeat)
    yield "banded ridge, numpy", fastest(lambda: BandedRidgeCV(n_iter=search).fit(bands, responses), repeat)
    import torch

    if torch.cuda.is_available():
        yield "banded ridge, torch_cuda", fastest(
            lambda: BandedRidgeCV(n_iter=search, backend="torch_cuda").fit(bands, responses), repeat)
    if before:
        from himalaya.ridge import solve_group_ridge_random_search
        from sklearn.model_selection import KFold

        scaled = [StandardScaler().fit_transform(band) for band in bands]
        yield "himalaya's primal search (before #37)", fastest(lambda: solve_group_ridge_random_search(
            scaled, responses, n_iter=search, alphas=np.asarray(ALPHAS), cv=KFold(5, shuffle=True, random_state=0),
            random_state=0, fit_intercept=True, return_weights=True, progress_bar=False, warn=False), repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int)
    parser.add_argument("--voxels", type=int)
    parser.add_argument("--widths", type=int, nargs="+")
    parser.add_argument("--search", type=int, default=10, help="band weightings (encode.search)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--before", action="store_true", help="also time himalaya's own primal search")
    parser.add_argument("--smoke", action="store_true", help="a tiny shape (a few seconds), the same code path")
    args = parser.parse_args()
    from neurolatent.pipeline.numerics import pin_numerics

    pin_numerics(2, True)
    if args.smoke:
        shapes, args.search = SMOKE, 3
    else:
        shapes = SHAPES if args.images is None else {"given": (args.images, args.voxels, tuple(args.widths))}
    print("| shape | images | voxels | band widths | fit | seconds | ratio to RidgeCV per band |")
    print("|---|---|---|---|---|---|---|")
    for name, (images, voxels, widths) in shapes.items():
        baseline = None
        for what, seconds in measure(images, voxels, widths, args.search, args.repeat, args.before or args.smoke):
            baseline = baseline or seconds
            print(f"| {name} | {images} | {voxels} | {' '.join(map(str, widths))} | {what} | {seconds:.2f} | "
                  f"{seconds / baseline:.2f} |", flush=True)


if __name__ == "__main__":
    main()
