"""The MLflow UI, served on 127.0.0.1 and opened in headless Chromium, shows the stage runs and the AE loss.

Needs Debian's ``chromium`` (``make test`` installs it as root on Debian); skipped with the reason where absent.
Screenshots are kept in ``test-artifacts/`` (or ``$NEUROLATENT_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("NEUROLATENT_TEST_ARTIFACTS", ROOT / "test-artifacts"))

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")


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
def ui(tmp_path):
    """An MLflow store holding two stage runs of the project's experiment, served by `mlflow ui`."""
    import mlflow

    from neurolatent.tracking import EXPERIMENT, stage_run

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    old = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        with stage_run("fmri_ae", {}) as run:
            for epoch, (train, val) in enumerate([(0.9, 0.95), (0.6, 0.7), (0.4, 0.55)], start=1):
                mlflow.log_metrics({"fmri_ae.train_loss": train, "fmri_ae.val_loss": val}, step=epoch)
        with stage_run("rsa", {}):
            mlflow.log_metric("rsa.ae.planted.r", 0.66)
        experiment = mlflow.get_experiment_by_name(EXPERIMENT).experiment_id
    finally:
        if old is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = old
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
        yield base, experiment, run.info.run_id
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_mlflow_ui_shows_the_runs_and_the_ae_loss(ui):
    base, experiment, run_id = ui
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    runs_page = f"{base}/#/experiments/{experiment}/runs"
    dom = _chromium("--dump-dom", runs_page)
    (ARTIFACTS / "mlflow_runs.html").write_text(dom)
    assert "fmri_ae" in dom and "rsa" in dom, dom[:2000]
    _chromium(f"--screenshot={ARTIFACTS / 'mlflow_runs.png'}", runs_page)
    run_page = f"{base}/#/experiments/{experiment}/runs/{run_id}"
    dom = _chromium("--dump-dom", run_page)
    assert "fmri_ae.train_loss" in dom and "fmri_ae.val_loss" in dom, dom[:2000]
    _chromium(f"--screenshot={ARTIFACTS / 'mlflow_fmri_ae_run.png'}", run_page)
    assert (ARTIFACTS / "mlflow_runs.png").stat().st_size > 10_000
