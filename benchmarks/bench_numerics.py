"""Benchmark: what the portable numerics cost, kernel by kernel.

MKL's code branch and numba's target are fixed when each library loads, so every configuration
runs in a process of its own, started by this one, interleaved and repeated (``--rounds``); the
table gives each configuration's least time per operation and its ratio to the baseline:

- ``MKL AVX2 branch`` (the baseline: the pins until this change, ``MKL_CBWR=AVX2``, which MKL
  honours on Intel CPUs only and replaces with its own vendor dispatch on others);
- ``portable`` (``numerics.portable_environment``: MKL's ``COMPATIBLE`` branch, numba for haswell's
  own features, the same bits on every x86-64 CPU with AVX2);
- ``native`` (``compute.portable: false``: each library's fastest code for this CPU).

    python benchmarks/bench_numerics.py [--rounds 3]
    python benchmarks/bench_numerics.py --smoke    # one round, one call, tiny operands (tests)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CONFIGURATIONS = {
    "MKL AVX2 branch": {"portable": True, "env": {"MKL_CBWR": "AVX2", "NUMBA_CPU_FEATURES": None}},
    "portable": {"portable": True, "env": {}},
    "native": {"portable": False, "env": {}},
}


def measure(repeat: int, smoke: bool = False) -> dict[str, float]:
    """Least seconds of each operation in this (already pinned) process (tiny operands with ``smoke``)."""
    import numpy as np
    import torch

    from timing import fastest
    from neurolatent.models.autoencoder import ConvAutoencoder, MLPAutoencoder
    from neurolatent.models.image_models import load_transformer
    from neurolatent.pipeline.numerics import configure_torch
    from neurolatent.science.rsa.kernels import permuted_dots, tile_block

    configure_torch(2)
    torch.manual_seed(0)
    side, study, n = (128, 64, 300) if smoke else (1024, 672, 1500)
    a, b = torch.randn(side, side), torch.randn(side, side)

    def steps(model, x, count=3):
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

        def work():
            for _ in range(count):
                optimizer.zero_grad()
                torch.nn.functional.mse_loss(model(x), x).backward()
                optimizer.step()
        return work

    vit, _ = load_transformer("resources/vit-tiny", untrained=True, seed=0)
    images = torch.rand(16, 3, 64, 64)

    def embed():
        with torch.inference_mode():
            vit(pixel_values=images)

    rng = np.random.default_rng(0)
    square = rng.standard_normal((n, n)).astype(np.float32)
    fixed = rng.standard_normal((1, n * (n - 1) // 2)).astype(np.float32)
    perms = np.stack([rng.permutation(n) for _ in range(200)]).astype(np.uint32)
    permuted_dots(square[:50, :50].copy(), fixed[:, :1225].copy(), perms[:2, :50] % 50, 16)  # compile

    work = {
        f"sgemm {side}^3": lambda: a @ b,
        "MLP AE, 3 steps (batch 32, 2,000 voxels)": steps(MLPAutoencoder(2000, [256, 64]), torch.randn(32, 2000)),
        "image AE, 3 steps (batch 32, 64 px)": steps(ConvAutoencoder([3, 16, 32, 64, 64]), torch.rand(32, 3, 64, 64)),
        f"study AE, 1 step (batch 2, {study} px)": steps(ConvAutoencoder([3, 16, 32, 64, 128, 256]),
                                                        torch.rand(2, 3, study, study), 1),
        "tiny ViT embed (16 images)": embed,
        f"Mantel kernel (200 permutations, n = {n:,})": lambda: permuted_dots(
            square, fixed, perms, tile_block(n)),
    }
    return {name: fastest(call, repeat) for name, call in work.items()}


def child(name: str, repeat: int, smoke: bool) -> None:
    from neurolatent.pipeline.numerics import pin_numerics

    configuration = CONFIGURATIONS[name]
    pin_numerics(2, portable=configuration["portable"])
    for key, value in configuration["env"].items():  # the baseline's pins, over today's
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    print(json.dumps(measure(repeat, smoke)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="processes per configuration, interleaved")
    parser.add_argument("--repeat", type=int, default=3, help="calls of each operation per process")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--smoke", action="store_true", help="one round, one call each, tiny operands")
    args = parser.parse_args()
    if args.smoke:
        args.rounds, args.repeat = 1, 1
    if args.child:
        child(args.child, args.repeat, args.smoke)
        return
    best: dict[str, dict[str, float]] = {}
    for _ in range(args.rounds):
        for name in CONFIGURATIONS:
            out = subprocess.run([sys.executable, __file__, "--child", name, "--repeat", str(args.repeat),
                                  *(["--smoke"] if args.smoke else [])],
                                 check=True, capture_output=True, text=True).stdout
            for operation, seconds in json.loads(out.splitlines()[-1]).items():
                best.setdefault(operation, {})[name] = min(best.get(operation, {}).get(name, float("inf")), seconds)
    baseline = next(iter(CONFIGURATIONS))
    print(f"{'operation':46s}" + "".join(f"{name:>26s}" for name in CONFIGURATIONS))
    for operation, times in best.items():
        cells = "".join(f"{times[name] * 1e3:12.1f} ms ({times[name] / times[baseline]:5.2f}x)     "
                        for name in CONFIGURATIONS)
        print(f"{operation:46s}{cells}")


if __name__ == "__main__":
    main()
