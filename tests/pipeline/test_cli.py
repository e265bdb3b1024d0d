"""The CLI's answers: to a stage run before its inputs exist, one line naming the missing input and
the stage that makes it, exit code 1, and no MLflow run or output started."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from neurolatent.pipeline.cli import main
from neurolatent.pipeline.registry import STAGES, producer

#: every stage that reads what another stage writes
READERS = [name for name, stage in STAGES.items() if any(producer(stage, f.name) for f in stage.inputs())]


def test_every_stage_but_dataset_reads_another_stages_output():
    assert set(STAGES) - set(READERS) == {"dataset"}


@pytest.mark.parametrize("name", READERS)
def test_a_stage_run_before_its_inputs_names_the_stage_that_makes_them(name, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("{}\n")
    stage = STAGES[name]
    first = next(f for f in stage.inputs() if f.name != "truth")
    code = main([name])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert len(err.splitlines()) == 1, err
    assert f"{first.path}: missing: the {producer(stage, first.name)} stage makes it" in err, err
    assert f"dvc repro {producer(stage, first.name)}" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_show_prints_a_stages_metrics_as_tables_that_fit_a_terminal(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "metrics").mkdir()
    metrics = {f"rsa.samples.{roi}.{model}.{stat}": value for roi in ("EarlyVis", "LOC")
               for model in ("pixels", "planted_object") for stat, value in (("r", 0.5), ("p", 1e-4), ("ci_low", 0.4))}
    metrics["rsa.samples.n_images"] = 372.0
    (tmp_path / "metrics" / "rsa.json").write_text(__import__("json").dumps(metrics))
    assert main(["show", "rsa"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["r", "ci_low", "p"]
    assert lines[1].split() == ["samples.EarlyVis.pixels", "0.5", "0.4", "0.0001"]
    assert max(len(line) for line in lines) <= 200
    assert main(["show", "rsa", "--contains", "LOC"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert main(["show", "stitch"]) == 1
    assert "metrics/stitch.json: missing: the stitch stage makes it" in capsys.readouterr().err
