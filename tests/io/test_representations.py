"""The per-stimulus matrices rsa and stitch read: fMRI latents by subject, images in the order first
shown, image models by the manifest, the planted truth, and a ROI's columns."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from neurolatent.errors import NeurolatentError
from neurolatent.io.representations import (first_presentations, fmri_latents, image_models, planted_features,
                                            roi_columns)
from neurolatent.science.stimuli import StimulusMatrix


def test_fmri_latents_by_subject(tmp_path):
    np.save(tmp_path / "fmri.npy", np.arange(6.0).reshape(3, 2))
    pd.DataFrame({"subject": ["CSI2", "CSI1", "CSI2"], "image_name": ["a", "b", "c"]}).to_parquet(tmp_path / "i.parquet")
    latents = fmri_latents(tmp_path / "fmri.npy", tmp_path / "i.parquet")
    assert list(latents) == ["CSI1", "CSI2"] and latents["CSI2"].stimuli == ("a", "c")
    assert latents["CSI2"].matrix.tolist() == [[0.0, 1.0], [4.0, 5.0]] and latents["CSI1"].name == "ae/CSI1"
    with pytest.raises(NeurolatentError, match="missing \\(run the embed_fmri stage first\\)"):
        fmri_latents(tmp_path / "none.npy", tmp_path / "i.parquet")
    with pytest.raises(ValueError, match="^kind: Input should be 'ae' or 'align'"):
        fmri_latents(tmp_path / "fmri.npy", tmp_path / "i.parquet", kind="samples")


def test_first_presentations_in_the_order_shown():
    trials = pd.DataFrame({"subject": "CSI1", "session": [2, 1, 1, 1], "run": [1, 2, 1, 1],
                           "onset": [0.0, 0.0, 10.0, 0.0], "image_name": ["d", "c", "b", "b"]})
    assert first_presentations(trials) == {"CSI1": ["b", "c", "d"]}


def test_image_models_follow_the_manifest_and_its_row_count(tmp_path):
    np.save(tmp_path / "vit.npy", np.ones((2, 3)))
    (tmp_path / "manifest.json").write_text(json.dumps({"rows": 2, "models": {"vit": {"file": "vit.npy"}}}))
    models = image_models(tmp_path, pd.DataFrame({"image_name": ["a", "b"]}))
    assert list(models) == ["vit"] and models["vit"].stimuli == ("a", "b") and models["vit"].matrix.dtype == np.float32
    with pytest.raises(NeurolatentError, match="2 rows, stimuli.parquet has 3"):
        image_models(tmp_path, pd.DataFrame({"image_name": ["a", "b", "c"]}))


def test_the_planted_truth_as_image_models(tmp_path):
    assert planted_features(tmp_path) == {}  # real data: no truth
    (tmp_path / "truth.json").write_text(json.dumps({"planted": True, "families": ["scene", "object"]}))
    pd.DataFrame({"image_name": ["a", "b"]}).to_csv(tmp_path / "stimuli.tsv", sep="\t", index=False)
    np.save(tmp_path / "features_scene.npy", np.array([[1.0], [3.0]]))
    np.save(tmp_path / "features_object.npy", np.array([[0.0, 5.0], [2.0, 5.0]]))
    truth = planted_features(tmp_path)
    assert list(truth) == ["planted", "planted_scene", "planted_object"]
    assert truth["planted"].matrix.tolist() == [[-1.0, -1.0, 0.0], [1.0, 1.0, 0.0]]  # z-scored, side by side


def test_roi_columns_and_a_roi_a_subject_lacks():
    samples = {"CSI1": StimulusMatrix("samples/CSI1", np.arange(6.0).reshape(2, 3), ("a", "b"))}
    labels = pd.DataFrame({"subject": "CSI1", "column": [0, 1, 2], "roi": ["LOC", "PPA", "LOC"]})
    assert roi_columns(samples, labels, "LOC")["CSI1"].matrix.tolist() == [[0.0, 2.0], [3.0, 5.0]]
    with pytest.raises(NeurolatentError, match="sub-CSI1 has no voxel of RSC"):
        roi_columns(samples, labels, "RSC")
