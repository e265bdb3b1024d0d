"""Autoencoders and embeddings: the study's shapes, early stopping, resume, determinism, the stages."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from neurolatent import autoencoder
from neurolatent.config import validate_params
from neurolatent.embed_fmri import run_embed_fmri
from neurolatent.embed_images import embed_transformer, load_transformer, run_embed_images
from neurolatent.errors import NeurolatentError
from neurolatent.fmri import run_fmri
from neurolatent.autoencoder import split_rows
from neurolatent.fmri_ae import FmriSamples, run_fmri_ae
from neurolatent.image_ae import read_rgb, run_image_ae
from neurolatent.trials import run_trials


def params(**sections):
    return validate_params(sections)


def test_the_studys_network_maps_672_px_to_256x21x21():
    model = autoencoder.ConvAutoencoder([3, 16, 32, 64, 128, 256])
    convs = [m for m in model.encoder if isinstance(m, torch.nn.Conv2d)]
    deconvs = [m for m in model.decoder if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(convs) == len(deconvs) == 5
    assert all(c.kernel_size == (3, 3) and c.stride == (2, 2) and c.padding == (1, 1) for c in convs)
    assert all(d.output_padding == (1, 1) for d in deconvs)
    assert isinstance(model.decoder[-1], torch.nn.Sigmoid)
    assert sum(isinstance(m, torch.nn.ReLU) for m in model.decoder) == 4
    with torch.inference_mode():
        x = torch.rand(1, 3, 672, 672)
        assert model.encode(x).shape == (1, 256, 21, 21)
        assert model(x).shape == x.shape


def test_volume_and_betas_variants():
    conv3d = autoencoder.build({"kind": "conv3d", "channels": [1, 4, 8], "output": "linear"})
    with torch.inference_mode():
        assert conv3d.encode(torch.zeros(2, 1, 16, 12, 8)).shape == (2, 8, 4, 3, 2)
        assert conv3d(torch.zeros(2, 1, 16, 12, 8)).shape == (2, 1, 16, 12, 8)
    mlp = autoencoder.build({"kind": "mlp", "n_inputs": 50, "widths": [20, 5]})
    with torch.inference_mode():
        assert mlp.encode(torch.zeros(3, 50)).shape == (3, 5) and mlp(torch.zeros(3, 50)).shape == (3, 50)


def _toy(seed=0, n=120, d=40):
    """Samples on a 3-d subspace plus noise: learnable, and overfittable with a wide MLP."""
    rng = np.random.default_rng(seed)
    data = (rng.normal(size=(n, 3)) @ rng.normal(size=(3, d)) + 0.5 * rng.normal(size=(n, d))).astype(np.float32)
    return data, (lambda rows: torch.from_numpy(data[rows]))


def _fit(tmp_path, name, stop_after=None, key="toy", **train):
    data, load = _toy()
    train_params = params(fmri_ae={"train": {"batch_size": 16, **train}}).fmri_ae.train
    autoencoder.seed_everything(train_params.seed)
    model = autoencoder.MLPAutoencoder(data.shape[1], [256, 3])
    history = autoencoder.train(model, load, np.arange(80), np.arange(80, 120), train_params, tmp_path / name,
                                key=key, stop_after=stop_after)
    return model, history, load


def test_early_stopping_on_validation_loss_keeps_the_best_weights(tmp_path):
    model, history, load = _fit(tmp_path, "stop", epochs=300, patience=4, lr=0.01)
    assert history.stopped_early
    assert len(history.val_loss) == history.best_epoch + 1 + 4 < 300
    assert history.best_epoch == int(np.argmin(history.val_loss))
    # the training loss kept falling after the best epoch: stopping was on validation, not training
    assert history.train_loss[-1] < history.train_loss[history.best_epoch]
    assert autoencoder.mean_loss(model, load, np.arange(80, 120), 16, torch.device("cpu")) == pytest.approx(
        history.best_val, rel=1e-5)


def test_interrupted_training_resumes_to_the_same_bits(tmp_path):
    whole, history, _ = _fit(tmp_path, "whole", epochs=6, patience=100)
    _, partial, _ = _fit(tmp_path, "resumed", stop_after=2, epochs=6, patience=100)
    assert len(partial.train_loss) == 2
    assert (tmp_path / "resumed" / "last.safetensors").is_file() and (tmp_path / "resumed" / "last.json").is_file()
    resumed, history_resumed, _ = _fit(tmp_path, "resumed", epochs=6, patience=100)
    assert history_resumed.train_loss == history.train_loss and history_resumed.val_loss == history.val_loss
    for key, value in whole.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    # and a second fresh run gives the same bits: seeded init, seeded batch order, deterministic ops
    again, _, _ = _fit(tmp_path, "again", epochs=6, patience=100)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in whole.state_dict().items())


def test_a_checkpoint_of_other_params_is_not_resumed(tmp_path):
    """The key (training_key: architecture, params, splits, data) guards the resume point: a
    checkpoint written under another key is ignored and training starts from epoch 1."""
    _fit(tmp_path, "ckpt", stop_after=2, epochs=6, patience=100, key="old")
    _, fresh, _ = _fit(tmp_path, "ckpt", epochs=3, patience=100, key="new")
    _, reference, _ = _fit(tmp_path, "reference", epochs=3, patience=100, key="new")
    assert fresh.train_loss == reference.train_loss and len(fresh.train_loss) == 3


def test_split_is_subject_wise_and_keeps_images_together():
    index = pd.DataFrame({"subject": ["A"] * 6 + ["B"] * 2,
                          "image_name": ["x", "x", "y", "z", "w", "v", "x", "y"]})
    splits = split_rows(index, ["A"], ["B"], 0.4, seed=0)
    assert set(splits["test"]) == {6, 7}
    assert set(splits["train"]) | set(splits["val"]) == set(range(6)) and not set(splits["train"]) & set(splits["val"])
    val_images = set(index["image_name"][splits["val"]])
    assert not val_images & set(index["image_name"][splits["train"]])


@pytest.fixture(scope="module")
def stage_inputs(small_dataset, tmp_path_factory):
    where = tmp_path_factory.mktemp("ae")
    run_trials(small_dataset[0], where / "trials.parquet", where / "stimuli.parquet")
    return small_dataset, where


@pytest.mark.parametrize("method,extra", [("betas", {}), ("volume", {"channels": [1, 4, 8]}),
                                          ("rendered", {"channels": [3, 8, 16]})])
def test_fmri_ae_and_embed_fmri_stages(stage_inputs, tmp_path, method, extra):
    (raw, truth), where = stage_inputs
    p = params(preprocess={"method": method, "jobs": 1, "render": {"size": 32, "engine": "fast"}},
               fmri_ae={"train_subjects": ["CSI1"], "test_subjects": ["CSI4"], **extra,
                        "train": {"epochs": 2, "batch_size": 8}},
               embed={"pooling": "flatten"})
    run_fmri(p.preprocess, raw, truth, where / "trials.parquet", tmp_path / "fmri")
    metrics = run_fmri_ae(p.fmri_ae, tmp_path / "fmri", tmp_path / "model", tmp_path / "m.json",
                          tmp_path / "loss.csv", tmp_path / "ckpt")
    assert metrics["epochs"] == 2 and metrics["n_test"] == 74 and np.isfinite(metrics["test_loss"])
    saved = json.loads((tmp_path / "m.json").read_text())
    assert saved["fmri_ae.n_train"] + saved["fmri_ae.n_val"] == 74
    assert pd.read_csv(tmp_path / "loss.csv").columns.tolist() == ["epoch", "train_loss", "val_loss"]
    assert set(load_file(tmp_path / "model" / "model.safetensors")) and (tmp_path / "model" / "config.json").is_file()
    summary = run_embed_fmri(p.embed, p.preprocess, tmp_path / "fmri", tmp_path / "model", where / "trials.parquet",
                             where / "stimuli.parquet", tmp_path / "fmri.npy", tmp_path / "fmri_index.parquet")
    embeddings, index = np.load(tmp_path / "fmri.npy"), pd.read_parquet(tmp_path / "fmri_index.parquet")
    trials = pd.read_parquet(where / "trials.parquet")
    assert len(index) == len(trials.drop_duplicates(["subject", "image_name"])) == len(embeddings) == summary["rows"]
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
        expected = model.encode(data.load(trial_rows)).reshape(2, -1).mean(dim=0).numpy()
    np.testing.assert_allclose(embeddings[row], expected, rtol=1e-5, atol=1e-6)


def test_rendered_latent_pooling(stage_inputs, tmp_path):
    from neurolatent.embed_fmri import pool

    latents = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    assert pool(latents, "flatten").shape == (2, 12)
    np.testing.assert_allclose(pool(latents, "avgpool")[0].numpy(), [1.5, 5.5, 9.5])


@pytest.fixture(scope="module")
def tiny_vit(tmp_path_factory):
    """A tiny ViT with random weights, saved locally by save_pretrained: the real loading path."""
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    folder = tmp_path_factory.mktemp("tiny-vit")
    torch.manual_seed(3)
    ViTModel(ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                       image_size=32, patch_size=8)).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return str(folder)


def test_embed_images_stage(stage_inputs, tiny_vit, tmp_path):
    (raw, _), where = stage_inputs
    p = params(image_ae={"size": 32, "channels": [3, 8, 16], "train": {"epochs": 2, "batch_size": 8}},
               embed={"image_models": [tiny_vit, f"untrained:{tiny_vit}", "pixels", "image_ae"], "tokens": "flat"})
    run_image_ae(p.image_ae, where / "stimuli.parquet", raw, tmp_path / "image_ae", tmp_path / "m.json",
                 tmp_path / "loss.csv", tmp_path / "ckpt")
    run_embed_images(p.embed, where / "stimuli.parquet", raw, tmp_path / "image_ae", tmp_path / "images")
    manifest = json.loads((tmp_path / "images" / "manifest.json").read_text())
    n = len(pd.read_parquet(where / "stimuli.parquet"))
    shapes = {name: np.load(tmp_path / "images" / entry["file"]).shape for name, entry in manifest["models"].items()}
    assert shapes[tiny_vit] == (n, (16 + 1) * 32)  # flat: 4x4 patches + CLS, 32 wide
    assert shapes["pixels"] == (n, 16 * 16 * 3) and shapes["image_ae"] == (n, 16)  # avgpool: the latent channels
    trained = np.load(tmp_path / "images" / manifest["models"][tiny_vit]["file"])
    untrained = np.load(tmp_path / "images" / manifest["models"][f"untrained:{tiny_vit}"]["file"])
    assert not np.allclose(trained, untrained)


def test_images_are_fed_as_rgb(stage_inputs, tiny_vit):
    """The stage's embedding equals the model on the RGB picture and differs from it on BGR:
    the study's OpenCV channel order would fail here."""
    from PIL import Image

    (raw, _), where = stage_inputs
    stimuli = pd.read_parquet(where / "stimuli.parquet")
    path = raw / stimuli["image_path"].iloc[0]
    ours = embed_transformer([path], tiny_vit, params(embed={"tokens": "cls"}).embed, torch.device("cpu"))[0]
    model, processor = load_transformer(tiny_vit, untrained=False, seed=0)
    rgb = read_rgb(path)
    with torch.inference_mode():
        def direct(array):
            return model(**processor(images=[Image.fromarray(array)], return_tensors="pt")).last_hidden_state[0, 0].numpy()
        np.testing.assert_allclose(ours, direct(rgb), rtol=1e-5, atol=1e-6)
        assert not np.allclose(ours, direct(rgb[..., ::-1].copy()), atol=1e-3)


def test_untrained_control_is_seeded(tiny_vit):
    first, _ = load_transformer(tiny_vit, untrained=True, seed=5)
    second, _ = load_transformer(tiny_vit, untrained=True, seed=5)
    third, _ = load_transformer(tiny_vit, untrained=True, seed=6)
    a, b, c = (next(m.parameters()).detach() for m in (first, second, third))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_unreachable_checkpoint_says_how_to_fix_it(monkeypatch, tmp_path):
    """No hub here: offline mode makes the failure immediate instead of waiting on network timeouts
    (huggingface_hub reads HF_HUB_OFFLINE at import, hence the constant too)."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    with pytest.raises(NeurolatentError, match="hf download google/vit-base-patch16-224-in21k") as caught:
        load_transformer("google/vit-base-patch16-224-in21k", untrained=False, seed=0)
    assert "\n" not in str(caught.value)
