"""Sweeps of named configurations as queued DVC experiments (``neurolatent sweep``).

A configuration is a YAML file of params.yaml keys (``configs/study.yaml``: ``preprocess.method:
rendered`` ...); several are applied in order, the last one winning. A sweep crosses
configurations with planted SNRs and seeds, queues one ``dvc exp run`` per point
(``<sweep>-<config>-snr<snr>-seed<seed>``), runs the queue, and tags every stage's MLflow run
with the sweep (``neurolatent.pipeline.experiments.sweep``) under one parent run that ``neurolatent report`` later
gives the report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from neurolatent.errors import NeurolatentError
from neurolatent.pipeline.tracking import flatten

#: every seed a run draws from: the synthetic data, both AEs, the embeddings, the tests
SEED_KEYS = ("data.synthetic.seed", "fmri_ae.train.seed", "image_ae.train.seed", "embed.seed", "rsa.seed",
             "stitch.seed")


def read_config(path: Path) -> dict[str, object]:
    """{dotted params key: value} from a configuration file; a one-line error names a bad file."""
    try:
        values = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise NeurolatentError(f"{path}: cannot read the configuration ({exc})") from None
    if not isinstance(values, dict) or not all(isinstance(key, str) for key in values):
        raise NeurolatentError(f"{path}: a configuration is a mapping of params.yaml keys to values")
    return values


def set_flags(values: dict[str, object]) -> list[str]:
    """``-S key=value`` arguments of ``dvc exp run``, values in YAML flow style (``[raw]``, ``null``)."""
    flags = []
    for key, value in values.items():
        text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
        flags += ["-S", f"{key}={text.removesuffix('...').strip()}"]
    return flags


@dataclass(frozen=True)
class Point:
    """One experiment of a sweep."""

    sweep: str
    config: str
    snr: float
    seed: int

    @property
    def name(self) -> str:
        """The DVC experiment's name: ``<sweep>-<config>-snr<s>-seed<k>``."""
        return f"{self.sweep}-{self.config}-snr{self.snr:g}-seed{self.seed}"


def points(sweep: str, configs: list[str], snrs: list[float], seeds: list[int]) -> list[Point]:
    """Every (configuration, SNR, seed) of a sweep, configurations outermost."""
    return [Point(sweep, config, snr, seed) for config in configs for snr in snrs for seed in seeds]


def exp_run_args(point: Point, config_files: list[Path], override_files: list[Path]) -> list[str]:
    """The ``dvc exp run --queue`` command of one point: the configuration's files, then the
    overrides (the sweep's scale), then its SNR and seed."""
    values: dict[str, object] = {}
    for path in (*config_files, *override_files):
        values.update(read_config(path))
    values["data.synthetic.snr"] = point.snr
    values.update({key: point.seed for key in SEED_KEYS})
    return ["dvc", "exp", "run", "--queue", "--force", "-n", point.name, *set_flags(values)]


def run_experiment(name: str, config_files: list[Path], extra: list[str]) -> int:
    """``dvc exp run -n name`` with every key of ``config_files`` and then ``extra`` (``key=value``),
    in the foreground; returns dvc's exit status."""
    values: dict[str, object] = {}
    for path in config_files:
        values.update(read_config(path))
    flags = set_flags(values) + [arg for pair in extra for arg in ("-S", pair)]
    return subprocess.run(["dvc", "exp", "run", "-n", name, *flags], env=_environment()).returncode


def _environment(**extra: str) -> dict[str, str]:
    """This process's environment with its own ``bin`` first on PATH: dvc, and the stage commands
    dvc runs (``neurolatent ...``), are the environment's, activated or not."""
    own_bin = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": os.pathsep.join([own_bin, os.environ.get("PATH", "")]), **extra}


def _run(cmd: list[str], env: dict[str, str] | None = None) -> str:
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, env=env or _environment())
    except OSError as exc:
        raise NeurolatentError(f"{cmd[0]}: cannot run ({exc.strerror})") from None
    if result.returncode != 0:
        last = (result.stderr.strip() or result.stdout.strip()).splitlines()[-1:] or ["(no output)"]
        raise NeurolatentError(f"{' '.join(cmd[:4])}: failed ({last[0]})")
    return result.stdout


def run_sweep(sweep: str, configs: dict[str, list[Path]], override_files: list[Path], snrs: list[float],
              seeds: list[int], jobs: int, timeout_s: float = 6 * 3600) -> list[Point]:
    """Queue every point, start the queue with ``jobs`` workers under one MLflow parent run, and
    wait for it. The project's MLflow store is given to the workers by absolute path (a queued
    experiment runs in a temporary copy of the project, where a relative store would be lost)."""
    from neurolatent.pipeline import tracking

    planned = points(sweep, list(configs), snrs, seeds)
    for point in planned:
        _run(exp_run_args(point, configs[point.config], override_files))
    env = _environment(NEUROLATENT_SWEEP=sweep, MLFLOW_TRACKING_URI=tracking.tracking_uri(Path.cwd()))
    env["MLFLOW_RUN_ID"] = tracking.sweep_parent_run(sweep, {"configs": ",".join(configs),
                                                             "snr": ",".join(map(str, snrs)),
                                                             "seeds": ",".join(map(str, seeds))},
                                                     env["MLFLOW_TRACKING_URI"])
    _run(["dvc", "queue", "start", "-j", str(jobs)], env)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = _run(["dvc", "queue", "status"])
        states = [line.split()[-1] for line in status.splitlines()[1:] if line.split()]
        if "Queued" not in states and "Running" not in states:
            break
        if "Queued" in states and states.count("Running") < jobs:
            # DVC's workers quit when they find the queue empty for 10 s, which they sometimes do
            # while it is not (seen: one of two quit after 6 of 30 experiments); `queue start`
            # starts only the missing ones
            _run(["dvc", "queue", "start", "-j", str(jobs)], env)
        time.sleep(10)
    failed = [line for line in status.splitlines() if "Failed" in line]
    if failed:
        raise NeurolatentError(f"{len(failed)} experiment(s) of sweep {sweep} failed: `dvc queue logs <name>` "
                               f"shows why (first: {failed[0].split()[0]})")
    return planned


def experiments(sweep: str) -> list[dict]:
    """The sweep's experiments from ``dvc exp show --json --all-commits`` (a sweep may span commits):
    name, rev, params (flat) and the stages' detailed metrics (read from the experiment's commit:
    ``metrics/<stage>.json``)."""
    shown = json.loads(_run(["dvc", "exp", "show", "--json", "--all-commits", "--no-fetch"]) or "[]")
    found = []
    for baseline in shown:
        for exp in (baseline.get("experiments") or []):
            name = exp.get("name") or ""
            rev = (exp.get("revs") or [{}])[0]
            if not name.startswith(f"{sweep}-") or not rev.get("data"):
                continue
            params = flatten(rev["data"].get("params", {}).get("params.yaml", {}).get("data", {}))
            metrics = {}
            for stage in ("fmri_ae", "image_ae", "rsa", "stitch", "summary"):
                metrics.update(_show_file(rev["rev"], f"metrics/{stage}.json"))
            found.append({"name": name, "rev": rev["rev"], "params": params, "metrics": metrics})
    return found


def _show_file(rev: str, path: str) -> dict:
    result = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True, env=_environment())
    return json.loads(result.stdout) if result.returncode == 0 else {}
