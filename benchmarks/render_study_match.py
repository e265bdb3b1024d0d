"""How far each engine's picture is from the study's, on the 108 seeded volumes of issue #41.

The study's picture is nilearn 0.10.4's (tests/data/render/drawn/, drawn in the side environment of
tests/data/render/make_study_env.sh from the volumes of study_volumes.py). Against it, per volume
kind, the least and median pixel r over the 672 x 672 picture of:

- ``fast, study``: ``render_study_picture`` (the fast engine in the study's style);
- ``nilearn 0.14.1``: ``render_volumes(engine="nilearn")``, this environment's nilearn drawing
  today's layout (what ``preprocess.render.engine: nilearn`` gives; it cannot draw 0.10.4's).

With ``--worst N`` it also writes the N volumes where the fast engine is furthest from nilearn
0.10.4, each as ours | nilearn's, to ``--out`` (PNG).

    python benchmarks/render_study_match.py [--worst 3] [--out /tmp/render_worst] [--smoke]

``--smoke``: the first volume of each kind only (seconds, the same code path).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from neurolatent.science.render import render_study_picture, render_volumes

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "data" / "render"


def _study_volumes():
    spec = importlib.util.spec_from_file_location("study_volumes", FIXTURES / "study_volumes.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["study_volumes"] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worst", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("/tmp/render_worst"))
    parser.add_argument("--smoke", action="store_true", help="the first volume of each kind only")
    args = parser.parse_args()
    volumes = _study_volumes()
    fast, today, worst = defaultdict(list), defaultdict(list), []
    for name, entry in volumes.index().items():
        drawn, kind, _, volume, affine = volumes.volume(int(name.split("_")[0]))
        assert drawn == name, "study_volumes.py no longer draws the fixtures' volumes"
        if args.smoke and fast[kind]:
            continue
        theirs = volumes.study_picture(name)
        ours = render_study_picture(volume, affine)
        whole, views = volumes.compare(ours, name, entry)
        fast[kind].append(whole)
        worst.append((min(whole, min(views)), name, ours, theirs, whole, views))
        current = render_volumes(volume[None], affine, "nilearn", volumes.SIZE, 100.0)[0].transpose(1, 2, 0)
        today[kind].append(volumes.pixel_r(current, theirs))
    print("| volumes | n | fast, study style: min r | median r | nilearn 0.14.1 engine: min r | median r |")
    print("|---|---|---|---|---|---|")
    for kind in volumes.KINDS:
        print(f"| {kind} | {len(fast[kind])} | {min(fast[kind]):.4f} | {np.median(fast[kind]):.4f} | "
              f"{min(today[kind]):.3f} | {np.median(today[kind]):.3f} |")
    every_fast, every_today = sum(fast.values(), []), sum(today.values(), [])
    print(f"| all | {len(every_fast)} | {min(every_fast):.4f} | {np.median(every_fast):.4f} | "
          f"{min(every_today):.3f} | {np.median(every_today):.3f} |")
    if args.worst:
        args.out.mkdir(parents=True, exist_ok=True)
        for score, name, ours, theirs, whole, views in sorted(worst, key=lambda row: row[0])[: args.worst]:
            gap = np.zeros((ours.shape[0], 8, 3), np.uint8)
            Image.fromarray(np.concatenate([ours, gap, theirs], axis=1)).save(args.out / f"{name}.png")
            print(f"{name}: r {whole:.4f}, views {np.round(views, 4).tolist()} -> {args.out / name}.png")


if __name__ == "__main__":
    main()
