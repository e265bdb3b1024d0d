"""The align stage end to end on a small twin whose three subjects see the same images (SNR 4)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from neurolatent.errors import NeurolatentError
from neurolatent.pipeline.params import validate_params

from conftest import run_stage, write_pixel_inputs

pytestmark = pytest.mark.slow

FAST = {"k": [5, 10], "features": 4, "bootstrap": 200, "methods": ["srm", "procrustes", "adapter"]}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    where = tmp_path_factory.mktemp("align")
    data = validate_params({"data": {"subjects": ["CSI1", "CSI2", "CSI3"], "sessions": [1], "runs": [1],
                                     "synthetic": {"voxel_size_mm": 4, "image_size": 64, "jobs": 1, "snr": 4.0,
                                                   "same_images": True}}}).data
    _, truth = write_pixel_inputs(data, where)
    return where, truth


def _align(inputs, out, **align) -> dict:
    where, truth = inputs
    return run_stage("align", {"align": {**FAST, **align}}, samples=where / "fmri", trials=where / "trials.parquet",
                     stimuli=where / "stimuli.parquet", images=where / "images", truth=truth, out=out / "align",
                     metrics=out / "align.json", plots=out / "plots")


def test_the_stage_aligns_identifies_and_writes_its_tables(inputs, tmp_path):
    metrics = _align(inputs, tmp_path)
    table = pd.read_csv(tmp_path / "plots" / "fewshot.csv")
    assert list(table.columns) == ["subject", "method", "k", "target", "two_way", "ci_low", "ci_high", "top1"]
    assert set(table["method"]) == {"srm", "procrustes", "adapter", "scratch"}
    assert set(table["target"]) == {"pixels", "planted", "subjects"} and set(table["subject"]) == {"CSI1", "CSI2", "CSI3"}
    assert {5, 10} <= set(table["k"])
    # SNR 4: the held-out subject's test images are told apart between subjects and from the planted features
    assert metrics["align.srm.subjects.two_way_all"] > 0.8 and metrics["align.adapter.planted.two_way_all"] > 0.8
    planted = pd.read_csv(tmp_path / "plots" / "planted.csv")
    assert list(planted.columns) == ["method", "component", "canonical_r"] and len(planted) == 3 * 4
    assert planted["canonical_r"].min() > 0.5
    assert (tmp_path / "plots" / "fewshot.png").stat().st_size > 10_000
    index = pd.read_parquet(tmp_path / "align" / "index.parquet")
    assert list(index.columns) == ["subject", "image_name"] and index["subject"].nunique() == 3
    assert json.loads((tmp_path / "align.json").read_text()).keys() == metrics.keys()


def test_bad_params_stop_with_one_clear_line_and_write_nothing(inputs, tmp_path):
    with pytest.raises(NeurolatentError, match=r"^params.yaml: align.k: k = 400 is more than CSI1's \d+ training "
                                               r"images \(\d+ images, \d+ of them test\)$"):
        _align(inputs, tmp_path, k=[5, 400])
    assert not (tmp_path / "plots").exists() and not (tmp_path / "align.json").exists()
    with pytest.raises(NeurolatentError, match=r"align.methods.0: Input should be 'srm', 'detsrm', 'procrustes' or "
                                               r"'adapter'"):
        _align(inputs, tmp_path, methods=["hyperalignment"])
    with pytest.raises(NeurolatentError, match=r"^params.yaml: align.features: 40 shared dimensions: more than the \d+ "
                                               r"training images the subjects share$"):
        _align(inputs, tmp_path, features=40)
    with pytest.raises(NeurolatentError, match=r"^params.yaml: align.anchor: no image model 'clip'"):
        _align(inputs, tmp_path, anchor=["clip"])


def test_rsa_reads_the_shared_space_as_the_align_representation(inputs, tmp_path):
    where, truth = inputs
    _align(inputs, tmp_path)
    metrics = run_stage("rsa", {"rsa": {"fmri": ["align"], "permutations": 500, "bootstrap": 200,
                                        "cka_permutations": 200}},
                        align=tmp_path / "align", samples=where / "fmri", trials=where / "trials.parquet",
                        stimuli=where / "stimuli.parquet", images=where / "images", truth=truth,
                        rdms=tmp_path / "rdms", metrics=tmp_path / "rsa.json", plots=tmp_path / "rsa")
    # the shared space of SNR-4 subjects keeps the planted geometry
    assert metrics["rsa.align.planted.r"] > 0.3 and metrics["rsa.align.planted.p"] < 0.05
