"""The image models whose features are compared with fMRI, one (n_images, d) matrix each.

- a transformers checkpoint, by hub name or local folder, through ``AutoModel`` and
  ``AutoImageProcessor.from_pretrained`` (for real data the study's
  ``google/vit-base-patch16-224-in21k``); tokens ``flat`` (the study: every token flattened,
  197 x 768 = 151,296 values for ViT-B/16), ``cls`` or ``mean``;
- ``untrained:<checkpoint>``: that architecture from its config with seeded random weights (the
  standard control: what structure does the architecture alone impose?);
- ``pixels``: the image downsampled, RGB (the low-level control);
- ``image_ae``: the image autoencoder's latents.

A transformer gives one matrix per entry of ``embed.layers``, all from one forward pass: ``last``
(``last_hidden_state``) or a hidden state by index; each is an image model of its own downstream
(:func:`layer_name`).

Images are read as RGB (the study fed OpenCV's BGR to a model trained on RGB). Checkpoint names
starting with ``resources/`` are looked up in the package's resources (a tiny ViT config ships
there so the demo's untrained control needs no download).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image

from neurolatent.errors import NeurolatentError
from neurolatent.io.images import read_rgb
from neurolatent.models.autoencoder import load_model, network_input, pool_latents
from neurolatent.science.constraints import Count, Seed, checked


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


def layer_name(model: str, layer: str | int) -> str:
    """The image-model entry of one layer of ``model``: ``last`` keeps the model's own name (the
    study's representation), hidden state ``k`` is ``<model>@layer<k>``."""
    return model if layer == "last" else f"{model}@layer{layer}"


@checked(tokens=Literal["flat", "cls", "mean"], batch_size=Count, seed=Seed)
def embed_transformer(paths: list[Path], name: str, tokens: str = "cls", batch_size: int = 16, seed: int = 0,
                      device: str = "cpu", layers: Sequence[str | int] = ("last",),
                      progress: Callable[..., Iterable] | None = None
                      ) -> tuple[dict[str | int, np.ndarray], int | None]:
    """({layer: (n_images, d) float32}, number of hidden states) from a transformers model; images
    read as RGB, batched, no grad, one forward pass for every layer.

    ``name``: a checkpoint (hub name or folder), or ``untrained:<checkpoint>`` for its architecture
    with weights seeded by ``seed``; ``tokens`` as :func:`tokens_of`; ``layers``: ``last``
    (``last_hidden_state``, after the final layernorm) and/or indices into ``hidden_states``
    (0 = the embeddings, k = after block k), asked for (``output_hidden_states``) only when an
    index is given; the number of hidden states is None then. ``progress`` wraps the batches'
    iterable (tqdm-like: ``desc``, ``unit``), or None.
    """
    untrained = name.startswith("untrained:")
    indices = [layer for layer in layers if layer != "last"]
    model, processor = load_transformer(name.removeprefix("untrained:"), untrained, seed)
    model.to(device)
    parts: dict[str | int, list[np.ndarray]] = {layer: [] for layer in layers}
    count = None
    with torch.inference_mode():
        starts = range(0, len(paths), batch_size)
        for start in starts if progress is None else progress(starts, desc=name, unit="batch"):
            images = [Image.fromarray(read_rgb(p)) for p in paths[start:start + batch_size]]
            inputs = processor(images=images, return_tensors="pt").to(device)
            outputs = model(**inputs, output_hidden_states=True) if indices else model(**inputs)
            if indices and count is None:
                count = len(outputs.hidden_states or ())
                beyond = [k for k in indices if not 0 <= k < count]
                if beyond:
                    which = f" (0 = the embeddings, ..., {count - 1} = after its last block)" if count else ""
                    raise NeurolatentError(f"embed.layers: {beyond[0]}: {name} has {count} hidden states{which}")
            for layer, own in parts.items():
                hidden = outputs.last_hidden_state if layer == "last" else outputs.hidden_states[layer]
                own.append(tokens_of(hidden, tokens).float().cpu().numpy())
    return {layer: np.concatenate(own) for layer, own in parts.items()}, count


@checked(size=Count)
def embed_pixels(paths: list[Path], size: int) -> np.ndarray:
    """(n_images, size * size * 3) float32 in [0, 1]."""
    return network_input(np.stack([read_rgb(p, size).reshape(-1) for p in paths])).numpy()


@checked(pooling=Literal["flatten", "avgpool"], batch_size=Count)
def embed_image_ae(paths: list[Path], model_dir: Path, pooling: str = "avgpool", batch_size: int = 16,
                   device: str = "cpu") -> np.ndarray:
    """(n_images, d) float32: the image AE's encoder output, pooled (``flatten`` or ``avgpool``)."""
    model, config = load_model(model_dir, device)
    size = config["input_shape"][-1]
    parts = []
    with torch.inference_mode():
        for start in range(0, len(paths), batch_size):
            batch = np.stack([read_rgb(p, size).transpose(2, 0, 1) for p in paths[start:start + batch_size]])
            latents = model.encode(network_input(batch).to(device))
            parts.append(pool_latents(latents, pooling).cpu().numpy())
    return np.concatenate(parts)
