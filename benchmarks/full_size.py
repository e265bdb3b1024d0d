"""Benchmark: the corrected pipeline on a full-size synthetic BOLD5000, stage by stage.

Full size is all four subjects, every session and run (BOLD5000's schedule: 5,254 images), on the
2 mm grids, with the default models and statistics (10,000 permutations, 1,000 bootstrap resamples).
``--quick`` is the cheaper variant: one subject (CSI1) on 4 mm grids, which finishes in minutes.

The project is cloned into ``--workdir`` (its committed state), params.yaml
is set to the size asked for, and each stage runs as ``neurolatent <stage>`` in a child process,
in dvc.yaml's order, timed by wall clock and measured by its own peak resident set (``wait4``'s
``ru_maxrss``). The table compares each with the targets (every stage after the synthetic twin
together <= 45 min, every stage <= 8 GB on 2 cores: issue #37) and gives each stage's cost per run
and per image, the check of linearity in runs or images (RDMs and the Mantel test are quadratic in
images: rsa is reported per image pair).

    python benchmarks/full_size.py [--quick] [--workdir /tmp/neurolatent-full] [--only rsa] [-S rsa.permutations=1000]
    python benchmarks/full_size.py --smoke    # the same code on one 8 mm T1w run, dataset and trials (tests)
    python benchmarks/full_size.py -S 'data.forms=[T1w]' --out benchmarks/results/full_size.json
    python benchmarks/full_size.py --readme benchmarks/results/full_size.json   # its table into README.md

``--readme FILE`` measures nothing: it writes the table of a run's ``--out`` JSON between the
README's full-size markers (the suite checks that the README's table is the committed JSON's).

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

#: issue #37's targets: every stage after the twin together (a real copy's dataset stage links
#: files in seconds), and every stage's peak resident set
TARGET_SECONDS = 45 * 60
TARGET_RSS_GB = 8.0
#: where --readme writes the table
README = ROOT / "README.md"
README_MARKERS = ("<!-- full-size table: benchmarks/full_size.py --readme -->", "<!-- end of the full-size table -->")


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
           "MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlflow.db'}", "PYTHONPATH": str(ROOT / "src")}
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
    parser.add_argument("--readme", type=Path, default=None, metavar="JSON",
                        help="measure nothing: write this --out JSON's table into README.md")
    args = parser.parse_args()
    if args.readme:
        write_readme(json.loads(args.readme.read_text()), README)
    elif args.smoke:
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
    size = scale(workdir)
    per = {"dataset": "runs", "fmri": "runs", "trials": "runs", "fmri_ae": "trials", "embed_fmri": "trials",
           "image_ae": "images", "embed_images": "images", "stitch": "images", "encode": "images"}
    for row in rows:
        if row["stage"] in per:
            unit = per[row["stage"]]
            row["per_unit"] = f"{row['seconds'] / size[unit] * 1000:.1f} ms/{unit[:-1]}"
        elif row["stage"] == "rsa":
            row["per_unit"] = f"{row['seconds'] / (size['images'] * (size['images'] - 1) / 2) * 1e6:.2f} us/pair"
        else:
            row["per_unit"] = ""
    # the code that ran: this checkout's (the stages import it), not the work folder's clone, which a
    # reused --workdir keeps at the commit it was cloned at
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    changed = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=ROOT, capture_output=True, text=True)
    result = {"size": "smoke (CSI1, one run, 8 mm)" if args.smoke else "quick (CSI1, 4 mm)" if args.quick else
              "full size (CSI1-CSI4, 2 mm)", "scale": size, "cores": os.cpu_count(),
              "commit": commit.stdout.strip() + (" with uncommitted changes to src" if changed.stdout.strip() else ""),
              "date": time.strftime("%Y-%m-%d"), "overrides": args.overrides, "stages": rows,
              "total_s": sum(row["seconds"] for row in rows),
              "after_twin_s": sum(row["seconds"] for row in rows if row["stage"] != "dataset"),
              "peak_rss_gb": max(row["peak_rss_gb"] for row in rows)}
    print("\n" + markdown(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


def markdown(result: dict) -> str:
    """The table of a run (:func:`measure`'s result): each stage's wall and CPU seconds, peak RSS and
    cost per unit, then the totals against the targets."""
    size = result["scale"]
    notes = any(row.get("note") for row in result["stages"])  # what a row's number shared the machine with
    table = pd.DataFrame([{"stage": row["stage"], "seconds": f"{row['seconds']:,.1f}",
                           "CPU seconds": f"{row['cpu_seconds']:,.1f}", "peak RSS": f"{row['peak_rss_gb']:.2f} GB",
                           "per unit": row["per_unit"]} | ({"note": row.get("note", "")} if notes else {})
                          for row in result["stages"]])
    after, peak = result["after_twin_s"], result["peak_rss_gb"]
    settings = ", ".join(f"`{item}`" for item in result["overrides"]) or "none"
    return (f"{result['size']}: {size['runs']} runs, {size['trials']:,} trials, {size['images']:,} images; "
            f"{result['cores']} cores; commit {result['commit']}, {result['date']}; params set: {settings}\n\n"
            + table.to_markdown(index=False, disable_numparse=True,
                                colalign=("left", "right", "right", "right", "left", "left")[:len(table.columns)])
            + "\n\n"
            f"total {result['total_s'] / 60:.1f} min; every stage after the twin {after / 60:.1f} min "
            f"(target <= {TARGET_SECONDS / 60:.0f} min: {'met' if after <= TARGET_SECONDS else 'missed'}), "
            f"peak RSS {peak:.2f} GB (target <= {TARGET_RSS_GB:.0f} GB: {'met' if peak <= TARGET_RSS_GB else 'missed'})")


def write_readme(result: dict, readme: Path) -> None:
    """Put :func:`markdown` of ``result`` between the README's markers (:data:`README_MARKERS`)."""
    text = readme.read_text()
    begin, end = README_MARKERS
    if begin not in text or end not in text:
        sys.exit(f"{readme}: the full-size markers are missing ({begin} ... {end})")
    head, rest = text.split(begin, 1)
    readme.write_text(f"{head}{begin}\n{markdown(result)}\n{end}{rest.split(end, 1)[1]}")


if __name__ == "__main__":
    main()
