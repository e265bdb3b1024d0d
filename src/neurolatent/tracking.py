"""MLflow, in one place: the only module that imports mlflow.

One run per stage (experiment ``neurolatent``), params named as in ``params.yaml`` (exactly the keys
the stage reads), metrics named as in the stage's metrics JSON (``<stage>.<name>``), per-epoch
curves at steps 1..N under their own names, figures and tables as artifacts, and tags that tie the
run to git and DVC. The store is ``mlflow.db`` in the project root unless ``MLFLOW_TRACKING_URI``
says otherwise: the root is the working directory (DVC runs stages there), or, for a queued or
``--temp`` experiment that DVC runs in a copy under ``.dvc/tmp/exps/``, the project that holds the
copy, so that every experiment's runs reach the user's store (:func:`project_root`). A stage that
dies ends its run as FAILED, or KILLED when it was interrupted (SIGINT, SIGTERM).

Every function but :func:`stage_run` does nothing outside an active run, so library code can call
them unconditionally (tests and notebooks run without MLflow).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from neurolatent.errors import NeurolatentError

EXPERIMENT = "neurolatent"
#: the tag of every run of a sweep (``neurolatent sweep``), and of its parent run
SWEEP_TAG = "neurolatent.sweep"


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


def _active() -> bool:
    import mlflow

    return mlflow.active_run() is not None


@contextlib.contextmanager
def stage_run(stage: str, params: dict[str, Any]) -> Iterator[Any]:
    """Open the MLflow run of one stage and log its params.

    Parameters
    ----------
    stage : str
        Stage name, also the run name.
    params : dict
        The params the stage reads, by dotted name (``rsa.compare``) or by section (a pydantic
        model or dict, flattened to dotted names).
    """
    import mlflow  # slow to import: only stages pay for it

    # MLflow sets its logger to INFO when imported: its store-creation lines would reach the user's
    # stderr beside the stage's own (one line on failure); keep them unless debugging
    logging.getLogger("mlflow").setLevel(logging.DEBUG if logging.getLogger().level <= logging.DEBUG else logging.WARNING)
    uri = tracking_uri(project_root(Path.cwd()))
    commit = git_commit()
    exp_name = os.environ.get("DVC_EXP_NAME")
    tags = {"neurolatent.stage": stage, "neurolatent.pipeline": pipeline_id(commit, exp_name)}
    if commit:
        tags["mlflow.source.git.commit"] = commit
    if exp_name:
        tags["dvc.exp_name"] = exp_name
    if os.environ.get("NEUROLATENT_SWEEP"):
        tags[SWEEP_TAG] = os.environ["NEUROLATENT_SWEEP"]
    # under `mlflow run` (MLproject) the launcher's run is the parent of every stage's run, rather
    # than one run that each stage of `dvc repro` would write its params into
    parent = os.environ.pop("MLFLOW_RUN_ID", None)
    if parent:
        tags["mlflow.parentRunId"] = parent
    flat: dict[str, Any] = {}
    for name, value in params.items():
        flat.update(flatten(value, name))
    with store_errors(), _first_use(uri):
        if not os.environ.get("MLFLOW_TRACKING_URI"):
            mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(EXPERIMENT)
        run = mlflow.start_run(run_name=stage, tags=tags)
        mlflow.log_params({key: ("null" if value is None else value) for key, value in flat.items()})
    status = "FAILED"
    try:
        yield run
        status = "FINISHED"
    except KeyboardInterrupt:  # SIGINT, and SIGTERM as the CLI maps it
        status = "KILLED"
        raise
    finally:
        if status == "FINISHED":
            with store_errors():
                mlflow.end_run(status)
        else:  # the stage's own error is the one to report
            with contextlib.suppress(Exception):
                mlflow.end_run(status)


@contextlib.contextmanager
def _first_use(uri: str) -> Iterator[None]:
    """Hold an exclusive lock on a SQLite store's file while MLflow opens it: a new store's tables
    are created (and an old one's migrated) on first use, and two stages doing that at once (two
    queued experiments on a fresh project) break it (seen: `table _alembic_tmp_tags already exists`)."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    path = Path(uri.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as handle:  # SQLite takes an empty file as an empty database
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def store_errors() -> Iterator[None]:
    """MLflow's failures (a full disk, a locked or foreign store, a server away) as one line."""
    try:
        yield
    except Exception as exc:
        import mlflow

        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NeurolatentError(f"MLflow store {mlflow.get_tracking_uri()}: {first}") from None


def _number(value: Any) -> float | None:
    """A metric value MLflow can take: a finite int or float (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def log_metrics(metrics: dict[str, Any], step: int | None = None) -> None:
    """Log the numeric, finite entries of ``metrics`` under their own names."""
    if not _active():
        return
    import mlflow

    numbers = {key: _number(value) for key, value in metrics.items()}
    with store_errors():
        mlflow.log_metrics({key: value for key, value in numbers.items() if value is not None}, step=step)


def epoch_logger(stage: str) -> Callable[[int, float, float], None]:
    """A training callback logging ``<stage>.train_loss`` and ``<stage>.val_loss`` at step epoch + 1."""
    def log_epoch(epoch: int, train_loss: float, val_loss: float) -> None:
        log_metrics({f"{stage}.train_loss": train_loss, f"{stage}.val_loss": val_loss}, step=epoch + 1)

    return log_epoch


def log_artifacts(paths: list[Path], folder: str | None = None) -> None:
    """Log files (figures, tables) as artifacts of the active run, under ``folder``."""
    if not _active():
        return
    import mlflow

    for path in paths:
        mlflow.log_artifact(str(path), artifact_path=folder)


def log_figure(draw: Callable[[Path], None], name: str, folder: str | None = None) -> None:
    """Draw a figure into a temporary file with ``draw(path)`` and log it as ``folder/name``."""
    if not _active():
        return
    import tempfile

    with tempfile.TemporaryDirectory() as where:
        path = Path(where) / name
        draw(path)
        log_artifacts([path], folder)


def project_root(cwd: Path) -> Path:
    """The project a stage runs for: ``cwd``, unless ``cwd`` is DVC's copy of the project for a
    queued or ``--temp`` experiment (``<project>/.dvc/tmp/exps/<tmp>/``): then ``<project>``."""
    cwd = Path(cwd).resolve()
    for folder in (cwd, *cwd.parents):
        if folder.name == "exps" and folder.parent.name == "tmp" and folder.parent.parent.name == ".dvc":
            return folder.parent.parent.parent
    return cwd


def tracking_uri(root: Path) -> str:
    """The store the project's runs go to, as an absolute URI: ``MLFLOW_TRACKING_URI`` when set,
    else ``mlflow.db`` in the project root ``root``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(root).resolve() / 'mlflow.db'}"


def sweep_parent_run(sweep: str, params: dict[str, str], uri: str) -> str:
    """Create the parent run of a sweep (run name ``sweep <name>``, tagged with it) and return its id;
    each stage run of the sweep names it as parent (``MLFLOW_RUN_ID``, see :func:`stage_run`)."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(EXPERIMENT)
    tags = {SWEEP_TAG: sweep, "neurolatent.role": "sweep"}
    with mlflow.start_run(run_name=f"sweep {sweep}", tags=tags) as run:
        mlflow.log_params(params)
        return run.info.run_id


def log_sweep_report(sweep: str, folder: Path, uri: str) -> str | None:
    """Log the files of ``folder`` as artifacts of the sweep's parent run; its id, or None if the
    store has no such run (a report made from experiments run elsewhere)."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=[EXPERIMENT], output_format="list",
                              filter_string=f"tags.`{SWEEP_TAG}` = '{sweep}' and tags.`neurolatent.role` = 'sweep'")
    if not runs:
        return None
    with mlflow.start_run(run_id=runs[0].info.run_id):
        mlflow.log_artifacts(str(folder), "report")
    return runs[0].info.run_id
