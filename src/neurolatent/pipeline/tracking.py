"""MLflow, in one place: the only module that imports mlflow.

Runs (experiment ``neurolatent``) follow the pipeline: one parent run per pipeline execution (a
``dvc repro``, named ``repro <commit>``, or a ``dvc exp run``, named after the experiment; a
sweep's experiments nest under the sweep's run), with one nested run per stage named after it.
A stage run holds params named as in ``params.yaml`` (exactly the keys the stage reads), metrics
named as in the stage's metrics JSON (``<stage>.<name>``), per-epoch curves at steps 1..N under
their own names, figures, tables (``log_table``) and models as artifacts, the dataset as an MLflow
input, and lineage tags: ``dvc.in.<path>`` and ``dvc.out.<path>`` hold the DVC hashes (as in
``dvc.lock``) of what it read and wrote, so the run that made an input is one search away even
when DVC restored it from its cache. The headline numbers go on the parent run.

The store is ``mlflow.db`` in the project root unless ``MLFLOW_TRACKING_URI``
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
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from neurolatent.errors import NeurolatentError

EXPERIMENT = "neurolatent"
#: the tag of every run of a sweep (``neurolatent sweep``), and of its parent run
SWEEP_TAG = "neurolatent.pipeline.experiments.sweep"


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


def pipeline_key(commit: str | None, exp_name: str | None, params_file: Path = Path("params.yaml")) -> str:
    """Groups the stage runs of one pipeline execution: same commit, experiment, params and, under
    DVC, the same dvc process (its pid and start time), so two ``dvc repro`` of one commit are two
    executions while a stage run by hand joins the commit's and params' group."""
    params = params_file.read_bytes() if params_file.is_file() else b""
    launcher = b""
    if "DVC_STAGE" in os.environ:
        from neurolatent.pipeline.process import launcher_pid, process_stat

        with contextlib.suppress(OSError, ValueError):
            pid = launcher_pid()
            launcher = f"{pid}@{process_stat(pid)[3]}".encode()
    parts = [(commit or "").encode(), (exp_name or "").encode(), params, launcher]
    return hashlib.sha1(b"\0".join(parts)).hexdigest()[:12]


def _active() -> bool:
    import mlflow

    return mlflow.active_run() is not None


# ----------------------------------------------------------------------------- lineage: DVC hashes


def dvc_hash(path: Path) -> str | None:
    """The hash DVC records for ``path`` in dvc.lock (``md5`` of a file; ``<md5>.dir`` of a folder,
    the md5 of its listing), computed by DVC's own code (dvc-data); None when ``path`` is absent."""
    import tempfile

    from dvc_data.hashfile.build import build
    from dvc_data.hashfile.db import HashFileDB
    from dvc_objects.fs.local import LocalFileSystem

    if not Path(path).exists():
        return None
    fs = LocalFileSystem()
    with tempfile.TemporaryDirectory() as staging:
        _, _, obj = build(HashFileDB(fs, staging), str(path), fs, "md5", dry_run=True)
    return obj.hash_info.value


def locked_outputs(lock_file: Path = Path("dvc.lock")) -> dict[str, str]:
    """{output path: DVC hash} of every stage in ``lock_file`` (the hashes of the last run of each
    stage, which is what a stage's inputs are when DVC runs it); {} without one."""
    import yaml

    try:
        lock = yaml.safe_load(Path(lock_file).read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
    return {out["path"]: out["md5"] for stage in lock.get("stages", {}).values()
            for out in stage.get("outs", []) if "md5" in out}


def lineage_tags(direction: str, paths: list[Path], locked: dict[str, str] | None = None) -> dict[str, str]:
    """``{"dvc.<direction>.<path>": hash}`` for each path: its dvc.lock hash from ``locked`` when
    recorded there, else computed (:func:`dvc_hash`). A stage run is tagged ``dvc.in.*`` with its
    inputs and ``dvc.out.*`` with its outputs, so the runs that made a run's inputs are found by
    ``tags.`dvc.out.<path>` = '<hash>'`` even when DVC took the outputs from its cache."""
    tags = {}
    for path in paths:
        value = (locked or {}).get(str(path)) or dvc_hash(path)
        if value:
            tags[f"dvc.{direction}.{path}"] = value
    return tags


def _dataset(locked: dict[str, str], lock_file: Path = Path("dvc.lock")):
    """BOLD5000 as an MLflow dataset (source, subjects, DVC hash), from the dataset stage in dvc.lock;
    None before that stage has run."""
    import warnings

    import yaml
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    try:
        stage = (yaml.safe_load(Path(lock_file).read_text()) or {}).get("stages", {}).get("dataset", {})
    except (OSError, yaml.YAMLError):
        return None
    data = stage.get("params", {}).get("params.yaml", {}).get("data")
    raw = next((out["path"] for out in stage.get("outs", []) if out["path"].endswith("bold5000")), None)
    if not data or raw not in locked:
        return None
    real = data.get("source") == "bids"
    with warnings.catch_warnings():  # MLflow warns that a local path is several kinds of source
        warnings.simplefilter("ignore")
        source = resolve_dataset_source(str(Path(data.get("bids_root") or raw).resolve()) if real
                                        else str(Path(raw).resolve()))
    name = "BOLD5000" if real else f"BOLD5000 synthetic (seed {data['synthetic']['seed']}, snr {data['synthetic']['snr']})"
    dataset = MetaDataset(source, name=name, digest=locked[raw][:32])
    return dataset, {"subjects": ",".join(data.get("subjects") or []), "forms": ",".join(data.get("forms") or []),
                     "dvc.md5": locked[raw]}


# ----------------------------------------------------------------------------- runs


def pipeline_params(params_file: Path = Path("params.yaml")) -> tuple[dict[str, Any], list[str]]:
    """Every param of ``params_file`` by dotted name, and the names whose value differs from the
    same file at git's HEAD (what a ``dvc exp run -S`` changed; all of them outside git)."""
    import yaml

    def read(text: str | None) -> dict[str, Any]:
        try:
            return flatten(yaml.safe_load(text) or {}) if text else {}
        except yaml.YAMLError:
            return {}

    own = read(params_file.read_text()) if params_file.is_file() else {}
    try:
        head = subprocess.run(["git", "show", f"HEAD:./{params_file.name}"], cwd=params_file.parent, capture_output=True,
                              text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        head = None
    base = read(head)
    return own, sorted(key for key, value in own.items() if key not in base or base[key] != value)


def _pipeline_run(client: Any, experiment_id: str, key: str, tags: dict[str, str], outer: str | None) -> str:
    """The id of the parent run of this pipeline execution (tag ``neurolatent.pipeline = key``),
    created on the first stage: named after the DVC experiment, ``repro <commit>`` under a plain
    ``dvc repro``, or ``by hand <commit>`` for stages run outside DVC. It holds every param of
    params.yaml (so the runs list compares experiments) and, in the tag ``neurolatent.changed``,
    the params that differ from git's HEAD."""
    from mlflow.entities import Param

    runs = client.search_runs([experiment_id], max_results=1,
                              filter_string=f"tags.`neurolatent.pipeline` = '{key}' and tags.`neurolatent.role` = 'pipeline'")
    if runs:
        return runs[0].info.run_id
    commit = tags.get("mlflow.source.git.commit")
    at = commit[:7] if commit else "outside git"
    under_dvc = "DVC_STAGE" in os.environ
    name = tags.get("dvc.exp_name") or (f"repro {at}" if under_dvc else f"by hand {at}")
    import getpass

    values, changed = pipeline_params()
    parent_tags = {**tags, "neurolatent.role": "pipeline", "neurolatent.pipeline": key, "mlflow.runName": name,
                   "mlflow.user": getpass.getuser(), "neurolatent.changed": ", ".join(changed) or "none",
                   "mlflow.source.name": "dvc exp run" if tags.get("dvc.exp_name") else
                   "dvc repro" if under_dvc else "neurolatent <stage> (outside DVC)"}
    if outer:
        parent_tags["mlflow.parentRunId"] = outer
    run_id = client.create_run(experiment_id, tags=parent_tags, run_name=name).info.run_id
    params = [Param(key, "null" if value is None else str(value)[:6000]) for key, value in values.items()]
    for start in range(0, len(params), 100):  # MLflow's batch limit
        client.log_batch(run_id, params=params[start:start + 100])
    return run_id


@contextlib.contextmanager
def stage_run(stage: str, params: dict[str, Any], inputs: list[Path] = (), outputs: list[Path] = ()) -> Iterator[Any]:
    """Open the MLflow run of one stage, nested under its pipeline execution's run, and log its
    params, the dataset and its inputs' DVC hashes; on success tag it with its outputs' hashes.

    Parameters
    ----------
    stage : str
        Stage name, also the run name.
    params : dict
        The params the stage reads, by dotted name (``rsa.compare``) or by section (a pydantic
        model or dict, flattened to dotted names).
    inputs, outputs : list of Path
        The files and folders the stage reads and writes, relative to the project (as in dvc.yaml).

    The parent is the pipeline run (:func:`pipeline_key`) under a plain ``dvc repro`` or
    ``dvc exp run`` (itself a child of a sweep's run); under ``mlflow run`` the launcher's run.
    """
    import mlflow  # slow to import: only stages pay for it

    # MLflow sets its logger to INFO when imported: its store-creation lines would reach the user's
    # stderr beside the stage's own (one line on failure); keep them unless debugging
    logging.getLogger("mlflow").setLevel(logging.DEBUG if logging.getLogger().level <= logging.DEBUG else logging.WARNING)
    uri = tracking_uri(project_root(Path.cwd()))
    commit = git_commit()
    exp_name = os.environ.get("DVC_EXP_NAME")
    common = {}
    if commit:
        common["mlflow.source.git.commit"] = commit
    if exp_name:
        common["dvc.exp_name"] = exp_name
    if os.environ.get("NEUROLATENT_SWEEP"):
        common[SWEEP_TAG] = os.environ["NEUROLATENT_SWEEP"]
    key = pipeline_key(commit, exp_name)
    # MLFLOW_RUN_ID: the run of `mlflow run` (MLproject), itself the pipeline execution, or of a
    # sweep, under which each experiment's pipeline run nests; popped so no library resumes it
    launched = os.environ.pop("MLFLOW_RUN_ID", None)
    locked = locked_outputs()
    tags = {**common, "neurolatent.stage": stage, "neurolatent.pipeline": key,
            **lineage_tags("in", [Path(p) for p in inputs], locked)}
    flat: dict[str, Any] = {}
    for name, value in params.items():
        flat.update(flatten(value, name))
    with store_errors(), _first_use(uri):
        if not os.environ.get("MLFLOW_TRACKING_URI"):
            mlflow.set_tracking_uri(uri)
        experiment = mlflow.set_experiment(EXPERIMENT)
        client = mlflow.MlflowClient()
        if launched and not os.environ.get("NEUROLATENT_SWEEP"):
            parent, own_parent = launched, False
        else:
            parent, own_parent = _pipeline_run(client, experiment.experiment_id, key, common, launched), True
        tags["mlflow.parentRunId"] = parent
        run = mlflow.start_run(run_name=stage, tags=tags)
        mlflow.log_params({key: ("null" if value is None else value) for key, value in flat.items()})
        dataset = _dataset(locked)
        if dataset is not None:
            mlflow.log_input(dataset[0], context="raw", tags=dataset[1])
    status = "FAILED"
    try:
        yield run
        with store_errors():
            mlflow.set_tags(lineage_tags("out", [Path(p) for p in outputs]))
        status = "FINISHED"
    except KeyboardInterrupt:  # SIGINT, and SIGTERM as the CLI maps it
        status = "KILLED"
        raise
    finally:
        if status == "FINISHED":
            with store_errors():
                mlflow.end_run(status)
                if own_parent:  # the pipeline run ends (again) with each stage: its time spans them
                    client.set_terminated(parent, status)
        else:  # the stage's own error is the one to report
            with contextlib.suppress(Exception):
                mlflow.end_run(status)
                if own_parent:
                    client.set_terminated(parent, status)


def log_pipeline_metrics(metrics: dict[str, Any]) -> None:
    """Log ``metrics`` (the headline) on the active stage run's parent, the pipeline run."""
    if not _active():
        return
    import mlflow

    parent = mlflow.active_run().data.tags.get("mlflow.parentRunId")
    numbers = {key: _number(value) for key, value in metrics.items()}
    if parent:
        with store_errors():
            mlflow.MlflowClient().log_batch(parent, metrics=[
                mlflow.entities.Metric(key, value, int(time.time() * 1000), 0)
                for key, value in numbers.items() if value is not None])


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
        uri = mlflow.get_tracking_uri()
        if uri.startswith(("http://", "https://")):
            raise NeurolatentError(server_failure(uri, first)) from None
        raise NeurolatentError(f"MLflow store {uri}: {first}") from None


def server_failure(uri: str, error: str) -> str:
    """The one line for a tracking server's failure ``error`` (MLflow's message, after its own
    retries): the server named (credentials in the URI left out), and what the user can do."""
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    where = f"MLflow tracking server {parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"
    user = os.environ.get("MLFLOW_TRACKING_USERNAME") or parts.username
    if "error code 401" in error:
        return (f"{where} refused the credentials of {user!r} (401): set MLFLOW_TRACKING_USERNAME and "
                "MLFLOW_TRACKING_PASSWORD (make team-server writes them to .team/env)") if user else (
                f"{where} asks for a login (401): set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD")
    if "error code 403" in error:
        return f"{where} refused {user!r} (403): an admin grants EDIT on experiment {EXPERIMENT!r}"
    for cause, reason in (("Connection refused", "connection refused"), ("timed out", "timed out"),
                          ("Name or service not known", "unknown host"), ("Max retries exceeded", "no answer"),
                          ("Connection aborted", "connection lost"), ("RemoteDisconnected", "connection lost")):
        if cause in error:
            return f"{where} did not answer ({reason}, after MLflow's retries): is it running?"
    return f"{where}: {error}"


def _number(value: Any) -> float | None:
    """A metric value MLflow can take: a finite int or float (not a bool), else None; rounded to 6
    significant digits, the precision the UI shows (a permutation p of 1/10001 reads 9.999e-05,
    not 0.00009999000099990002; the metrics JSON keeps every digit)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(f"{value:.6g}") if math.isfinite(value) else None


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

    with store_errors():
        for path in paths:
            mlflow.log_artifact(str(path), artifact_path=folder)


def log_table(table: Any, name: str) -> None:
    """Log a DataFrame as an MLflow table (``name``, a ``.json`` artifact path), which the UI's
    artifact view shows as a table and ``mlflow.load_table`` reads back."""
    if not _active():
        return
    import mlflow

    with store_errors():
        mlflow.log_table(table, artifact_file=name)


def log_model(model: Any, name: str, example: Any) -> None:
    """Log a trained torch module as an MLflow model ``name``: ``mlflow.pytorch`` in its ``pt2``
    format (the graph exported with ``torch.export`` on ``example``, a batch of at least 2 inputs, so the batch size is free; it loads with
    ``mlflow.pytorch.load_model`` without this package's code), listed in the UI's Models with the
    input and output signature; the safetensors file stays the DVC output the pipeline reads."""
    if not _active():
        return
    import mlflow.pytorch
    import torch

    with store_errors():
        # the requirement given, not inferred: inference imports the model in a subprocess (slow)
        mlflow.pytorch.log_model(model, name=name, input_example=example.numpy(), serialization_format="pt2",
                                 pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"])


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
