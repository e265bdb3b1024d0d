"""The encode stage on the small twin (CSI1 and CSI4 at SNR 4; bands: pixels and the planted
families, each with a control band of noise): the metrics are the per-voxel arrays it writes,
averaged over each ROI's voxels and then over subjects; rendered samples skip it; an unknown band
is a one-line error. (Which family wins in which area, on a larger twin: test_rois.py.)"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from neurolatent.errors import NeurolatentError

from conftest import run_stage

pytestmark = pytest.mark.slow  # the twin through trials, fmri and embed_images first

#: few draws, a short search and a narrow noise band: seconds
FAST = {"bootstrap": 50, "search": 3, "noise_features": 8}


def _encode(small_inputs, out, params: dict | None = None) -> dict:
    raw, truth, where = small_inputs
    return run_stage("encode", {"encode": FAST, "stitch": {"min_test": 2}} | (params or {}), samples=where / "fmri",
                     trials=where / "trials.parquet", stimuli=where / "stimuli.parquet", raw=raw,
                     images=where / "images", truth=truth, out=out / "encoding", metrics=out / "encode.json",
                     plots=out / "plots")


@pytest.fixture(scope="module")
def encoded(small_inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("encode")
    return out, _encode(small_inputs, out)


def test_the_metrics_are_the_per_voxel_arrays_averaged_over_voxels_then_subjects(encoded, small_inputs):
    out, metrics = encoded
    assert json.loads((out / "encode.json").read_text()) == metrics
    labels = pd.read_parquet(small_inputs[2] / "fmri" / "voxels.parquet")
    arrays = {subject: np.load(out / "encoding" / f"{subject}.npz") for subject in ("CSI1", "CSI4")}
    bands = "lowlevel+object+scene+noise"
    for subject, saved in arrays.items():
        assert saved[f"planted/r2/{bands}"].shape == (int((labels["subject"] == subject).sum()),)
        assert saved[f"planted/penalty/{bands}"].shape[0] == 4 and f"models/share/{'pixels'}" in saved.files

    def roi_mean(key: str, roi: str) -> float:
        means = []
        for subject, saved in arrays.items():
            own = labels[labels["subject"] == subject]
            columns = own.loc[own["roi"] == roi, "column"].to_numpy() if roi != "region" else slice(None)
            means.append(np.nanmean(saved[key].astype(np.float64)[columns]))
        return float(np.mean(means))

    # float32 per voxel in the file, float64 in the fit: equal to float32's precision
    for roi in ("EarlyVis", "PPA", "region"):
        assert metrics[f"encode.planted.{roi}.full"] == pytest.approx(roi_mean(f"planted/r2/{bands}", roi), abs=1e-6)
        for band in ("lowlevel", "scene", "noise"):
            share = metrics[f"encode.planted.{roi}.{band}.share"]
            assert share == pytest.approx(roi_mean(f"planted/share/{band}", roi), abs=1e-6)
            assert metrics[f"encode.planted.{roi}.{band}.ci_low"] <= share <= metrics[f"encode.planted.{roi}.{band}.ci_high"]
    # SNR 4: the planted families explain the region; the noise band nothing
    assert metrics["encode.planted.region.full"] > 0.1 > abs(metrics["encode.planted.region.noise.share"])


def test_the_table_and_figures(encoded):
    out, metrics = encoded
    table = pd.read_csv(out / "plots" / "partition.csv")
    assert list(table.columns[:7]) == ["partition", "roi", "part", "kind", "r2", "ci_low", "ci_high"]
    assert {"log10_penalty"} <= set(table.columns) and set(table["kind"]) == {"share", "full"}
    assert set(table["partition"]) == {"models", "planted"}
    assert set(table["roi"]) == {"EarlyVis", "LOC", "OPA", "PPA", "RSC", "region"}
    # a metric per share row and statistic, one per full row: no more
    names = {f"encode.{row.partition}.{row.roi}.{row.part}.{statistic}" for row in table[table["kind"] == "share"].itertuples()
             for statistic in ("share", "ci_low", "ci_high", "log10_penalty")}
    names |= {f"encode.{row.partition}.{row.roi}.full" for row in table[table["kind"] == "full"].itertuples()}
    assert set(metrics) == names
    for name in ("partition.png", "winning_models.png", "winning_planted.png"):
        assert (out / "plots" / name).stat().st_size > 10_000


def test_rendered_samples_are_skipped_with_empty_outputs(small_inputs, tmp_path):
    assert _encode(small_inputs, tmp_path, {"preprocess": {"method": "rendered"}}) == {}
    assert json.loads((tmp_path / "encode.json").read_text()) == {}
    assert not list((tmp_path / "plots").iterdir()) and not list((tmp_path / "encoding").iterdir())


def test_an_unknown_band_is_named(small_inputs, tmp_path):
    with pytest.raises(NeurolatentError, match="encode.bands: vit not among the image models"):
        _encode(small_inputs, tmp_path, {"encode": {**FAST, "bands": ["pixels", "vit"]}})
    assert not (tmp_path / "encoding").exists()
