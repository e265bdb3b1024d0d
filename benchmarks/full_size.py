"""Benchmark: the corrected pipeline on a full-size synthetic BOLD5000, stage by stage.

Full size is all four subjects, every session and run (BOLD5000's schedule: 5,254 images), on the
2 mm grids, with the default models and statistics (10,000 permutations, 1,000 bootstrap resamples).
``--quick`` is the cheaper variant: one subject (CSI1) on 4 mm grids, which finishes in minutes.

The project is cloned into ``--workdir`` (its committed state), params.yaml
is set to the size asked for, and each stage runs as ``neurolatent <stage>`` in a child process,
in dvc.yaml's order, timed by wall clock and measured by its own peak resident set (``wait4``'s
``ru_maxrss``). The table compares each with the targets (whole pipeline <= 1 h and every stage
<= 8 GB on 2 cores) and gives each stage's cost per run and per image, the check of linearity in
runs or images (RDMs and the Mantel test are quadratic in images: rsa is reported per image pair).

    python benchmarks/full_size.py [--quick] [--workdir /tmp/neurolatent-full] [--only rsa] [-S rsa.permutations=1000]
    python benchmarks/full_size.py --smoke    # the same code on one 8 mm T1w run, dataset and trials (tests)

Needs disk: full size writes ~50 GB of synthetic runs (raw and T1w), --quick ~2 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from neurolatent.pipeline.registry import STAGES  # noqa: E402

TARGET_SECONDS = 3600
TARGET_RSS_GB = 8.0


def clone_project(workdir: Path) -> None:
    """This project's committed state in ``workdir``, as a user's ``git clone`` has it."""
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(workdir)], check=True)


def size_params(params: dict, quick: bool, overrides: list[str], smoke: bool = False) -> dict:
    """params.yaml at full size (or the quick variant, or the smoke run's one run), with ``key=value``
    overrides (YAML values)."""
    quick = quick or smoke
    params["data"].update(subjects=["CSI1"] if quick else ["CSI1", "CSI2", "CSI3", "CSI4"], sessions=None, runs=None)
    params["data"]["synthetic"]["voxel_size_mm"] = 8 if smoke else 4 if quick else 2
    # every session's runs hold BOLD5000's repeated images as the real schedule does: none to plant
    params["data"]["synthetic"]["repeats"] = 0
    if smoke:
        params["data"].update(sessions=[1], runs=[1], forms=["T1w"])
    if quick:  # a one-subject split: train on CSI1's images, validate on a part of them
        params["fmri_ae"].update(train_subjects=["CSI1"], test_subjects=[])
    params["stitch"]["test"] = "repeats"  # BOLD5000's repeated images, as on real data
    for item in overrides:
        key, _, value = item.partition("=")
        *parents, last = key.split(".")
        node = params
        for part in parents:
            node = node[part]
        node[last] = yaml.safe_load(value)
    return params


def run_stage(name: str, workdir: Path, log: Path) -> tuple[float, float, float, int]:
    """(wall seconds, CPU seconds, peak RSS in GB, exit code) of ``neurolatent <name>`` run in
    ``workdir``; the CPU seconds (user + system) say what the wall time means on a shared machine."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlflow.db'}"}
    start = time.perf_counter()
    with open(log, "ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "neurolatent", name], cwd=workdir, env=env,
                                   stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 2**20, os.waitstatus_to_exitcode(status)


def scale(workdir: Path) -> dict[str, int]:
    """Runs, trials and images of the data the pipeline ran on."""
    trials = pd.read_parquet(workdir / "data/interim/trials.parquet")
    return {"runs": int(trials.groupby(["subject", "session", "run"]).ngroups), "trials": len(trials),
            "images": int(trials["image_name"].nunique())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one subject on 4 mm grids")
    parser.add_argument("--workdir", type=Path, default=None, help="where the project copy runs (kept)")
    parser.add_argument("--only", nargs="+", choices=list(STAGES), help="these stages only (their inputs exist)")
    parser.add_argument("-S", "--set", dest="overrides", action="append", default=[], help="a params key=value")
    parser.add_argument("--out", type=Path, default=None, help="write the table as JSON here")
    parser.add_argument("--smoke", action="store_true",
                        help="one run (CSI1, session 1, run 1, T1w, 8 mm), dataset and trials, in a temporary folder")
    args = parser.parse_args()
    if args.smoke:
        args.only = args.only or ["dataset", "trials"]
        with tempfile.TemporaryDirectory() as folder:
            measure(args, args.workdir or Path(folder) / "project")
    else:
        measure(args, args.workdir or Path(f"/tmp/neurolatent-{'quick' if args.quick else 'full'}-size"))


def measure(args: argparse.Namespace, workdir: Path) -> None:
    """Run the stages asked for in ``workdir`` (cloned there first) and print the table."""
    if not (workdir / "params.yaml").is_file():
        clone_project(workdir)
    params = size_params(yaml.safe_load((ROOT / "params.yaml").read_text()), args.quick, args.overrides, args.smoke)
    (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    log = workdir / "full_size.log"
    rows = []
    for name in args.only or list(STAGES):
        seconds, cpu, rss, code = run_stage(name, workdir, log)
        rows.append({"stage": name, "seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1),
                     "peak_rss_gb": round(rss, 2)})
        print(f"{name:13s} {seconds:8.1f} s  {cpu:8.1f} s CPU  {rss:6.2f} GB", flush=True)
        if code:
            sys.exit(f"{name} failed (exit {code}): see {log}")
    table = pd.DataFrame(rows)
    size = scale(workdir)
    per = {"dataset": "runs", "fmri": "runs", "trials": "runs", "fmri_ae": "trials", "embed_fmri": "trials",
           "image_ae": "images", "embed_images": "images", "stitch": "images"}
    table["per_unit"] = [f"{row.seconds / size[per[row.stage]] * 1000:.1f} ms/{per[row.stage][:-1]}"
                         if row.stage in per else
                         f"{row.seconds / (size['images'] * (size['images'] - 1) / 2) * 1e6:.2f} us/pair"
                         if row.stage == "rsa" else "" for row in table.itertuples()]
    total, peak = table["seconds"].sum(), table["peak_rss_gb"].max()
    what = "smoke (CSI1, one run, 8 mm)" if args.smoke else "quick (CSI1, 4 mm)" if args.quick else \
        "full size (CSI1-CSI4, 2 mm)"
    print(f"\n{what}: "
          f"{size['runs']} runs, {size['trials']} trials, {size['images']} images; {os.cpu_count()} cores")
    print(table.to_markdown(index=False))
    print(f"\ntotal {total / 60:.1f} min (target <= {TARGET_SECONDS / 60:.0f} min: "
          f"{'met' if total <= TARGET_SECONDS else 'missed'}), peak RSS {peak:.2f} GB "
          f"(target <= {TARGET_RSS_GB:.0f} GB: {'met' if peak <= TARGET_RSS_GB else 'missed'})")
    if args.out:
        args.out.write_text(json.dumps({"scale": size, "stages": rows, "total_s": total, "peak_rss_gb": peak}, indent=2))


if __name__ == "__main__":
    main()
