"""The image models whose features are compared with fMRI, one (n_images, d) matrix each.

- a transformers checkpoint, by hub name or local folder, through ``AutoModel`` and
  ``AutoImageProcessor.from_pretrained`` (for real data the study's
  ``google/vit-base-patch16-224-in21k``); tokens ``flat`` (the study: every token flattened,
  197 x 768 = 151,296 values for ViT-B/16), ``cls`` or ``mean``;
- ``untrained:<checkpoint>``: that architecture from its config with seeded random weights (the
  standard control: what structure does the architecture alone impose?);
- ``pixels``: the image downsampled, RGB (the low-level control);
- ``image_ae``: the image autoencoder's latents.

Images are read as RGB (the study fed OpenCV's BGR to a model trained on RGB). Checkpoint names
starting with ``resources/`` are looked up in the package's resources (a tiny ViT config ships
there so the demo's untrained control needs no download).
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from neurolatent.errors import NeurolatentError
from neurolatent.io.images import read_rgb
from neurolatent.models.autoencoder import load_model, pool_latents
from neurolatent.runtime import progress


def file_stem(model: str) -> str:
    """A model entry as a file name: ``untrained:google/vit-base`` -> ``untrained_google_vit-base``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_")


def resolve_checkpoint(name: str) -> str:
    """A local folder, a packaged resource (``resources/...``) or, otherwise, a hub name as given."""
    if Path(name).is_dir():
        return name
    if name.startswith("resources/"):
        packaged = resources.files("neurolatent") / name
        if packaged.is_dir():
            return str(packaged)
    return name


def load_transformer(name: str, untrained: bool, seed: int):
    """(model in eval mode, image processor) for a checkpoint; ``untrained``: seeded random weights."""
    from transformers import AutoConfig, AutoImageProcessor, AutoModel

    where = resolve_checkpoint(name)
    try:
        processor = AutoImageProcessor.from_pretrained(where)
        if untrained:
            torch.manual_seed(seed)
            model = AutoModel.from_config(AutoConfig.from_pretrained(where))
        else:
            model = AutoModel.from_pretrained(where)
    except OSError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NeurolatentError(
            f"embed.image_models: {name}: not a local folder and not loadable from the Hugging Face hub "
            f"({first}). Download it once where the hub is reachable (`hf download {name}`, it lands in "
            f"the cache under HF_HOME), copy that cache here, or give a folder saved with save_pretrained"
        ) from None
    return model.eval(), processor


def tokens_of(hidden: torch.Tensor, tokens: str) -> torch.Tensor:
    """last_hidden_state -> one vector per image. (n, T, D): flat T*D, cls token 0, or mean over
    tokens; conv maps (n, C, H, W): flat, or mean over space (no cls)."""
    if tokens == "flat":
        return hidden.reshape(len(hidden), -1)
    if hidden.ndim == 4:
        if tokens == "cls":
            raise NeurolatentError("embed.tokens: cls: this model's output is a feature map with no CLS token")
        return hidden.flatten(2).mean(dim=2)
    return hidden[:, 0] if tokens == "cls" else hidden.mean(dim=1)


def embed_transformer(paths: list[Path], name: str, tokens: str = "cls", batch_size: int = 16, seed: int = 0,
                      device: str = "cpu") -> np.ndarray:
    """(n_images, d) float32 from a transformers model; images read as RGB, batched, no grad.

    ``name``: a checkpoint (hub name or folder), or ``untrained:<checkpoint>`` for its architecture
    with weights seeded by ``seed``; ``tokens`` as :func:`tokens_of`.
    """
    untrained = name.startswith("untrained:")
    model, processor = load_transformer(name.removeprefix("untrained:"), untrained, seed)
    model.to(device)
    parts = []
    with torch.inference_mode():
        for start in progress(range(0, len(paths), batch_size), desc=name, unit="batch"):
            images = [Image.fromarray(read_rgb(p)) for p in paths[start:start + batch_size]]
            inputs = processor(images=images, return_tensors="pt").to(device)
            hidden = model(**inputs).last_hidden_state
            parts.append(tokens_of(hidden, tokens).float().cpu().numpy())
    return np.concatenate(parts)


def embed_pixels(paths: list[Path], size: int) -> np.ndarray:
    """(n_images, size * size * 3) float32 in [0, 1]."""
    return np.stack([read_rgb(p, size).reshape(-1) for p in paths]).astype(np.float32) / 255.0


def embed_image_ae(paths: list[Path], model_dir: Path, pooling: str = "avgpool", batch_size: int = 16,
                   device: str = "cpu") -> np.ndarray:
    """(n_images, d) float32: the image AE's encoder output, pooled (``flatten`` or ``avgpool``)."""
    model, config = load_model(model_dir, device)
    size = config["input_shape"][-1]
    parts = []
    with torch.inference_mode():
        for start in range(0, len(paths), batch_size):
            batch = np.stack([read_rgb(p, size).transpose(2, 0, 1) for p in paths[start:start + batch_size]])
            latents = model.encode(torch.from_numpy(batch).float().div_(255.0).to(device))
            parts.append(pool_latents(latents, pooling).cpu().numpy())
    return np.concatenate(parts)
