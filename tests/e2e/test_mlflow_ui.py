"""The MLflow UI, served on 127.0.0.1 and opened in headless Chromium, shows a pipeline execution's parent
run with its headline, the nested stage runs with their lineage tags, and the AE loss.

Needs Debian's ``chromium`` (``make test`` installs it as root on Debian); skipped with the reason where absent.
Screenshots are kept in ``test-artifacts/`` (or ``$NEUROLATENT_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)"),
              pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _chromium(*args: str) -> str:
    result = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                             "--virtual-time-budget=20000", "--window-size=1500,1000", *args],
                            capture_output=True, text=True, timeout=120)
    return result.stdout


@pytest.fixture
def ui(tmp_path, monkeypatch):
    """An MLflow store holding one pipeline execution of the project's experiment (a parent run with
    nested stage runs, lineage tags from a dvc.lock), served by `mlflow ui`."""
    import mlflow
    import yaml

    from neurolatent.pipeline.tracking import EXPERIMENT, log_pipeline_metrics, stage_run

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("DVC_EXP_NAME", "snr1-seed0")
    for name in ("DVC_STAGE", "MLFLOW_RUN_ID", "NEUROLATENT_SWEEP"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "params.yaml").write_text("rsa:\n  seed: 0\n")
    lock = {"schema": "2.0", "stages": {"embed_fmri": {"cmd": "x", "outs": [
        {"path": "data/embeddings/fmri.npy", "hash": "md5", "md5": "2901c68c671197ae8d264e69ef677751"}]}}}
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))
    (tmp_path / "metrics").mkdir()
    with stage_run("fmri_ae", {"fmri_ae.train.epochs": 3}) as run:
        for epoch, (train, val) in enumerate([(0.9, 0.95), (0.6, 0.7), (0.4, 0.55)], start=1):
            mlflow.log_metrics({"fmri_ae.train_loss": train, "fmri_ae.val_loss": val}, step=epoch)
    with stage_run("rsa", {"rsa.permutations": 10000}, [Path("data/embeddings/fmri.npy")], [Path("metrics")]) as rsa_run:
        (tmp_path / "metrics" / "rsa.json").write_text("{}")
        mlflow.log_metric("rsa.ae.planted.r", 0.66)
    with stage_run("summary", {}):
        log_pipeline_metrics({"ae.r": 0.66, "2way": 0.98})
    experiment = mlflow.get_experiment_by_name(EXPERIMENT).experiment_id
    parent = rsa_run.data.tags["mlflow.parentRunId"]
    mlflow.set_tracking_uri(None)
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
                               "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(base + "/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("mlflow ui did not answer on 127.0.0.1 within 60 s")
        yield base, experiment, {"fmri_ae": run.info.run_id, "rsa": rsa_run.info.run_id, "parent": parent}
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_mlflow_ui_shows_the_pipeline_run_its_stage_runs_and_the_ae_loss(ui, artifacts):
    base, experiment, runs = ui
    # the getting-started page's link: MLflow 3's "Model training" view of the experiment, its Runs table with the
    # parent run (the UI otherwise opens on its GenAI overview, which has no runs table)
    landing = f"{base}/#/experiments/{experiment}?workflowType=machine_learning"
    dom = _chromium("--dump-dom", landing)
    (artifacts / "mlflow_experiment.html").write_text(dom)
    assert "snr1-seed0" in dom and "Evaluations" not in dom, dom[:2000]
    _chromium(f"--screenshot={artifacts / 'mlflow_experiment.png'}", landing)
    runs_page = f"{base}/#/experiments/{experiment}/runs"
    dom = _chromium("--dump-dom", runs_page)
    (artifacts / "mlflow_runs.html").write_text(dom)
    assert "snr1-seed0" in dom, dom[:2000]  # the parent, named after the DVC experiment
    _chromium(f"--screenshot={artifacts / 'mlflow_runs.png'}", runs_page)
    parent_page = f"{base}/#/experiments/{experiment}/runs/{runs['parent']}"
    dom = _chromium("--dump-dom", parent_page)
    (artifacts / "mlflow_parent_run.html").write_text(dom)
    assert "ae.r" in dom and "2way" in dom, dom[:2000]  # the headline on the parent
    assert "Child runs" in dom and all(f">{stage}<" in dom for stage in ("fmri_ae", "rsa", "summary"))
    _chromium(f"--screenshot={artifacts / 'mlflow_parent_run.png'}", parent_page)
    run_page = f"{base}/#/experiments/{experiment}/runs/{runs['rsa']}"
    dom = _chromium("--dump-dom", run_page)
    (artifacts / "mlflow_rsa_run.html").write_text(dom)
    # nested under the parent, with the lineage tag of its input (the hash dvc.lock records)
    assert "snr1-seed0" in dom and "dvc.in.data/embeddings/fmri.npy" in dom, dom[:2000]
    assert "2901c68c671197ae8d264e69ef677751" in dom and "dvc.out.metrics" in dom
    _chromium(f"--screenshot={artifacts / 'mlflow_rsa_run.png'}", run_page)
    run_page = f"{base}/#/experiments/{experiment}/runs/{runs['fmri_ae']}"
    dom = _chromium("--dump-dom", run_page)
    assert "fmri_ae.train_loss" in dom and "fmri_ae.val_loss" in dom, dom[:2000]
    _chromium(f"--screenshot={artifacts / 'mlflow_fmri_ae_run.png'}", run_page)
    assert (artifacts / "mlflow_runs.png").stat().st_size > 10_000
