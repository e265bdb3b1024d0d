"""neurolatent.pipeline.reproduction: which stage first parted from the committed dvc.lock, and by how much."""

from __future__ import annotations

import copy
import math

import pytest

from neurolatent.pipeline.reproduction import compare_locks, describe, largest_metric_difference, relative_difference

ORDER = ["fmri", "image_ae", "embed_images", "rsa"]
METRICS = {"image_ae": ["metrics/image_ae.json"], "rsa": ["metrics/rsa.json"]}


def _lock() -> dict:
    def stage(deps, outs, params=None):
        return {"cmd": "x", "deps": [{"path": p, "md5": h} for p, h in deps],
                "outs": [{"path": p, "md5": h} for p, h in outs], **({"params": params} if params else {})}

    return {"schema": "2.0", "stages": {
        "fmri": stage([("raw", "r")], [("samples", "s")], {"params.yaml": {"preprocess": {"method": "betas"}}}),
        "image_ae": stage([("stimuli", "t")], [("models/image_ae", "m"), ("metrics/image_ae.json", "mj")]),
        "embed_images": stage([("models/image_ae", "m")], [("images", "e")]),
        "rsa": stage([("images", "e"), ("samples", "s")], [("metrics/rsa.json", "rj")]),
    }}


COMMITTED_METRICS = {"metrics/image_ae.json": {"image_ae.best_val_loss": 0.0163, "image_ae.best_epoch": 30},
                     "metrics/rsa.json": {"rsa.r": 0.5, "rsa.p": 1e-4}}


def _compare(committed, now, now_metrics):
    return compare_locks(committed, now, ORDER, METRICS, COMMITTED_METRICS.get, now_metrics.get)


def test_the_same_lock_is_reproduced():
    outcome = _compare(_lock(), _lock(), COMMITTED_METRICS)
    assert outcome.stage is None and outcome.changed_inputs == ()
    assert describe(outcome, "HEAD").startswith("reproduced")


def test_the_first_stage_with_the_same_inputs_and_other_outputs_is_named_with_its_metric():
    now = _lock()
    now["stages"]["image_ae"]["outs"][0]["md5"] = "m2"
    now["stages"]["image_ae"]["outs"][1]["md5"] = "mj2"
    now["stages"]["embed_images"]["deps"][0]["md5"] = "m2"  # downstream reads other inputs now
    now["stages"]["embed_images"]["outs"][0]["md5"] = "e2"
    metrics = copy.deepcopy(COMMITTED_METRICS)
    metrics["metrics/image_ae.json"]["image_ae.best_val_loss"] = 0.0163 * (1 + 3e-7)
    metrics["metrics/rsa.json"]["rsa.r"] = 0.6
    outcome = _compare(_lock(), now, metrics)
    assert outcome.stage == "image_ae"
    assert outcome.outputs == ("models/image_ae", "metrics/image_ae.json")
    difference, key, holder = outcome.largest
    assert key == "image_ae.best_val_loss" and holder == "image_ae" and difference == pytest.approx(3e-7, rel=1e-3)
    assert outcome.changed_inputs == ("embed_images",)
    line = describe(outcome, "HEAD")
    assert "stage image_ae is the first" in line and "3e-07" in line and "\n" not in line


def test_a_stage_without_metrics_is_sized_by_the_metrics_after_it():
    now = _lock()
    now["stages"]["embed_images"]["outs"][0]["md5"] = "e2"
    now["stages"]["rsa"]["deps"][0]["md5"] = "e2"
    metrics = copy.deepcopy(COMMITTED_METRICS)
    metrics["metrics/rsa.json"]["rsa.r"] = 0.51
    outcome = _compare(_lock(), now, metrics)
    assert outcome.stage == "embed_images"
    assert outcome.largest[1:] == ("rsa.r", "rsa")
    assert "downstream, in rsa's metrics" in describe(outcome, "HEAD")


def test_changed_params_are_not_a_failure_to_reproduce():
    now = _lock()
    now["stages"]["fmri"]["params"]["params.yaml"]["preprocess"]["method"] = "volume"
    now["stages"]["fmri"]["outs"][0]["md5"] = "s2"
    now["stages"]["rsa"]["deps"][1]["md5"] = "s2"
    outcome = _compare(_lock(), now, COMMITTED_METRICS)
    assert outcome.stage is None and outcome.changed_inputs == ("fmri", "rsa")


def test_relative_differences():
    assert relative_difference(1.0, 1.0) == 0.0
    assert relative_difference(float("nan"), float("nan")) == 0.0
    assert math.isinf(relative_difference(1.0, float("nan")))
    assert relative_difference(-2.0, -1.0) == 0.5
    assert largest_metric_difference({"a": 1.0, "b": {"c": 2.0}}, {"a": 1.0, "b": {"c": 2.0}}) is None
    assert largest_metric_difference({"a": 1.0}, {"a": 1.0, "new": 3.0}) == (math.inf, "new")
