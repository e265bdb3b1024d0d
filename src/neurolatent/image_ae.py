"""Stage ``image_ae``: a conv autoencoder on the stimulus images (the study's proposed remedy, and
the decoder that turns predicted latents into pictures in ``stitch``).

Images are read as RGB, resized to ``image_ae.size`` (bilinear) and scaled to [0, 1]; the
network is :class:`neurolatent.autoencoder.ConvAutoencoder` (2D, Sigmoid output). Images are split
into training and validation by ``image_ae.train.val_fraction``; there is no test split (``stitch``
holds out its own test stimuli, which the AE never sees as targets of a mapping).

Outputs: ``models/image_ae/``, ``metrics/image_ae.json``, ``plots/image_ae_loss.csv``; MLflow gets
the per-epoch losses and a reconstruction figure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from neurolatent.config import ImageAEParams
from neurolatent.errors import NeurolatentError
from neurolatent.autoencoder import fit_autoencoder, split_rows, training_key


def read_rgb(path: Path, size: int | None = None) -> np.ndarray:
    """An image file as RGB uint8 (H, W, 3), resized to size x size when given."""
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
            if size is not None:
                rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
            return np.asarray(rgb, dtype=np.uint8)
    except (OSError, ValueError) as exc:
        raise NeurolatentError(f"{path}: not a readable image ({exc})") from None


def load_stimuli(stimuli_path: Path, raw_dir: Path, size: int) -> tuple[pd.DataFrame, np.ndarray]:
    """stimuli.parquet and its images: (n, 3, size, size) uint8 RGB, rows in the table's order."""
    stimuli = pd.read_parquet(stimuli_path)
    pictures = np.stack([read_rgb(Path(raw_dir) / rel, size).transpose(2, 0, 1) for rel in stimuli["image_path"]])
    return stimuli, pictures


def run_image_ae(params: ImageAEParams, stimuli_path: Path, raw_dir: Path, model_dir: Path, metrics_json: Path,
                 plots_csv: Path, checkpoints: Path, device: str = "cpu", stop_after: int | None = None) -> dict | None:
    """The stage; see the module docstring."""
    stimuli, pictures = load_stimuli(stimuli_path, raw_dir, params.size)

    def load(rows: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(pictures[rows]).float().div_(255.0)

    index = pd.DataFrame({"subject": "images", "image_name": stimuli["image_name"]})
    splits = split_rows(index, ["images"], [], params.train.val_fraction, params.train.seed)
    config = {"kind": "conv2d", "channels": list(params.channels), "output": "sigmoid",
              "input_shape": [3, params.size, params.size]}
    key = training_key(config, params.train, [Path(stimuli_path)], str(params.size))
    return fit_autoencoder("image_ae", config, load, splits, params.train, model_dir, checkpoints, key,
                           plots_csv, metrics_json, device, stop_after)
