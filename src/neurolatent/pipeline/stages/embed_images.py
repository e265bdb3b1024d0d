"""Stage ``embed_images``: one matrix per entry of ``embed.image_models``, rows in ``stimuli.parquet``
order (see :mod:`neurolatent.models.image_models` for what each entry is).

A transformer gives one entry per ``embed.layers``: ``last`` under the model's own name, hidden
state k as ``<model>@layer<k>`` (file and downstream name ``<model stem>_layer<k>``); pixels and
image_ae have no layers.

Outputs: ``data/embeddings/images/<entry>.npy`` (float32) and ``manifest.json`` (entry -> file,
dims, tokens, model: the ``embed.image_models`` entry, layer: ``last``, k or null, hidden_states:
how many the model has, null when not computed).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from neurolatent.errors import NeurolatentError
from neurolatent.io.files import atomic_dir, save_npy, write_json
from neurolatent.models.image_models import embed_image_ae, embed_pixels, embed_transformer, file_stem, layer_name
from neurolatent.pipeline.numerics import torch_device
from neurolatent.pipeline.progress import progress


def _embed(name: str, embed: SimpleNamespace, images: list[Path], image_ae: Path, device: str
           ) -> dict[str, tuple[np.ndarray, dict]]:
    """{entry: (matrix, manifest fields)} of one ``embed.image_models`` entry: one entry, or a
    transformer's one per ``embed.layers`` (:func:`layer_name`)."""
    if name in ("pixels", "image_ae"):
        matrix = (embed_pixels(images, embed.pixels_size) if name == "pixels"
                  else embed_image_ae(images, image_ae, embed.pooling, embed.batch_size, device))
        return {name: (matrix, {"model": name, "tokens": None, "layer": None, "hidden_states": None})}
    features, count = embed_transformer(images, name, embed.tokens, embed.batch_size, embed.seed, device, embed.layers,
                                        progress)
    return {layer_name(name, layer): (matrix, {"model": name, "tokens": embed.tokens, "layer": layer,
                                               "hidden_states": count})
            for layer, matrix in features.items()}


def run(params: SimpleNamespace, paths: SimpleNamespace) -> dict:
    """The stage on its declared ``params`` and ``paths`` (the registry's files); returns its metrics."""
    embed = params.embed
    device = torch_device(params.compute.device, params.compute.threads)
    stimuli = pd.read_parquet(paths.stimuli)
    images = [Path(paths.raw) / rel for rel in stimuli["image_path"]]
    manifest, stems = {}, {}
    with atomic_dir(Path(paths.out)) as out:
        for name in embed.image_models:
            for entry, (matrix, fields) in _embed(name, embed, images, paths.image_ae, device).items():
                stem = file_stem(entry)
                if stem in stems:
                    raise NeurolatentError(f"embed.image_models: {stems[stem]} and {entry} would share the file "
                                           f"{stem}.npy (and the name {stem} downstream): rename one")
                stems[stem] = entry
                save_npy(matrix.astype(np.float32), out / f"{stem}.npy")
                manifest[entry] = {"file": f"{stem}.npy", "dims": int(matrix.shape[1]), **fields}
        write_json({"rows": len(stimuli), "models": manifest}, out / "manifest.json")
    return {"embed_images.images": len(stimuli), "embed_images.models": len(manifest)}
