"""MLflow lineage on a real SQLite store: the pipeline's parent run with nested stage runs, DVC hashes
as tags (equal to DVC's own), the dataset as an input, models, tables, the headline on the parent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from neurolatent.pipeline import tracking


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A project folder (cwd) with a dvc.lock of an upstream stage and its own MLflow store."""
    import mlflow

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    for name in ("DVC_EXP_NAME", "DVC_STAGE", "MLFLOW_RUN_ID", "NEUROLATENT_SWEEP"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "params.yaml").write_text("rsa:\n  seed: 0\n")
    (tmp_path / "data" / "raw" / "bold5000").mkdir(parents=True)
    (tmp_path / "data" / "raw" / "bold5000" / "a.tsv").write_text("onset\n0\n")
    (tmp_path / "fmri.npy").write_bytes(b"upstream output")
    lock = {"schema": "2.0", "stages": {
        "dataset": {"cmd": "x", "params": {"params.yaml": {"data": {
            "source": "synthetic", "subjects": ["CSI1", "CSI2"], "forms": ["raw"], "bids_root": None,
            "synthetic": {"seed": 0, "snr": 1.0}}}},
            "outs": [{"path": "data/raw/bold5000", "hash": "md5", "md5": "d" * 32 + ".dir"}]},
        "embed_fmri": {"cmd": "y", "outs": [{"path": "fmri.npy", "hash": "md5", "md5": "a" * 32}]}}}
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))
    yield mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    mlflow.set_tracking_uri(None)


def test_stage_runs_nest_under_one_pipeline_run_with_lineage_tags_dataset_and_headline(store, tmp_path):
    (tmp_path / "out").mkdir()
    with tracking.stage_run("embed_fmri", {"rsa.seed": 0}, [Path("data/raw/bold5000")], [Path("out")]):
        (tmp_path / "out" / "x.npy").write_bytes(b"written by the stage")
        tracking.log_metrics({"embed_fmri.p": 1 / 10001, "embed_fmri.flag": True})
    with tracking.stage_run("rsa", {}, [Path("fmri.npy")], []):
        tracking.log_pipeline_metrics({"ae.r": 0.5})
    runs = {run.info.run_name: run for run in store.search_runs(["1"])}
    # stages run by hand (no DVC_STAGE in the environment): a parent named for what it is
    assert set(runs) == {"embed_fmri", "rsa", "by hand outside git"}
    parent = runs["by hand outside git"]
    assert parent.data.tags["mlflow.source.name"] == "neurolatent <stage> (outside DVC)"
    assert parent.data.params == {"rsa.seed": "0"}
    assert parent.data.tags["neurolatent.role"] == "pipeline" and parent.info.status == "FINISHED"
    assert {runs[s].data.tags["mlflow.parentRunId"] for s in ("embed_fmri", "rsa")} == {parent.info.run_id}
    assert parent.data.metrics == {"ae.r": 0.5}
    # inputs: the hash dvc.lock records for the producing stage's output
    assert runs["rsa"].data.tags["dvc.in.fmri.npy"] == "a" * 32
    # outputs: DVC's own hash of the folder, the one `dvc add`/dvc.lock would record
    assert runs["embed_fmri"].data.tags["dvc.out.out"] == tracking.dvc_hash(tmp_path / "out")
    assert runs["embed_fmri"].data.tags["dvc.out.out"].endswith(".dir")
    # MLflow shows p = 1/10001 to 6 significant digits, not 0.00009999000099990002; a bool is no metric
    assert runs["embed_fmri"].data.metrics == {"embed_fmri.p": 9.999e-05}
    inputs = store.get_run(runs["rsa"].info.run_id).inputs.dataset_inputs
    assert len(inputs) == 1 and inputs[0].dataset.name == "BOLD5000 synthetic (seed 0, snr 1.0)"
    assert {tag.key: tag.value for tag in inputs[0].tags}["subjects"] == "CSI1,CSI2"


def test_dvc_hash_is_dvcs_own(tmp_path):
    """Against `dvc add` in a real DVC repository: a folder's .dir hash and a file's md5."""
    (tmp_path / "folder" / "sub").mkdir(parents=True)
    (tmp_path / "folder" / "b.bin").write_bytes(np.arange(1000, dtype=np.int32).tobytes())
    (tmp_path / "folder" / "sub" / "c.txt").write_text("c\n")
    (tmp_path / "file.txt").write_text("one\ntwo\n")
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*dvc, "add", "-q", "folder", "file.txt"], cwd=tmp_path, check=True)
    for name in ("folder", "file.txt"):
        recorded = yaml.safe_load((tmp_path / f"{name}.dvc").read_text())["outs"][0]["md5"]
        assert tracking.dvc_hash(tmp_path / name) == recorded
    assert tracking.dvc_hash(tmp_path / "absent") is None


def test_a_second_dvc_process_is_a_second_pipeline_run(store, monkeypatch):
    """Under DVC the pipeline key includes the dvc process: two `dvc repro` of one commit are two
    executions; without DVC (stages run by hand) they share the commit's group."""
    first = tracking.pipeline_key("c0ffee", None)
    assert tracking.pipeline_key("c0ffee", None) == first
    monkeypatch.setenv("DVC_STAGE", "rsa")
    assert tracking.pipeline_key("c0ffee", None) != first
    assert tracking.pipeline_key("c0ffee", "exp-a") != tracking.pipeline_key("c0ffee", "exp-b")


def test_a_sweep_nests_pipeline_runs_named_after_the_experiment(store, monkeypatch):
    sweep = tracking.sweep_parent_run("s", {}, tracking.tracking_uri(Path.cwd()))
    monkeypatch.setenv("NEUROLATENT_SWEEP", "s")
    monkeypatch.setenv("MLFLOW_RUN_ID", sweep)
    monkeypatch.setenv("DVC_EXP_NAME", "s-study-snr1-seed0")
    with tracking.stage_run("rsa", {}):
        pass
    runs = {run.info.run_name: run for run in store.search_runs(["1"])}
    assert runs["s-study-snr1-seed0"].data.tags["mlflow.parentRunId"] == sweep
    assert runs["rsa"].data.tags["mlflow.parentRunId"] == runs["s-study-snr1-seed0"].info.run_id


def test_a_failed_stage_fails_its_pipeline_run(store):
    with pytest.raises(RuntimeError), tracking.stage_run("rsa", {}):
        raise RuntimeError("boom")
    runs = {run.info.run_name: run for run in store.search_runs(["1"])}
    assert runs["rsa"].info.status == "FAILED" and runs["by hand outside git"].info.status == "FAILED"
    assert not any(key.startswith("dvc.out.") for key in runs["rsa"].data.tags)


def test_models_and_tables_round_trip(store):
    import mlflow

    model = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.Tanh()).eval()
    table = pd.DataFrame({"model": ["pixels", "planted"], "r": [0.1, 0.8], "p": [0.2, 1e-4]})
    with tracking.stage_run("fmri_ae", {}) as run:
        tracking.log_model(model, "fmri_ae", torch.zeros(2, 4))
        tracking.log_table(table, "rsa/group.json")
    loaded = mlflow.pytorch.load_model(f"runs:/{run.info.run_id}/fmri_ae")
    x = torch.linspace(-1, 1, 12).reshape(3, 4)
    with torch.inference_mode():
        assert torch.equal(loaded(x), model(x))
    back = mlflow.load_table("rsa/group.json", run_ids=[run.info.run_id])
    assert back[["model", "r", "p"]].equals(table)


def test_the_pipeline_run_holds_every_param_and_names_those_an_experiment_changed(store, tmp_path, monkeypatch):
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "params.yaml").write_text("rsa:\n  seed: 0\n  compare: spearman\nstitch:\n  seed: 0\n")
    subprocess.run([*git, "add", "params.yaml"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "baseline"], cwd=tmp_path, check=True)
    # what `dvc exp run -S rsa.compare=pearson` leaves in the workspace it runs in
    (tmp_path / "params.yaml").write_text("rsa:\n  seed: 0\n  compare: pearson\nstitch:\n  seed: 0\n")
    monkeypatch.setenv("DVC_STAGE", "rsa")
    monkeypatch.setenv("DVC_EXP_NAME", "pearson-try")
    with tracking.stage_run("rsa", {"rsa.compare": "pearson"}):
        pass
    parent = {run.info.run_name: run for run in store.search_runs(["1"])}["pearson-try"]
    assert parent.data.params == {"rsa.seed": "0", "rsa.compare": "pearson", "stitch.seed": "0"}
    assert parent.data.tags["neurolatent.changed"] == "rsa.compare"
    assert parent.data.tags["mlflow.source.name"] == "dvc exp run"


def test_a_tracking_server_that_does_not_answer_fails_the_stage_in_one_line_naming_it(tmp_path, monkeypatch):
    """A real MLflow client against a port nothing listens on (its retries cut to none): one line that
    names the server, without the password a URI may carry."""
    import socket

    from neurolatent.errors import NeurolatentError

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://bob:hunter2@127.0.0.1:{port}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with pytest.raises(NeurolatentError) as caught:
        with tracking.stage_run("trials", {}):
            pass
    line = str(caught.value)
    assert line == (f"MLflow tracking server http://127.0.0.1:{port} did not answer (connection refused, after "
                    "MLflow's retries): is it running?"), line


@pytest.mark.parametrize("error, expected", [
    ("API request to endpoint /api/2.0/mlflow/runs/create failed with error code 401 != 200. Response body: 'You are "
     "not authenticated.'", "refused the credentials of 'alice' (401)"),
    ("API request to endpoint /api/2.0/mlflow/runs/create failed with error code 403 != 200. Response body: 'Permission "
     "denied'", "refused 'alice' (403): an admin grants EDIT on experiment 'neurolatent'"),
    ("INTERNAL_ERROR: disk full", "MLflow tracking server https://mlflow.lab:8443: INTERNAL_ERROR: disk full"),
])
def test_a_tracking_servers_refusal_says_what_to_do(error, expected, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    line = tracking.server_failure("https://mlflow.lab:8443", error)
    assert line.startswith("MLflow tracking server https://mlflow.lab:8443") and expected in line, line
