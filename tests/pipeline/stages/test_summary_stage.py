"""The summary stage on hand-written stage metrics: the headline reaches metrics/summary.json under
its short names and the returned metrics under ``summary.``; an unreadable input is a one-line error
naming it. (On the rsa stage's real metrics: test_rsa_stage.py.)"""

from __future__ import annotations

import json

import pytest

from neurolatent.errors import NeurolatentError
from neurolatent.pipeline.outputs.summaries import headline

from conftest import run_stage

DETAILS = {"fmri_ae": {"fmri_ae.best_val_loss": 0.5, "fmri_ae.epochs": 3},
           "image_ae": {"image_ae.best_val_loss": 0.02},
           "rsa": {"rsa.samples.pixels.r": 0.4, "rsa.samples.pixels.p": 0.01, "rsa.samples.pixels.ci_low": 0.3,
                   "rsa.samples.pixels.ci_high": 0.5, "rsa.samples.planted.r": 0.9, "rsa.samples.planted.p": 0.001,
                   "rsa.samples.planted.ci_low": 0.8, "rsa.samples.planted.ci_high": 0.95},
           "stitch": {"stitch.decode.samples.pixels.ridge.two_way": 0.7, "stitch.decode.samples.pixels.ridge.top1": 0.2,
                      "stitch.decode.chance.two_way": 0.5, "stitch.encode.pixels.median_r": 0.3}}


def _files(tmp_path, details: dict) -> dict:
    for name, values in details.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(values))
    return {name: tmp_path / f"{name}.json" for name in DETAILS}


def test_the_headline_of_the_stages_metrics(tmp_path):
    summary = run_stage("summary", metrics=tmp_path / "summary.json", **_files(tmp_path, DETAILS))
    expected = headline({key: value for values in DETAILS.values() for key, value in values.items()})
    assert summary == {f"summary.{key}": value for key, value in expected.items()}
    # the best image model, never the planted truth; no noise ceiling in the rsa metrics: NaN, written as null
    assert summary == {"summary.samples.r": 0.4, "summary.samples.p": 0.01, "summary.samples.lo": 0.3,
                       "summary.samples.hi": 0.5, "summary.samples.nc": pytest.approx(float("nan"), nan_ok=True),
                       "summary.2way": 0.7, "summary.top1": 0.2, "summary.enc.r": 0.3, "summary.fmri_ae.loss": 0.5,
                       "summary.image_ae.loss": 0.02}
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written == {key.removeprefix("summary."): None if value != value else value for key, value in summary.items()}


def test_an_unreadable_stage_metrics_file_is_named(tmp_path):
    files = _files(tmp_path, DETAILS)
    files["rsa"].write_text("{not json")
    with pytest.raises(NeurolatentError, match="rsa.json: cannot read the stage's metrics"):
        run_stage("summary", metrics=tmp_path / "summary.json", **files)
    assert not (tmp_path / "summary.json").exists()
