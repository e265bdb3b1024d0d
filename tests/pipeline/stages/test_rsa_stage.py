"""The rsa and summary stages on the small synthetic dataset (planted truth at SNR 4, and SNR 0):
the study's two pitfalls (pairing by position, the full square RDMs) reach the metrics with the
effect they must have, and CKA sits beside RSA."""

from __future__ import annotations

import json

import pytest

from neurolatent.models.image_models import file_stem

from conftest import run_stage

FAST = {"permutations": 500, "bootstrap": 200, "cka_permutations": 500, "fmri": ["samples"]}


def _inputs(raw, truth, where):
    params = {"embed": {"image_models": ["pixels"]}}
    run_stage("trials", raw=raw, trials=where / "trials.parquet", stimuli=where / "stimuli.parquet")
    run_stage("fmri", raw=raw, trials=where / "trials.parquet", out=where / "fmri")
    run_stage("embed_images", params, stimuli=where / "stimuli.parquet", raw=raw, out=where / "images")
    return where


@pytest.fixture(scope="module")
def planted_inputs(small_dataset, tmp_path_factory):
    return small_dataset[1], _inputs(*small_dataset, tmp_path_factory.mktemp("rsa"))


@pytest.fixture(scope="module")
def null_inputs(null_dataset, tmp_path_factory):
    return null_dataset[1], _inputs(*null_dataset, tmp_path_factory.mktemp("rsa-null"))


def _rsa(inputs, out, **rsa) -> dict:
    truth, where = inputs
    return run_stage("rsa", {"rsa": {**FAST, **rsa}}, samples=where / "fmri", trials=where / "trials.parquet",
                     stimuli=where / "stimuli.parquet", images=where / "images", truth=truth, rdms=out / "rdms",
                     metrics=out / "rsa.json", plots=out / "plots")


def test_pairing_by_position_loses_the_planted_truth_that_pairing_by_name_finds(planted_inputs, tmp_path):
    by_name = _rsa(planted_inputs, tmp_path / "name")
    by_position = _rsa(planted_inputs, tmp_path / "position", pairing="position")
    assert by_name["rsa.samples.planted.r"] > 0.5 and by_name["rsa.samples.planted.p"] < 0.01
    assert by_name["rsa.samples.planted.cka"] > 0.3 and by_name["rsa.samples.planted.cka_p"] < 0.01
    # the same data and models: only which image row meets which fMRI row differs
    assert abs(by_position["rsa.samples.planted.r"]) < 0.1 and by_position["rsa.samples.planted.p"] > 0.05
    assert abs(by_position["rsa.samples.planted.cka"]) < 0.1 and by_position["rsa.samples.planted.cka_p"] > 0.05
    assert json.loads((tmp_path / "position" / "rsa.json").read_text()) == by_position


def test_full_square_rdms_inflate_r_and_the_naive_p_but_not_the_permutation_p(null_inputs, tmp_path):
    upper = _rsa(null_inputs, tmp_path / "upper", compare="pearson")
    full = _rsa(null_inputs, tmp_path / "full", compare="pearson", triangle="full")
    # nothing planted: the upper triangles agree on nothing ...
    assert abs(upper["rsa.samples.planted.r"]) < 0.05 and upper["rsa.samples.planted.p"] > 0.05
    # ... the whole squares agree on their zero diagonals, which the naive test counts as evidence
    assert full["rsa.samples.planted.r"] > upper["rsa.samples.planted.r"] + 0.02
    assert full["rsa.samples.planted.p_naive_wrong_df"] < 1e-3
    # relabelling keeps the diagonal: each subject's full statistic is an increasing affine map of its
    # upper one, so the permutation test is not fooled (the group mean of the maps differs slightly)
    assert full["rsa.samples.planted.p"] > 0.05 and abs(full["rsa.samples.planted.p"] - upper["rsa.samples.planted.p"]) < 0.05
    assert full["rsa.samples.planted.ci_low"] < full["rsa.samples.planted.r"] < full["rsa.samples.planted.ci_high"]


def test_summary_is_at_most_fifteen_headline_numbers(planted_inputs, tmp_path):
    details = {"fmri_ae": {"fmri_ae.best_val_loss": 0.5, "fmri_ae.epochs": 3},
               "image_ae": {"image_ae.best_val_loss": 0.02},
               "rsa": _rsa(planted_inputs, tmp_path),
               "stitch": {"stitch.decode.samples.pixels.ridge.two_way": 0.7, "stitch.decode.samples.pixels.ridge.top1": 0.2,
                          "stitch.decode.samples.planted.ridge.two_way": 0.99, "stitch.decode.samples.planted.ridge.top1": 0.9,
                          "stitch.decode.chance.two_way": 0.5, "stitch.encode.pixels.median_r": 0.3}}
    for name, values in details.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(values))
    summary = run_stage("summary", metrics=tmp_path / "summary.json",
                        **{name: tmp_path / f"{name}.json" for name in details})
    assert len(summary) <= 15
    # the best image model, never the planted truth
    assert summary["summary.samples.r"] == details["rsa"]["rsa.samples.pixels.r"]
    assert summary["summary.2way"] == 0.7 and summary["summary.top1"] == 0.2
    assert summary["summary.enc.r"] == 0.3 and summary["summary.fmri_ae.loss"] == 0.5
    # the file has the short names (dvc exp show's headers); NaN (no noise ceiling: CSI1 and CSI4
    # share too few images here) is written as null
    assert json.loads((tmp_path / "summary.json").read_text()) == {
        key.removeprefix("summary."): None if v != v else v for key, v in summary.items()}



def test_hidden_state_layers_get_a_curve(small_dataset, planted_inputs, tiny_vit, tmp_path):
    """embed.layers: each layer is an image model of its own downstream (last keeps the model's
    name) and the plots get RSA by layer; without indexed layers, no such figure."""
    truth, where = planted_inputs
    model = f"untrained:{tiny_vit}"
    stem = file_stem(model)
    run_stage("embed_images", {"embed": {"image_models": ["pixels", model], "layers": ["last", 0, 1],
                                       "tokens": "mean"}},
              stimuli=where / "stimuli.parquet", raw=small_dataset[0], out=tmp_path / "images")
    metrics = run_stage("rsa", {"rsa": {**FAST, "permutations": 50, "bootstrap": 50, "cka_permutations": 50}},
                        samples=where / "fmri", trials=where / "trials.parquet", stimuli=where / "stimuli.parquet",
                        images=tmp_path / "images", truth=truth, rdms=tmp_path / "rdms", metrics=tmp_path / "rsa.json",
                        plots=tmp_path / "plots")
    assert {f"rsa.samples.{name}.r" for name in (stem, f"{stem}_layer0", f"{stem}_layer1", "pixels")} <= set(metrics)
    assert (tmp_path / "plots" / "layers.png").stat().st_size > 0
    _rsa(planted_inputs, tmp_path / "plain", permutations=50, bootstrap=50, cka_permutations=50)  # pixels only
    assert (tmp_path / "plain" / "plots" / "rsa_per_model.png").is_file()
    assert not (tmp_path / "plain" / "plots" / "layers.png").exists()
