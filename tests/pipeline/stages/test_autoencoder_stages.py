"""The autoencoder and embedding stages on the small synthetic dataset: fmri_ae + embed_fmri for each
sample kind, image_ae + embed_images with every kind of image model."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from neurolatent.errors import NeurolatentError
from neurolatent.io.representations import image_layers, image_models
from neurolatent.io.samples import FmriSamples
from neurolatent.models.autoencoder import network_input
from neurolatent.models import autoencoder
from neurolatent.models.image_models import file_stem

from conftest import run_stage


@pytest.fixture(scope="module")
def stage_inputs(small_dataset, tmp_path_factory):
    where = tmp_path_factory.mktemp("ae")
    run_stage("trials", raw=small_dataset[0], trials=where / "trials.parquet", stimuli=where / "stimuli.parquet")
    return small_dataset, where


@pytest.mark.parametrize("method,extra", [("betas", {}), ("volume", {"channels": [1, 4, 8]}),
                                          ("rendered", {"channels": [3, 8, 16]})])
def test_fmri_ae_and_embed_fmri_stages(stage_inputs, tmp_path, method, extra):
    (raw, truth), where = stage_inputs
    p = {"preprocess": {"method": method, "jobs": 1, "render": {"size": 32, "engine": "fast"}},
         "fmri_ae": {"train_subjects": ["CSI1"], "test_subjects": ["CSI4"], **extra, "train": {"epochs": 2, "batch_size": 8}},
         "embed": {"pooling": "flatten"}}
    run_stage("fmri", p, raw=raw, trials=where / "trials.parquet", out=tmp_path / "fmri")
    metrics = run_stage("fmri_ae", p, samples=tmp_path / "fmri", model=tmp_path / "model", metrics=tmp_path / "m.json",
                        plots=tmp_path / "loss.csv", checkpoints=tmp_path / "ckpt")
    assert metrics["fmri_ae.epochs"] == 2 and metrics["fmri_ae.n_test"] == 74
    assert np.isfinite(metrics["fmri_ae.test_loss"])
    saved = json.loads((tmp_path / "m.json").read_text())
    assert saved == metrics and saved["fmri_ae.n_train"] + saved["fmri_ae.n_val"] == 74
    assert pd.read_csv(tmp_path / "loss.csv").columns.tolist() == ["epoch", "train_loss", "val_loss"]
    assert set(load_file(tmp_path / "model" / "model.safetensors")) and (tmp_path / "model" / "config.json").is_file()
    summary = run_stage("embed_fmri", p, samples=tmp_path / "fmri", model=tmp_path / "model",
                        trials=where / "trials.parquet", stimuli=where / "stimuli.parquet", out=tmp_path / "fmri.npy",
                        index=tmp_path / "fmri_index.parquet")
    embeddings, index = np.load(tmp_path / "fmri.npy"), pd.read_parquet(tmp_path / "fmri_index.parquet")
    trials = pd.read_parquet(where / "trials.parquet")
    assert len(index) == len(trials.drop_duplicates(["subject", "image_name"])) == len(embeddings) == summary["embed_fmri.rows"]
    # CSI1 sees COCO_train2014_000000488558.jpg twice: its row is the mean of both trials' latents
    repeated = "COCO_train2014_000000488558.jpg"
    row = index.index[(index["subject"] == "CSI1") & (index["image_name"] == repeated)][0]
    assert index.loc[row, "presentations"] == 2
    model, _ = autoencoder.load_model(tmp_path / "model")
    data = FmriSamples.open(tmp_path / "fmri")
    if method == "volume":
        data.use_depth(2)
    trial_rows = np.flatnonzero(((trials["subject"] == "CSI1") & (trials["image_name"] == repeated)).to_numpy())
    with torch.inference_mode():
        expected = model.encode(network_input(data.read(trial_rows))).reshape(2, -1).mean(dim=0).numpy()
    np.testing.assert_allclose(embeddings[row], expected, rtol=1e-5, atol=1e-6)


def test_embed_images_stage(stage_inputs, tiny_vit, tmp_path):
    (raw, _), where = stage_inputs
    p = {"image_ae": {"size": 32, "channels": [3, 8, 16], "train": {"epochs": 2, "batch_size": 8}},
         "embed": {"image_models": [tiny_vit, f"untrained:{tiny_vit}", "pixels", "image_ae"], "tokens": "flat"}}
    run_stage("image_ae", p, stimuli=where / "stimuli.parquet", raw=raw, model=tmp_path / "image_ae",
              metrics=tmp_path / "m.json", plots=tmp_path / "loss.csv", checkpoints=tmp_path / "ckpt")
    run_stage("embed_images", p, stimuli=where / "stimuli.parquet", raw=raw, image_ae=tmp_path / "image_ae",
              out=tmp_path / "images")
    manifest = json.loads((tmp_path / "images" / "manifest.json").read_text())
    n = len(pd.read_parquet(where / "stimuli.parquet"))
    shapes = {name: np.load(tmp_path / "images" / entry["file"]).shape for name, entry in manifest["models"].items()}
    assert shapes[tiny_vit] == (n, (16 + 1) * 32)  # flat: 4x4 patches + CLS, 32 wide
    assert shapes["pixels"] == (n, 16 * 16 * 3) and shapes["image_ae"] == (n, 16)  # avgpool: the latent channels
    trained = np.load(tmp_path / "images" / manifest["models"][tiny_vit]["file"])
    untrained = np.load(tmp_path / "images" / manifest["models"][f"untrained:{tiny_vit}"]["file"])
    assert not np.allclose(trained, untrained)


def test_embed_images_stage_gives_each_layer_an_entry(stage_inputs, tiny_vit, tmp_path):
    """embed.layers: a transformer's entry per layer (last under the model's own name, hidden state
    k as <model>@layer<k>), each read downstream as an image model of its own; pixels has none."""
    (raw, _), where = stage_inputs
    model, stem = f"untrained:{tiny_vit}", file_stem(f"untrained:{tiny_vit}")
    files = {"stimuli": where / "stimuli.parquet", "raw": raw, "image_ae": tmp_path / "no-image-ae"}
    metrics = run_stage("embed_images", {"embed": {"image_models": ["pixels", model], "layers": ["last", 0, 1],
                                                   "tokens": "mean"}}, out=tmp_path / "images", **files)
    manifest = json.loads((tmp_path / "images" / "manifest.json").read_text())["models"]
    assert set(manifest) == {"pixels", model, f"{model}@layer0", f"{model}@layer1"}
    assert metrics["embed_images.models"] == 4
    # the tiny ViT of conftest: one block, so two hidden states; tokens 32 wide
    assert manifest[f"{model}@layer1"] == {"file": f"{stem}_layer1.npy", "dims": 32, "tokens": "mean", "model": model,
                                           "layer": 1, "hidden_states": 2}
    assert manifest[model]["file"] == f"{stem}.npy" and manifest[model]["layer"] == "last"
    assert manifest["pixels"]["layer"] is None and manifest["pixels"]["tokens"] is None
    read = image_models(tmp_path / "images", pd.read_parquet(where / "stimuli.parquet"))
    assert set(read) == {"pixels", stem, f"{stem}_layer0", f"{stem}_layer1"}
    assert not np.allclose(read[stem].matrix, read[f"{stem}_layer1"].matrix)  # the final layernorm
    layers = image_layers(tmp_path / "images")
    assert sorted(zip(layers["model"], layers["layer"].astype(str))) == [
        (stem, "last"), (f"{stem}_layer0", "0"), (f"{stem}_layer1", "1")]
    assert set(layers["network"]) == {model} and set(layers["hidden_states"]) == {2}
    with pytest.raises(NeurolatentError, match=r"embed\.layers: 2: untrained:.* has 2 hidden states"):
        run_stage("embed_images", {"embed": {"image_models": [model], "layers": [2]}}, out=tmp_path / "bad", **files)
    assert not (tmp_path / "bad").exists()
