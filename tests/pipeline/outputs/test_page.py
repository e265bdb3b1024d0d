"""The run's offline page (stage page), made from the committed outputs and opened in headless
Chromium with every host name unresolvable: its charts are inline SVG, its figures load from the
project's own plots/, and it links nothing on the network but the local MLflow UI. Its screenshot is
kept in test-artifacts/ (run_page.png)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from neurolatent.pipeline.outputs.page import MLFLOW_RUNS, write_page

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
OFFLINE = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--virtual-time-budget=5000",
           # no network: every host name fails to resolve (a CDN could not load)
           "--host-resolver-rules=MAP * ~NOTFOUND", "--window-size=1200,2400"]


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reports") / "run" / "index.html"
    out.parent.mkdir()
    plots = ROOT / "plots"
    write_page(out, ROOT / "metrics" / "summary.json",
               {"fmri_ae": plots / "fmri_ae_loss.csv", "image_ae": plots / "image_ae_loss.csv"},
               plots / "rsa" / "group.csv", plots / "stitch" / "identification.csv",
               {"RSA": plots / "rsa", "Translating": plots / "stitch", "Encoding": plots / "encode"})
    return out


def test_the_page_fetches_nothing_from_the_network(page):
    text = page.read_text()
    assert "<script" not in text
    fetched = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", text)
    assert fetched and all(not link.startswith(("http:", "https:", "//")) for link in fetched if link != MLFLOW_RUNS)
    assert text.count("<svg") == 4  # two loss curves, RSA, identification
    for link in fetched:
        if link != MLFLOW_RUNS:
            assert (page.parent / link).resolve().is_file(), link


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_the_page_draws_in_a_browser_with_no_network(page, artifacts):
    dom = subprocess.run([CHROMIUM, *OFFLINE, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    assert "Headline" in dom and "2-way identification" in dom and "RSA per model" in dom
    subprocess.run([CHROMIUM, *OFFLINE, f"--screenshot={artifacts / 'run_page.png'}", page.as_uri()],
                   capture_output=True, timeout=120)
    assert (artifacts / "run_page.png").stat().st_size > 100_000
