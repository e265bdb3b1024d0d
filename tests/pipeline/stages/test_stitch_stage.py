"""The stitch stage on the small twin (CSI1 and CSI4 at SNR 4; image models: pixels and the planted
truth; fMRI: the samples and a one-epoch fMRI AE's latents): identification, reconstruction through
a one-epoch image AE and voxelwise prediction reach the metrics, tables and figures, and the
planted truth is told apart and predicted where pixels and shuffled features are not as good."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import run_stage

pytestmark = pytest.mark.slow  # two autoencoders, embed_fmri, then the stage

#: one epoch of small networks, one mapping, few permutations: seconds
AE = {"train": {"epochs": 1, "batch_size": 16}}
PARAMS = {"fmri_ae": {"train_subjects": ["CSI1"], "test_subjects": ["CSI4"], **AE},
          "image_ae": {"size": 32, "channels": [3, 8, 16], **AE},
          "stitch": {"fmri": ["samples", "ae"], "methods": ["ridge"], "permutations": 50, "min_test": 2}}


@pytest.fixture(scope="module")
def stitched(small_inputs, tmp_path_factory):
    raw, truth, where = small_inputs
    out = tmp_path_factory.mktemp("stitch")
    run_stage("image_ae", PARAMS, stimuli=where / "stimuli.parquet", raw=raw, model=out / "image_ae",
              metrics=out / "image_ae.json", plots=out / "image_ae_loss.csv", checkpoints=out / "image_ckpt")
    run_stage("fmri_ae", PARAMS, samples=where / "fmri", model=out / "fmri_ae", metrics=out / "fmri_ae.json",
              plots=out / "fmri_ae_loss.csv", checkpoints=out / "fmri_ckpt")
    run_stage("embed_fmri", PARAMS, samples=where / "fmri", model=out / "fmri_ae", trials=where / "trials.parquet",
              stimuli=where / "stimuli.parquet", out=out / "fmri.npy", index=out / "fmri_index.parquet")
    metrics = run_stage("stitch", PARAMS, fmri=out / "fmri.npy", fmri_index=out / "fmri_index.parquet",
                        samples=where / "fmri", trials=where / "trials.parquet", stimuli=where / "stimuli.parquet",
                        raw=raw, images=where / "images", truth=truth, image_ae=out / "image_ae",
                        metrics=out / "stitch.json", plots=out / "plots")
    return out, metrics


def test_every_part_reaches_the_metrics_tables_and_figures(stitched):
    out, metrics = stitched
    # NaN (CSI4 sees no test image twice: no noise ceiling) is written as null
    assert json.loads((out / "stitch.json").read_text()) == {key: None if v != v else v for key, v in metrics.items()}
    table = pd.read_csv(out / "plots" / "identification.csv")
    # per fMRI kind x image model, and the pooled AE mapping per image model
    models = {"pixels", "planted", "planted_lowlevel", "planted_object", "planted_scene"}
    assert set(table["fmri"]) == {"samples", "ae", "pooled"} and set(table["model"]) == models
    assert len(table) == 3 * len(models)
    for row in table.itertuples():
        assert metrics[f"stitch.decode.{row.fmri}.{row.model}.ridge.two_way"] == row.two_way
    rois = pd.read_csv(out / "plots" / "rois.csv")
    assert set(rois["roi"]) == {"EarlyVis", "LOC", "OPA", "PPA", "RSC"}
    for kind in ("ceiling", "samples", "ae"):
        assert {f"stitch.reconstruct.{kind}.{score}" for score in ("pixel_r", "ssim", "two_way")} <= set(metrics)
    for model in models:
        assert {f"stitch.encode.{model}.{name}" for name in ("median_r", "median_r_shuffled", "median_r_normalised",
                                                               "EarlyVis.median_r")} <= set(metrics)
    for name in ("reconstructions.png", "encoding_r.png", "rois_decoding.png", "rois_encoding.png"):
        assert (out / "plots" / name).stat().st_size > 5_000


def test_the_planted_truth_is_identified_and_predicted(stitched):
    _, metrics = stitched
    decode = "stitch.decode.samples.planted.ridge"
    assert metrics[f"{decode}.two_way"] > metrics[f"{decode}.chance_high"] and metrics[f"{decode}.p"] < 0.05
    assert metrics["stitch.encode.planted.median_r"] > metrics["stitch.encode.planted.median_r_shuffled"] + 0.1
    assert metrics["stitch.encode.planted.median_r"] > metrics["stitch.encode.pixels.median_r"]
    # the decoder's own reconstruction from the true latents bounds the route from fMRI
    assert metrics["stitch.reconstruct.ceiling.pixel_r"] > metrics["stitch.reconstruct.samples.pixel_r"]
