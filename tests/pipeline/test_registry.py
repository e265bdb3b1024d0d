"""The registry: which stage makes an input, the one line for a missing input, the params a stage
sees (and no others), the values logged, and each stage's dvc.yaml command."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from neurolatent.pipeline.registry import STAGES, cmd, declared_values, missing_inputs, producer, select_params


def test_the_producer_of_an_input_is_the_stage_that_writes_its_path():
    assert producer(STAGES["rsa"], "samples") == "fmri"
    assert producer(STAGES["fmri"], "trials") == "trials"
    assert producer(STAGES["dataset"], "raw") is None  # nothing upstream makes the raw data: the dataset stage's own


def test_a_missing_input_names_its_maker(tmp_path):
    stage = STAGES["rsa"]
    paths = {f.name: str(tmp_path / f.name) for f in stage.inputs()}
    line = missing_inputs(stage, paths)
    first = next(f for f in stage.inputs() if not f.optional)
    assert line.startswith(f"{tmp_path / first.name}: missing: the {producer(stage, first.name)} stage makes it")
    for f in stage.inputs():
        (tmp_path / f.name).touch()
    assert missing_inputs(stage, paths) is None


def test_a_stage_sees_only_its_declared_params():
    params = SimpleNamespace(rsa=SimpleNamespace(permutations=5), preprocess=SimpleNamespace(lag_s=4.0, method="x"))
    seen = select_params(params, ("rsa", "preprocess.lag_s"))
    assert seen.rsa.permutations == 5 and seen.preprocess.lag_s == 4.0
    with pytest.raises(AttributeError):
        seen.preprocess.method  # noqa: B018 - reading it is the test
    assert declared_values(params, ("rsa.permutations", "preprocess.lag_s")) == {"rsa.permutations": 5,
                                                                                  "preprocess.lag_s": 4.0}


def test_the_dvc_command_gives_every_path():
    stage = STAGES["dataset"]
    assert cmd(stage) == "neurolatent dataset " + " ".join(
        f"--{f.name.replace('_', '-')} {f.path}" for f in stage.files if f.kind != "work")
    assert cmd(stage).startswith("neurolatent dataset --raw data/raw/bold5000")
