"""Stage ``embed_images``: one matrix per entry of ``embed.image_models``, rows in ``stimuli.parquet``
order (see :mod:`neurolatent.models.image_models` for what each entry is).

Outputs: ``data/embeddings/images/<model>.npy`` (float32) and ``manifest.json`` (model -> file,
dims, tokens).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from neurolatent.io.files import atomic_dir, save_npy, write_json
from neurolatent.models.image_models import embed_image_ae, embed_pixels, embed_transformer, file_stem
from neurolatent.runtime import torch_device


def run(params: SimpleNamespace, paths: SimpleNamespace) -> dict:
    embed = params.embed
    device = torch_device(params.compute.device, params.compute.threads)
    stimuli = pd.read_parquet(paths.stimuli)
    images = [Path(paths.raw) / rel for rel in stimuli["image_path"]]
    manifest = {}
    with atomic_dir(Path(paths.out)) as out:
        for name in embed.image_models:
            if name == "pixels":
                matrix = embed_pixels(images, embed.pixels_size)
            elif name == "image_ae":
                matrix = embed_image_ae(images, paths.image_ae, embed.pooling, embed.batch_size, device)
            else:
                matrix = embed_transformer(images, name, embed.tokens, embed.batch_size, embed.seed, device)
            save_npy(matrix.astype(np.float32), out / f"{file_stem(name)}.npy")
            manifest[name] = {"file": f"{file_stem(name)}.npy", "dims": int(matrix.shape[1]),
                              "tokens": embed.tokens if name not in ("pixels", "image_ae") else None}
        write_json({"rows": len(stimuli), "models": manifest}, out / "manifest.json")
    return {"embed_images.images": len(stimuli), "embed_images.models": len(manifest)}
