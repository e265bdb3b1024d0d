"""Stimulus images: read as RGB (never OpenCV's BGR), optionally resized."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from neurolatent.errors import NeurolatentError
from neurolatent.science.constraints import Count, checked


def read_rgb(path: Path, size: int | None = None) -> np.ndarray:
    """An image file as RGB uint8 (H, W, 3), resized to size x size (bilinear) when given.

    16-bit images (PNG's ``I;16``, read by PIL as 32-bit ``I``) are scaled to 8 bits: PIL's own
    conversion clips them, turning every picture white."""
    try:
        with Image.open(path) as image:
            if image.mode in ("I", "I;16", "I;16B", "I;16L"):
                deep = np.asarray(image, dtype=np.float64)
                image = Image.fromarray(np.round(deep * 255.0 / 65535.0).clip(0, 255).astype(np.uint8))
            rgb = image.convert("RGB")
            if size is not None:
                rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
            return np.asarray(rgb, dtype=np.uint8)
    except (OSError, ValueError) as exc:
        raise NeurolatentError(f"{path}: not a readable image ({exc})") from None


@checked(size=Count)
def load_stimuli(stimuli_path: Path, raw_dir: Path, size: int) -> tuple[pd.DataFrame, np.ndarray]:
    """stimuli.parquet and its images: (n, 3, size, size) uint8 RGB, rows in the table's order."""
    stimuli = pd.read_parquet(stimuli_path)
    pictures = np.stack([read_rgb(Path(raw_dir) / rel, size).transpose(2, 0, 1) for rel in stimuli["image_path"]])
    return stimuli, pictures
