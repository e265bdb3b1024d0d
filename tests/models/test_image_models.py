"""Image models: the real transformers loading path (a tiny ViT saved locally), RGB input, the seeded
untrained control, and the one-line error for a checkpoint that cannot be had offline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurolatent.errors import NeurolatentError
from neurolatent.io.images import read_rgb
from neurolatent.models.image_models import embed_transformer, load_transformer


def test_images_are_fed_as_rgb(small_dataset, tiny_vit):
    """The stage's embedding equals the model on the RGB picture and differs from it on BGR:
    the study's OpenCV channel order would fail here."""
    from PIL import Image

    raw, _ = small_dataset
    path = next((raw / "BOLD5000_Stimuli").rglob("*.jpg"))
    ours = embed_transformer([path], tiny_vit, tokens="cls")[0]
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
