"""The autoencoders and their training: the study's shapes, early stopping, resume, determinism, the split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from neurolatent.models import autoencoder, training


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
    return data, (lambda rows: data[rows])


def _fit(tmp_path, name, stop_after=None, key="toy", **train):
    data, load = _toy()
    settings = training.Settings(**{"batch_size": 16, **train})
    training.seed_everything(settings.seed)
    model = autoencoder.MLPAutoencoder(data.shape[1], [256, 3])
    history = training.train(model, load, np.arange(80), np.arange(80, 120), settings, tmp_path / name,
                             key=key, stop_after=stop_after)
    return model, history, load


def test_early_stopping_on_validation_loss_keeps_the_best_weights(tmp_path):
    model, history, load = _fit(tmp_path, "stop", epochs=300, patience=4, lr=0.01)
    assert history.stopped_early
    assert len(history.val_loss) == history.best_epoch + 1 + 4 < 300
    assert history.best_epoch == int(np.argmin(history.val_loss))
    # the training loss kept falling after the best epoch: stopping was on validation, not training
    assert history.train_loss[-1] < history.train_loss[history.best_epoch]
    assert training.mean_loss(model, load, np.arange(80, 120), 16, torch.device("cpu")) == pytest.approx(
        history.best_val, rel=1e-5)


def test_the_studys_rule_stops_on_the_last_batch_and_keeps_the_final_weights(tmp_path):
    model, history, load = _fit(tmp_path, "study", epochs=300, patience=4, lr=0.01, stop_on="last_batch")
    # the monitored loss is one mini-batch's, noisy: it stops although validation was still useful
    assert history.monitored != history.val_loss and history.stopped_early
    worst = int(np.argmin(history.monitored))
    assert len(history.monitored) == worst + 1 + 4
    # the model is left as training left it (the final epoch), which the metrics then describe
    assert history.best_epoch == len(history.val_loss) - 1
    assert training.mean_loss(model, load, np.arange(80, 120), 16, torch.device("cpu")) == pytest.approx(
        history.val_loss[-1], rel=1e-5)


def test_interrupted_training_resumes_to_the_same_bits(tmp_path):
    whole, history, _ = _fit(tmp_path, "whole", epochs=6, patience=100)
    _, partial, _ = _fit(tmp_path, "resumed", stop_after=2, epochs=6, patience=100)
    assert len(partial.train_loss) == 2
    # the resume point is one file, replaced whole each epoch
    assert [p.name for p in (tmp_path / "resumed").iterdir()] == [training.CHECKPOINT]
    resumed, history_resumed, _ = _fit(tmp_path, "resumed", epochs=6, patience=100)
    assert history_resumed.train_loss == history.train_loss and history_resumed.val_loss == history.val_loss
    for key, value in whole.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    # and a second fresh run gives the same bits: seeded init, seeded batch order, deterministic ops
    again, _, _ = _fit(tmp_path, "again", epochs=6, patience=100)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in whole.state_dict().items())


def test_a_checkpoint_of_other_params_is_not_resumed(tmp_path):
    """The key (training_key: architecture, settings, splits, data) guards the resume point: a
    checkpoint written under another key is ignored and training starts from epoch 1."""
    _fit(tmp_path, "ckpt", stop_after=2, epochs=6, patience=100, key="old")
    _, fresh, _ = _fit(tmp_path, "ckpt", epochs=3, patience=100, key="new")
    _, reference, _ = _fit(tmp_path, "reference", epochs=3, patience=100, key="new")
    assert fresh.train_loss == reference.train_loss and len(fresh.train_loss) == 3


def _damage(path, how):
    """A checkpoint spoiled in one of the ways a kill, a full disk or a foreign tool spoils it."""
    from safetensors.torch import load_file, save_file

    if how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "garbage":
        path.write_bytes(b"not a checkpoint")
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "no metadata":
        save_file(load_file(path), path)
    elif how == "bad json":
        save_file(load_file(path), path, metadata={"neurolatent": "{"})
    elif how == "missing tensors":
        from safetensors import safe_open

        with safe_open(path, "pt") as handle:
            meta = handle.metadata()
        tensors = {k: v for k, v in load_file(path).items() if not k.startswith("model.")}
        save_file(tensors, path, metadata=meta)
    elif how == "one wrong shape":
        from safetensors import safe_open

        with safe_open(path, "pt") as handle:
            meta = handle.metadata()
        tensors = load_file(path)
        last = sorted(k for k in tensors if k.startswith("model."))[-1]
        tensors[last] = tensors[last].reshape(-1)[:1].clone()
        save_file(tensors, path, metadata=meta)
    elif how == "wrong shapes":
        from safetensors import safe_open

        with safe_open(path, "pt") as handle:
            meta = handle.metadata()
        save_file({k: v.reshape(-1)[:1].clone() for k, v in load_file(path).items()}, path, metadata=meta)


@pytest.mark.parametrize("how", ["truncated", "garbage", "empty", "no metadata", "bad json", "missing tensors",
                                 "one wrong shape", "wrong shapes"])
def test_a_damaged_checkpoint_is_discarded_with_one_warning(tmp_path, caplog, how):
    _fit(tmp_path, "ckpt", stop_after=2, epochs=3, patience=100)
    _damage(tmp_path / "ckpt" / training.CHECKPOINT, how)
    with caplog.at_level("WARNING", logger="neurolatent.models.training"):
        _, history, _ = _fit(tmp_path, "ckpt", epochs=3, patience=100)
    _, reference, _ = _fit(tmp_path, "reference", epochs=3, patience=100)
    assert history.train_loss == reference.train_loss
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "unreadable checkpoint" in warnings[0] and "starts over" in warnings[0]
    assert str(tmp_path / "ckpt" / training.CHECKPOINT) in warnings[0] and "\n" not in warnings[0]


def test_a_finished_fit_leaves_no_resume_point(tmp_path):
    data, load = _toy()
    splits = {"train": np.arange(80), "val": np.arange(80, 120)}
    fit = training.fit_autoencoder({"kind": "mlp", "n_inputs": data.shape[1], "widths": [16, 3]}, load, splits,
                                   training.Settings(epochs=2, batch_size=16), tmp_path / "model",
                                   tmp_path / "ckpt", key="k")
    assert fit is not None and (tmp_path / "model" / "model.safetensors").is_file()
    assert not any((tmp_path / "ckpt").iterdir())


def test_the_key_changes_with_the_code_that_trains(tmp_path, monkeypatch):
    """A fix in the training code (tried: MSE -> L1 in autoencoder.py) must not resume the old run."""
    import shutil

    import neurolatent
    from neurolatent.pipeline import source

    copy = tmp_path / "packages"
    shutil.copytree(Path(neurolatent.__file__).parent, copy / "neurolatent")
    monkeypatch.setattr(source, "_PACKAGES", copy)
    before = source.source_digest("neurolatent.pipeline.stages.fmri_ae")
    file = copy / "neurolatent" / "models" / "autoencoder.py"
    file.write_text(file.read_text() + "\n# L1 now\n")
    after = source.source_digest("neurolatent.pipeline.stages.fmri_ae")
    assert before != after
    settings, config = training.Settings(), {"kind": "mlp"}
    data = tmp_path / "samples.npy"
    data.write_bytes(b"x")
    assert training.training_key(config, settings, [data], before) != training.training_key(config, settings, [data], after)


def test_split_is_subject_wise_and_keeps_images_together():
    index = pd.DataFrame({"subject": ["A"] * 6 + ["B"] * 2,
                          "image_name": ["x", "x", "y", "z", "w", "v", "x", "y"]})
    splits = training.split_rows(index, ["A"], ["B"], 0.4, seed=0)
    assert set(splits["test"]) == {6, 7}
    assert set(splits["train"]) | set(splits["val"]) == set(range(6)) and not set(splits["train"]) & set(splits["val"])
    val_images = set(index["image_name"][splits["val"]])
    assert not val_images & set(index["image_name"][splits["train"]])


def test_latent_pooling():
    latents = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    assert autoencoder.pool_latents(latents, "flatten").shape == (2, 12)
    np.testing.assert_allclose(autoencoder.pool_latents(latents, "avgpool")[0].numpy(), [1.5, 5.5, 9.5])


def test_device_batches_read_ahead_in_order_and_scale_uint8_on_the_device():
    """What the trainer is fed: each batch equal to reading it directly (uint8 pictures scaled to
    [0, 1] as float32, other dtypes cast), in order, whatever the read-ahead depth."""
    pictures = np.random.default_rng(0).integers(0, 256, size=(50, 3, 4, 4), dtype=np.uint8)
    read = lambda rows: pictures[rows]  # noqa: E731
    row_batches = training.batches(np.arange(50), 8, seed=3, epoch=1)
    for ahead in (1, 2, 5):
        fed = list(training.device_batches(read, row_batches, torch.device("cpu"), ahead=ahead))
        assert len(fed) == len(row_batches)
        for x, rows in zip(fed, row_batches):
            assert x.dtype == torch.float32 and torch.equal(x, torch.from_numpy(pictures[rows]).float() / 255.0)
    betas = np.random.default_rng(1).normal(size=(20, 7)).astype(np.float32)
    fed = list(training.device_batches(lambda rows: betas[rows], [np.arange(20)], torch.device("cpu")))
    assert torch.equal(fed[0], torch.from_numpy(betas))


def test_a_reading_error_reaches_the_trainer_and_stopping_early_ends_the_reader():
    import threading

    def read(rows):
        if rows[0] >= 16:
            raise OSError(5, "Input/output error", "samples.npy")
        return np.zeros((len(rows), 2), np.float32)

    fed = training.device_batches(read, [np.arange(i, i + 8) for i in range(0, 40, 8)], torch.device("cpu"))
    assert next(fed).shape == (8, 2) and next(fed).shape == (8, 2)
    with pytest.raises(OSError, match="Input/output error"):
        next(fed)
    endless = training.device_batches(lambda rows: np.zeros(1, np.float32), [np.arange(1)] * 1000, torch.device("cpu"))
    next(endless)
    endless.close()  # as when training is interrupted: the reader thread must not live on
    assert not [t for t in threading.enumerate() if t.name == "batch-reader"]


def test_the_cpu_path_has_no_autocast():
    assert not torch.is_autocast_enabled("cpu")
    with training.autocast(torch.device("cpu")):
        assert not torch.is_autocast_enabled("cpu") and not torch.is_autocast_enabled("cuda")
