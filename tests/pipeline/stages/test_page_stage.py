"""The page stage on the repository's committed plots and headline: the page is written whole where
the stage says, with a section per stage's figures. (What the page shows and that it fetches nothing
from the network, in a browser: tests/pipeline/outputs/test_page.py.)"""

from __future__ import annotations

from pathlib import Path

from neurolatent.pipeline.stages import page

from conftest import run_stage

ROOT = Path(__file__).resolve().parents[3]


def test_the_page_is_written_where_the_closing_line_says(tmp_path):
    plots = ROOT / "plots"
    metrics = run_stage("page", summary=ROOT / "metrics" / "summary.json", fmri_ae_loss=plots / "fmri_ae_loss.csv",
                        image_ae_loss=plots / "image_ae_loss.csv", rsa_plots=plots / "rsa",
                        stitch_plots=plots / "stitch", encode_plots=plots / "encode", out=tmp_path / "run")
    assert metrics == {"page": str(tmp_path / "run" / "index.html")}
    assert list(p.name for p in (tmp_path / "run").iterdir()) == ["index.html"]
    text = (tmp_path / "run" / "index.html").read_text()
    for section in ("Translating between the spaces", "Encoding, what each model explains"):
        assert section in text
    assert str(tmp_path / "run" / "index.html") in page.closing_line(metrics)
