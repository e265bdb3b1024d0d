"""Did this run reproduce the committed outputs? ``dvc.lock`` after a run against ``dvc.lock`` as
committed, stage by stage in pipeline order.

A stage whose inputs (code, params, upstream outputs: everything its lock entry hashes) equal the
committed ones but whose outputs do not is a stage this machine computed differently. The first
such stage is where the bits parted (every stage after it reads other inputs); :func:`verify` names
it, its outputs that differ, and the largest relative difference among its metrics (or, for a stage
without metrics, among those of the stages after it), in one line. A stage whose inputs changed (the
user changed a param or the code) is expected to differ and is not compared.

The promise is bitwise (docs/reproducibility.md), so any difference fails; its size tells
last-bit noise (relative 1e-7 in a loss) from a changed result.
"""

from __future__ import annotations

import json
import math
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from neurolatent.errors import NeurolatentError


@dataclass(frozen=True)
class Outcome:
    """What :func:`compare_locks` found."""

    #: the first stage with the committed inputs and other outputs (None: every such stage reproduced)
    stage: str | None
    #: that stage's outputs that differ, by path
    outputs: tuple[str, ...]
    #: (relative difference, metric name, the stage whose metrics file holds it), the largest found
    largest: tuple[float, str, str] | None
    #: stages whose inputs differ from the committed ones (changed params or code): not compared
    changed_inputs: tuple[str, ...]


def _hashes(entries: list[dict] | None) -> dict[str, str | None]:
    return {entry["path"]: entry.get("md5") or entry.get("hash") for entry in entries or []}


def _numbers(tree: object, prefix: str = "") -> dict[str, float]:
    """Every number in a metrics JSON, by its (dotted) key."""
    if isinstance(tree, dict):
        found: dict[str, float] = {}
        for key, value in tree.items():
            found |= _numbers(value, f"{prefix}{key}.")
        return found
    if isinstance(tree, (int, float)) and not isinstance(tree, bool):
        return {prefix.rstrip("."): float(tree)}
    return {}


def relative_difference(committed: float, now: float) -> float:
    """|a - b| / max(|a|, |b|); 0 when equal (NaN equals NaN), inf when only one is NaN."""
    if committed == now or (math.isnan(committed) and math.isnan(now)):
        return 0.0
    if math.isnan(committed) or math.isnan(now):
        return math.inf
    return abs(committed - now) / max(abs(committed), abs(now))


def largest_metric_difference(committed: dict, now: dict) -> tuple[float, str] | None:
    """(largest relative difference, its metric) between two metrics JSONs; None when equal."""
    old, new = _numbers(committed), _numbers(now)
    differences = [(relative_difference(old[key], new[key]) if key in new else math.inf, key) for key in old]
    differences += [(math.inf, key) for key in new if key not in old]
    worst = max(differences, default=(0.0, ""))
    return worst if worst[0] > 0 else None


def compare_locks(committed: dict, now: dict, stage_order: list[str], metrics_of: dict[str, list[str]],
                  read_committed, read_now) -> Outcome:
    """Compare two parsed ``dvc.lock`` files.

    ``metrics_of``: each stage's metrics JSON paths; ``read_committed(path)`` and ``read_now(path)``
    return a metrics file's parsed JSON (None when absent).
    """
    first: str | None = None
    outputs: tuple[str, ...] = ()
    changed: list[str] = []
    for name in stage_order:
        old, new = committed.get("stages", {}).get(name), now.get("stages", {}).get(name)
        if old is None or new is None:
            continue
        same_inputs = (_hashes(old.get("deps")) == _hashes(new.get("deps")) and old.get("params") == new.get("params")
                       and old.get("cmd") == new.get("cmd"))
        if not same_inputs:
            changed.append(name)
            continue
        old_outs, new_outs = _hashes(old.get("outs")), _hashes(new.get("outs"))
        differ = tuple(path for path in old_outs if old_outs[path] != new_outs.get(path))
        if differ and first is None:
            first, outputs = name, differ
    largest = None
    if first is not None:
        # its own metrics, else those of the stages after it (a stage without metrics)
        for name in stage_order[stage_order.index(first):]:
            found = []
            for path in metrics_of.get(name, ()):
                worst = largest_metric_difference(read_committed(path) or {}, read_now(path) or {})
                if worst is not None:
                    found.append((*worst, name))
            if found:
                largest = max(found)
                break
    return Outcome(first, outputs, largest, tuple(changed))


def _git_show(root: Path, revision: str, path: str) -> str | None:
    result = subprocess.run(["git", "show", f"{revision}:{path}"], cwd=root, capture_output=True, text=True)
    return result.stdout if result.returncode == 0 else None


def describe(outcome: Outcome, revision: str) -> str:
    """The one line :func:`verify` prints."""
    if outcome.stage is None:
        changed = (f"; not compared, as their inputs changed: {', '.join(outcome.changed_inputs)}"
                   if outcome.changed_inputs else "")
        return f"reproduced: every output of a stage with the committed inputs equals dvc.lock at {revision}{changed}"
    if outcome.largest is None:
        size = "no metric differs"
    else:
        difference, key, holder = outcome.largest
        where = "" if holder == outcome.stage else f" downstream, in {holder}'s metrics"
        size = f"largest relative metric difference {difference:.2g}{where} ({key})"
    return (f"not reproduced: stage {outcome.stage} is the first whose outputs differ from dvc.lock at {revision} "
            f"with the same code, params and inputs ({', '.join(outcome.outputs)}; {size}). This machine computed "
            "other bits than the one that made dvc.lock: docs/reproducibility.md promises the same bits on any x86-64 CPU with "
            "AVX2 under compute.portable: true, so please report it with the output of `lscpu`")


def verify(root: Path, revision: str = "HEAD") -> tuple[str, bool]:
    """(one line, reproduced?) for the project at ``root`` against ``dvc.lock`` at ``revision``."""
    from neurolatent.pipeline.registry import STAGES

    root = Path(root)
    inside = subprocess.run(["git", "rev-parse", "--verify", "--quiet", revision], cwd=root, capture_output=True)
    if inside.returncode != 0 and revision == "HEAD":
        return "not compared: not a git checkout with a commit, so there is no committed dvc.lock", True
    committed_text = _git_show(root, revision, "dvc.lock")
    if committed_text is None:
        raise NeurolatentError(f"dvc.lock: none committed at {revision} in {root} (not a git checkout?): "
                               "nothing to compare with")
    lock = root / "dvc.lock"
    if not lock.is_file():
        raise NeurolatentError(f"{lock}: missing (run `dvc repro` first)")
    metrics_of = {name: [f.path for f in stage.files if f.kind in ("detail", "metrics")]
                  for name, stage in STAGES.items()}

    def read_committed(path: str):
        text = _git_show(root, revision, path)
        return json.loads(text) if text else None

    def read_now(path: str):
        file = root / path
        return json.loads(file.read_text()) if file.is_file() else None

    outcome = compare_locks(yaml.safe_load(committed_text), yaml.safe_load(lock.read_text()), list(STAGES),
                            metrics_of, read_committed, read_now)
    return describe(outcome, revision), outcome.stage is None
