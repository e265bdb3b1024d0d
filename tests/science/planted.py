"""Planted data shared by the mapping and stitching tests: the synthetic generator's features of
procedurally drawn images, and voxel responses planted from them at a set SNR."""

from __future__ import annotations

import numpy as np

from neurolatent.science.stats import zscore
from neurolatent.science.synthetic import draw_image, image_features, planted_patterns

N_IMAGES = 120


def planted_features() -> np.ndarray:
    """The synthetic generator's planted features of procedurally drawn images, (120, 18)."""
    return zscore(np.stack([image_features(draw_image(f"s{i}.jpg", ("coco", "imagenet", "scenes")[i % 3], 64))
                            for i in range(N_IMAGES)]))


def responses(features: np.ndarray, snr: float, seed: int, voxels: int = 300) -> np.ndarray:
    """(n_images, voxels): ``snr`` x planted patterns of ``features`` + unit noise."""
    rng = np.random.default_rng(seed)
    return snr * planted_patterns(features, voxels, rng) + rng.normal(size=(len(features), voxels))


def split(seed: int = 0, n_test: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, test rows) of the images, sorted."""
    order = np.random.default_rng(seed).permutation(N_IMAGES)
    return np.sort(order[n_test:]), np.sort(order[:n_test])
