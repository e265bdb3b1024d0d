"""One MLflow run per stage: params named as in params.yaml, tags tying it to git and DVC.

The store is MLflow's default (``mlflow.db`` in the working directory, which DVC makes the
project root) unless ``MLFLOW_TRACKING_URI`` says otherwise.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

EXPERIMENT = "neurolatent"


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"data": {"synthetic": {"snr": 1}}}`` -> ``{"data.synthetic.snr": 1}`` (DVC's own naming)."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if not isinstance(value, dict):
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, item in value.items():
        flat.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def git_commit(cwd: Path | None = None) -> str | None:
    """HEAD's hash, or None outside a git work tree."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def pipeline_id(commit: str | None, exp_name: str | None, params_file: Path = Path("params.yaml")) -> str:
    """Groups the stage runs of one pipeline execution: same commit, experiment and params."""
    params = params_file.read_bytes() if params_file.is_file() else b""
    return hashlib.sha1(b"\0".join([(commit or "").encode(), (exp_name or "").encode(), params])).hexdigest()[:12]


@contextlib.contextmanager
def stage_run(stage: str, params: dict[str, BaseModel]) -> Iterator[Any]:
    """Open the MLflow run of one stage and log its params.

    Parameters
    ----------
    stage : str
        Stage name, also the run name.
    params : dict
        The params.yaml sections the stage reads, by section name.
    """
    import mlflow  # slow to import: only stages that track pay for it

    mlflow.set_experiment(EXPERIMENT)
    commit = git_commit()
    exp_name = os.environ.get("DVC_EXP_NAME")
    tags = {"neurolatent.stage": stage, "neurolatent.pipeline": pipeline_id(commit, exp_name)}
    if commit:
        tags["mlflow.source.git.commit"] = commit
    if exp_name:
        tags["dvc.exp_name"] = exp_name
    # under `mlflow run` (MLproject) the launcher's run is the parent of every stage's run, rather
    # than one run that each stage of `dvc repro` would write its params into
    parent = os.environ.pop("MLFLOW_RUN_ID", None)
    if parent:
        tags["mlflow.parentRunId"] = parent
    with mlflow.start_run(run_name=stage, tags=tags) as run:
        flat: dict[str, Any] = {}
        for section, model in params.items():
            flat.update(flatten(model, section))
        mlflow.log_params({key: ("null" if value is None else value) for key, value in flat.items()})
        yield run
