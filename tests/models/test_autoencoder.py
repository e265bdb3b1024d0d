"""The autoencoders: shapes through encoder and decoder, save and load to the same outputs, pooling,
how a batch enters a network, and a bad argument named in one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurolatent.errors import NeurolatentError
from neurolatent.models.autoencoder import (ConvAutoencoder, MLPAutoencoder, build, decode_latents, encode_pictures,
                                            load_model, network_input, pool_latents, save_model)


def test_conv_and_mlp_shapes():
    torch.manual_seed(0)
    conv = ConvAutoencoder([3, 4, 5])
    x = torch.rand(2, 3, 16, 16)
    assert conv.encode(x).shape == (2, 5, 4, 4) and conv(x).shape == x.shape
    assert 0 <= float(conv(x).min()) and float(conv(x).max()) <= 1  # sigmoid output
    volume = ConvAutoencoder([1, 2], dims=3, output="linear")
    assert volume(torch.rand(1, 1, 8, 8, 8)).shape == (1, 1, 8, 8, 8)
    mlp = MLPAutoencoder(10, [6, 3])
    assert mlp.encode(torch.rand(4, 10)).shape == (4, 3) and mlp(torch.rand(4, 10)).shape == (4, 10)


def test_saved_model_loads_to_the_same_outputs(tmp_path):
    torch.manual_seed(1)
    config = {"kind": "conv2d", "channels": [3, 4], "output": "sigmoid"}
    model = build(config)
    save_model(model, config, tmp_path / "ae")
    loaded, read_config = load_model(tmp_path / "ae")
    pictures = np.random.default_rng(0).integers(0, 256, size=(3, 3, 8, 8), dtype=np.uint8)
    assert read_config == config and not loaded.training
    latents = encode_pictures(loaded, pictures, batch_size=2)
    assert torch.equal(latents, encode_pictures(model.eval(), pictures, batch_size=2))
    decoded = decode_latents(loaded, latents.reshape(3, -1).numpy(), [4, 4, 4])
    assert decoded.shape == (3, 3, 8, 8) and decoded.dtype == np.float32
    with pytest.raises(NeurolatentError, match="config.json: missing"):
        load_model(tmp_path / "nothing")


def test_pooling_and_network_input():
    latents = torch.arange(16.0).reshape(1, 2, 2, 4)
    assert pool_latents(latents, "flatten").shape == (1, 16)
    assert pool_latents(latents, "avgpool").tolist() == [[3.5, 11.5]]
    assert pool_latents(torch.ones(2, 5), "avgpool").shape == (2, 5)  # vectors as they are
    batch = network_input(np.array([[0, 255]], dtype=np.uint8))
    assert batch.dtype == torch.float32 and batch.tolist() == [[0.0, 1.0]]


@pytest.mark.parametrize("call, message", [
    (lambda: pool_latents(torch.ones(1, 2, 2, 2), "maxpool"), "pooling: Input should be 'flatten' or 'avgpool'"),
    (lambda: ConvAutoencoder([3, 4], dims=4), "dims: Input should be 2 or 3"),
    (lambda: encode_pictures(None, np.zeros((1, 3, 8, 8), np.uint8), batch_size=0), "batch_size: Input should be"),
])
def test_a_bad_argument_is_named(call, message):
    with pytest.raises(ValueError, match=f"^{message}"):
        call()
