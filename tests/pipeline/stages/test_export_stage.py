"""The export stage on a small twin whose two subjects share images (CSI1 and CSI2, session 2, runs
1 and 4, with six of BOLD5000's repeated images planted, shown four times to each: eight images in
common): Net2Brain's RSA on the exported folders gives results.csv (tests/peers_reference.py), the
Brain-Score assembly holds the fmri stage's samples and a noise ceiling per voxel, and the Algonauts
table has a finite score per model and ROI, as has the encode stage beside its variance partition."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import peers_reference
from neurolatent.io.representations import fmri_trial_samples
from neurolatent.pipeline.params import validate_params
from neurolatent.science.peers import NET2BRAIN_COLUMNS

from conftest import run_stage, write_pixel_inputs

DATA = {"subjects": ["CSI1", "CSI2"], "sessions": [2], "runs": [1, 4],
        "synthetic": {"voxel_size_mm": 4, "image_size": 64, "jobs": 1, "snr": 4.0, "repeats": 6}}
LAG = {"preprocess": {"lag_s": [4.0, 6.0]}}


pytestmark = pytest.mark.slow  # the twin through trials, fmri, embed_images and rsa first


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    where = tmp_path_factory.mktemp("export")
    raw, truth = write_pixel_inputs(validate_params({"data": DATA}).data, where)
    files = {"samples": where / "fmri", "trials": where / "trials.parquet", "stimuli": where / "stimuli.parquet",
             "images": where / "images", "truth": truth}
    run_stage("rsa", {"rsa": {"permutations": 20, "bootstrap": 10, "cka_permutations": 10, "fmri": ["samples"]}},
              rdms=where / "rdms", metrics=where / "rsa.json", plots=where / "plots", **files)
    metrics = run_stage("export", {"stitch": {"min_test": 2}}, rdms=where / "rdms", raw=raw, out=where / "exports",
                        **files)
    return where, metrics


def test_net2brain_results_are_net2brains_rsa_on_the_exported_folders(exported):
    where, metrics = exported
    folder = where / "exports" / "net2brain"
    # the 6 planted repeated images, and 2 of the 6 the schedules shared (the other 4, repeated images shown once
    # there, gave their slots to the planted ones)
    assert metrics["export.net2brain.shared_images"] == 8
    results = pd.read_csv(folder / "results.csv")
    assert list(results.columns) == list(NET2BRAIN_COLUMNS)
    models = sorted(p.name for p in (folder / "model_rdms").iterdir())
    assert models == sorted(["category", "pixels", "planted", "planted_lowlevel", "planted_object", "planted_scene"])
    assert sorted(set(results["ROI"])) == sorted(["union", "EarlyVis", "LOC", "OPA", "PPA", "RSC"])
    assert len(results) == 6 * 6
    reference = pd.DataFrame([row for model in models for row in peers_reference.evaluate(
        folder / "model_rdms" / model, folder / "brain_rdms", model)])
    merged = results.merge(reference, on=["ROI", "Layer", "Model"], suffixes=("", "_net2brain"))
    assert len(merged) == len(results)
    for column in NET2BRAIN_COLUMNS[3:]:
        np.testing.assert_allclose(merged[column], merged[f"{column}_net2brain"], rtol=1e-10)
    by_representation = pd.read_csv(folder / "results_by_representation.csv")
    assert list(by_representation.columns) == ["fmri", *NET2BRAIN_COLUMNS] and set(by_representation["fmri"]) == {"samples"}


def test_the_assembly_holds_the_samples_it_came_from(exported):
    import xarray as xr

    where, metrics = exported
    folder = where / "exports" / "brainscore"
    assembly = xr.open_dataarray(folder / "assembly.nc").load()
    assert assembly.dims == ("presentation", "neuroid", "time_bin")
    trials = fmri_trial_samples(where / "fmri", where / "trials.parquet", (4.0, 6.0), "onset")
    assert assembly.sizes["neuroid"] == sum(m.matrix.shape[1] for m in trials.values()) == metrics[
        "export.brainscore.neuroids"]
    assert set(assembly["region"].values) == {"EarlyVis", "LOC", "OPA", "PPA", "RSC"}
    assert (assembly["voxel_x"].values >= 0).all()
    assert assembly["repetition"].values.max() == 3  # the planted images' fourth showing
    ceiling = assembly["noise_ceiling"].values
    assert np.isfinite(ceiling).all() and np.median(ceiling) > 50  # percent, at SNR 4
    for subject, matrix in trials.items():
        own = assembly.isel(neuroid=assembly["subject"].values == subject, time_bin=0)
        first = {name: i for i, name in reversed(list(enumerate(matrix.stimuli)))}
        for name, row in list(first.items())[:10]:
            cell = own.isel(presentation=(own["stimulus_id"].values == name) & (own["repetition"].values == 0))
            np.testing.assert_array_equal(cell.values[0], matrix.matrix[row])
    stimuli = pd.read_csv(folder / "stimulus_set.csv")
    assert set(assembly["stimulus_id"].values) <= set(stimuli["stimulus_id"])
    assert all((folder / path).is_file() for path in stimuli["image_path"])
    assert (folder / "plugin" / "benchmarks" / "neurolatent_bold5000" / "benchmark.py").is_file()


def test_the_algonauts_table_has_each_model_and_roi(exported):
    where, _ = exported
    scores = pd.read_csv(where / "exports" / "algonauts" / "scores.csv")
    assert list(scores.columns) == ["model", "roi", "score", "median_r", "noise_ceiling"]
    assert len(scores) == 5 * 6  # pixels and the four planted models x union and five ROIs
    assert scores["median_r"].notna().all() and scores["score"].notna().all()
    assert ((scores["score"] >= 0) & (scores["score"] <= 100)).all()
    # each ROI's own planted family is explained far above pixels' share of the ceiling
    own = scores.set_index(["model", "roi"])["score"]
    assert own["planted_scene", "PPA"] > 50 and own["planted_scene", "PPA"] > own["pixels", "PPA"]


def test_the_encode_stage_gives_each_roi_its_algonauts_score(exported):
    where, _ = exported
    metrics = run_stage("encode", {"encode": {"bootstrap": 20, "search": 3, "folds": 3}, "stitch": {"min_test": 2}},
                        samples=where / "fmri", trials=where / "trials.parquet", stimuli=where / "stimuli.parquet",
                        raw=where / "raw", images=where / "images", truth=where / "truth", out=where / "encoding",
                        metrics=where / "encode.json", plots=where / "encode-plots")
    table = pd.read_csv(where / "encode-plots" / "partition.csv")
    full = table[table["kind"] == "full"]
    assert full["algonauts"].between(0, 100).all() and table.loc[table["kind"] != "full", "algonauts"].isna().all()
    for row in full.itertuples():
        assert metrics[f"encode.{row.partition}.{row.roi}.algonauts"] == row.algonauts
    assert metrics["encode.planted.PPA.algonauts"] > 50
