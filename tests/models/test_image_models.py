"""Image models: the real transformers loading path (a tiny ViT saved locally), RGB input, the seeded
untrained control, hidden states by layer, and the one-line error for a checkpoint that cannot be had
offline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurolatent.errors import NeurolatentError
from neurolatent.io.images import read_rgb
from neurolatent.models.image_models import embed_transformer, layer_name, load_transformer


def test_images_are_fed_as_rgb(small_dataset, tiny_vit):
    """The stage's embedding equals the model on the RGB picture and differs from it on BGR:
    the study's OpenCV channel order would fail here."""
    from PIL import Image

    raw, _ = small_dataset
    path = next((raw / "BOLD5000_Stimuli").rglob("*.jpg"))
    ours = embed_transformer([path], tiny_vit, tokens="cls")[0]["last"][0]
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


def _pictures(folder, sizes=(40, 56, 64)):
    """Small random RGB PNGs of different sizes (the processor resizes them)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i, size in enumerate(sizes):
        paths.append(folder / f"picture{i}.png")
        Image.fromarray(rng.integers(0, 256, (size, size + 8, 3), dtype=np.uint8)).save(paths[-1])
    return paths


@pytest.mark.parametrize("tokens", ["cls", "mean", "flat"])
def test_each_layer_is_the_models_hidden_state(tmp_path, tokens):
    """The packaged tiny ViT (2 blocks: 3 hidden states), untrained: layer k is exactly
    hidden_states[k] of output_hidden_states, last is last_hidden_state, tokenised alike; batches of
    2 over 3 pictures, all layers from one call."""
    from PIL import Image

    paths = _pictures(tmp_path)
    model, processor = load_transformer("resources/vit-tiny", untrained=True, seed=4)
    with torch.inference_mode():
        inputs = processor(images=[Image.fromarray(read_rgb(p)) for p in paths], return_tensors="pt")
        direct = model(**inputs, output_hidden_states=True)
    assert len(direct.hidden_states) == 3

    def tokenised(hidden):
        chosen = {"cls": hidden[:, 0], "mean": hidden.mean(dim=1), "flat": hidden.reshape(len(hidden), -1)}
        return chosen[tokens].numpy()

    features, count = embed_transformer(paths, "untrained:resources/vit-tiny", tokens, batch_size=2, seed=4,
                                        layers=("last", 0, 1, 2))
    assert count == 3 and list(features) == ["last", 0, 1, 2]
    for layer, matrix in features.items():
        hidden = direct.last_hidden_state if layer == "last" else direct.hidden_states[layer]
        assert matrix.dtype == np.float32 and matrix.shape == (3, tokenised(hidden).shape[1])
        np.testing.assert_allclose(matrix, tokenised(hidden), rtol=1e-5, atol=1e-5)
    # the layers are distinct representations: the final layernorm separates last from layer 2
    assert not np.allclose(features["last"], features[2], atol=1e-3)
    assert not np.allclose(features[0], features[1], atol=1e-3)
    # last alone: no hidden states asked for, the same matrix
    alone, none = embed_transformer(paths, "untrained:resources/vit-tiny", tokens, batch_size=2, seed=4)
    assert none is None and list(alone) == ["last"]
    np.testing.assert_array_equal(alone["last"], features["last"])


def test_a_layer_beyond_the_model_names_the_key(tmp_path):
    with pytest.raises(NeurolatentError, match=r"embed\.layers: 3: untrained:resources/vit-tiny has 3 hidden "
                                               r"states \(0 = the embeddings, \.\.\., 2 = after its last block\)"):
        embed_transformer(_pictures(tmp_path, (32,)), "untrained:resources/vit-tiny", layers=("last", 1, 3))


def test_layer_names():
    assert layer_name("untrained:resources/vit-tiny", "last") == "untrained:resources/vit-tiny"
    assert layer_name("google/vit-base-patch16-224-in21k", 4) == "google/vit-base-patch16-224-in21k@layer4"
