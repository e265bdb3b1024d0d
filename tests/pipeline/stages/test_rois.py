"""ROI-resolved results on the twin's planted visual hierarchy, through the real stages (dataset,
trials, fmri, embed_images, rsa, stitch): each visual area matches the family planted in it, the ROI x
model interaction a double dissociation needs is found, and neither is found where there is none."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import run_stage, write_pixel_inputs
from neurolatent.pipeline.params import validate_params

#: three subjects, session 1's runs 1-3, 4 mm grids, the T1w form: ~110 images a subject, ~44 voxels a ROI
DATA = {"subjects": ["CSI1", "CSI2", "CSI3"], "sessions": [1], "runs": [1, 2, 3], "forms": ["T1w"],
        "synthetic": {"voxel_size_mm": 4, "image_size": 64, "jobs": 2}}
RSA = {"permutations": 1000, "bootstrap": 300, "cka_permutations": 10, "fmri": ["samples"]}
SAME_FAMILY = {roi: "lowlevel" for roi in ("EarlyVis", "LOC", "OPA", "PPA", "RSC")}


def _run(where, snr: float, families: dict | None = None) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """The stages on a twin at ``snr``: (rsa metrics, rois.csv, interactions.csv); pairwise.csv is
    read by the tests that need it."""
    synthetic = {**DATA["synthetic"], "snr": snr, **({"families": families} if families else {})}
    data = validate_params({"data": {**DATA, "synthetic": synthetic}}).data
    _, truth = write_pixel_inputs(data, where)
    metrics = run_stage("rsa", {"rsa": RSA}, samples=where / "fmri", trials=where / "trials.parquet",
                        stimuli=where / "stimuli.parquet", images=where / "images", truth=truth, rdms=where / "rdms",
                        metrics=where / "rsa.json", plots=where / "plots")
    return (metrics, pd.read_csv(where / "plots" / "rois.csv"), pd.read_csv(where / "plots" / "interactions.csv"))


@pytest.fixture(scope="module")
def hierarchy(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("hierarchy"), snr=1.0)


@pytest.fixture(scope="module")
def same_family(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("same-family"), snr=1.0, families=SAME_FAMILY)


#: the hypotheses an area is tested against: each planted family and the category model (the whole
#: truth holds every family, and the pixels model is itself low-level: it ties with the low-level
#: family in EarlyVis, as it should)
HYPOTHESES = ("planted_lowlevel", "planted_object", "planted_scene", "category")


def _winner(rois: pd.DataFrame, roi: str) -> pd.Series:
    """The hypothesis (:data:`HYPOTHESES`) with the highest group r in ``roi``."""
    own = rois[(rois["roi"] == roi) & rois["model"].isin(HYPOTHESES)]
    return own.loc[own["r"].idxmax()]


def test_the_fmri_stage_records_each_voxels_roi(hierarchy, tmp_path_factory):
    labels = pd.read_parquet(next(tmp_path_factory.getbasetemp().glob("hierarchy*")) / "fmri" / "voxels.parquet")
    meta = json.loads((next(tmp_path_factory.getbasetemp().glob("hierarchy*")) / "fmri" / "samples.json").read_text())
    assert meta["rois"] == ["EarlyVis", "LOC", "OPA", "PPA", "RSC"]
    assert set(labels["hemisphere"]) == {"LH", "RH"}
    for subject, own in labels.groupby("subject"):
        assert own["column"].tolist() == list(range(meta["voxels"][subject]))


@pytest.mark.parametrize("roi, family", [("EarlyVis", "planted_lowlevel"), ("LOC", "planted_object"),
                                         ("PPA", "planted_scene")])
def test_each_area_matches_the_family_planted_in_it(hierarchy, roi, family, tmp_path_factory):
    _, rois, _ = hierarchy
    best = _winner(rois, roi)
    assert best["model"] == family, rois[rois["roi"] == roi][["model", "r"]]
    assert best["p_fwe"] < 0.05
    # and closer than the other families, each by a pairwise difference (bootstrap over images and
    # subjects) whose CI excludes 0; the category model, in part of every family, only by its point estimate
    pairs = pd.read_csv(next(tmp_path_factory.getbasetemp().glob("hierarchy*")) / "plots" / "pairwise.csv")
    own = pairs[pairs["roi"] == roi]
    for other in set(HYPOTHESES) - {family, "category"}:
        row = own[((own["model_a"] == family) & (own["model_b"] == other))
                  | ((own["model_a"] == other) & (own["model_b"] == family))].iloc[0]
        sign = 1 if row["model_a"] == family else -1
        assert sign * row["ci_low" if sign > 0 else "ci_high"] > 0, row
    assert set(rois.columns) >= {"roi", "fmri", "model", "r", "ci_low", "ci_high", "p", "p_fwe", "ceiling_low",
                                 "ceiling_high"}


def _interaction(interactions: pd.DataFrame) -> tuple[float, float]:
    """The (lowlevel - object) in EarlyVis minus (lowlevel - object) in LOC, with its CI."""
    row = interactions[(interactions["roi_a"] == "EarlyVis") & (interactions["roi_b"] == "LOC")
                       & (interactions["model_a"] == "planted_lowlevel") & (interactions["model_b"] == "planted_object")]
    assert len(row) == 1, interactions.head()
    return float(row["ci_low"].iloc[0]), float(row["ci_high"].iloc[0])


def test_the_roi_by_model_interaction_is_found(hierarchy):
    """EarlyVis prefers low-level features over objects far more than LOC does: the difference of
    differences has a CI that excludes 0."""
    low, _ = _interaction(hierarchy[2])
    assert low > 0


def test_one_family_everywhere_shows_no_interaction(same_family):
    _, rois, interactions = same_family
    low, high = _interaction(interactions)
    assert low < 0 < high
    assert _winner(rois, "LOC")["model"] in ("planted_lowlevel", "pixels")


def test_at_snr_zero_no_cell_is_corrected_significant(tmp_path):
    _, rois, _ = _run(tmp_path, snr=0.0)
    assert (rois["p_fwe"] > 0.05).all(), rois[rois["p_fwe"] <= 0.05]


@pytest.fixture(scope="module")
def partition(hierarchy, tmp_path_factory):
    """The encode stage on the hierarchy's twin: {metric: value}."""
    where = next(tmp_path_factory.getbasetemp().glob("hierarchy*"))
    return run_stage("encode", {"encode": {"bootstrap": 200}}, samples=where / "fmri", trials=where / "trials.parquet",
                     stimuli=where / "stimuli.parquet", raw=where / "raw", images=where / "images",
                     truth=where / "truth", out=where / "encoding", metrics=where / "encode.json",
                     plots=where / "encode-plots")


@pytest.mark.parametrize("roi, family", [("EarlyVis", "lowlevel"), ("LOC", "object"), ("PPA", "scene")])
def test_banded_ridge_gives_each_areas_family_its_share_of_the_variance(partition, roi, family):
    share = {band: partition[f"encode.planted.{roi}.{band}.share"] for band in ("lowlevel", "object", "scene",
                                                                                "noise")}
    assert max(share, key=share.get) == family, share
    assert partition[f"encode.planted.{roi}.{family}.ci_low"] > 0.05
    # the control band of pure noise features explains nothing
    assert abs(share["noise"]) < 0.03
    assert partition[f"encode.planted.{roi}.noise.ci_low"] < 0.01


def test_the_subsets_partition_gives_each_family_its_unique_variance_and_the_same_full_fit(partition,
                                                                                         tmp_path_factory):
    """encode.partition: subsets fits every subset of the bands: the own family's unique part wins,
    the shared parts are reported, and the fit of all bands is the split's (same R^2)."""
    where = next(tmp_path_factory.getbasetemp().glob("hierarchy*"))
    subsets = run_stage("encode", {"encode": {"bootstrap": 50, "partition": "subsets"}}, samples=where / "fmri",
                        trials=where / "trials.parquet", stimuli=where / "stimuli.parquet", raw=where / "raw",
                        images=where / "images", truth=where / "truth", out=where / "encoding-subsets",
                        metrics=where / "encode-subsets.json", plots=where / "encode-subsets-plots")
    for roi, family in (("EarlyVis", "lowlevel"), ("LOC", "object"), ("PPA", "scene")):
        unique = {band: subsets[f"encode.planted.{roi}.{band}.unique"] for band in ("lowlevel", "object", "scene")}
        assert max(unique, key=unique.get) == family, unique
        assert f"encode.planted.{roi}.shared" in subsets
        assert subsets[f"encode.planted.{roi}.full"] == pytest.approx(partition[f"encode.planted.{roi}.full"],
                                                                     abs=1e-12)


def test_the_encode_stage_writes_its_table_figures_and_per_voxel_arrays(partition, tmp_path_factory):
    where = next(tmp_path_factory.getbasetemp().glob("hierarchy*"))
    table = pd.read_csv(where / "encode-plots" / "partition.csv")
    assert set(table["partition"]) == {"models", "planted"}
    assert {"EarlyVis", "LOC", "OPA", "PPA", "RSC", "region"} <= set(table["roi"])
    for name in ("partition.png", "winning_models.png", "winning_planted.png"):
        assert (where / "encode-plots" / name).stat().st_size > 10_000
    import numpy as np

    arrays = np.load(where / "encoding" / "CSI1.npz")
    assert "planted/r2/lowlevel+object+scene+noise" in arrays.files
    assert arrays["planted/penalty/lowlevel+object+scene+noise"].shape[0] == 4
