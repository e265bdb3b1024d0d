"""A sweep's commands: configurations as dvc exp run -S flags, each point's name and seeds."""

from __future__ import annotations

import pytest
import yaml

from neurolatent.errors import NeurolatentError
from neurolatent.pipeline.experiments.sweep import Point, exp_run_args, read_config, set_flags


def test_configurations_become_dvc_set_flags_in_order(tmp_path):
    (tmp_path / "study.yaml").write_text("preprocess.lag_s: 0\ndata.forms: [raw]\nrsa.components: null\n")
    (tmp_path / "scale.yaml").write_text("preprocess.lag_s: 2\n")
    args = exp_run_args(Point("s", "study", 0.5, 2), [tmp_path / "study.yaml"], [tmp_path / "scale.yaml"])
    assert args[:7] == ["dvc", "exp", "run", "--queue", "--force", "-n", "s-study-snr0.5-seed2"]
    flags = dict(pair.split("=", 1) for pair in args[8::2])
    assert flags["preprocess.lag_s"] == "2" and flags["data.forms"] == "[raw]" and flags["rsa.components"] == "null"
    assert flags["data.synthetic.snr"] == "0.5" and flags["rsa.seed"] == "2" and flags["data.synthetic.seed"] == "2"
    # each value reads back as the YAML it was
    assert all(yaml.safe_load(v) == yaml.safe_load(yaml.safe_dump(yaml.safe_load(v))) for v in flags.values())
    assert set_flags({"embed.image_models": ["untrained:resources/vit-tiny"]}) == [
        "-S", "embed.image_models=['untrained:resources/vit-tiny']"]
    (tmp_path / "bad.yaml").write_text("- a list\n")
    with pytest.raises(NeurolatentError, match="bad.yaml"):
        read_config(tmp_path / "bad.yaml")
