"""The study's fMRI representation: each volume drawn as a nilearn ortho stat-map picture.

Exactly as the study drew it: ``plot_stat_map`` with ``display_mode="ortho"``, ``bg_img=None``,
``threshold=100``, no annotation, no cross, no colorbar, colour scale per volume (nilearn's
default: symmetric around 0 up to the volume's largest absolute value), then resized to a square.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
from nilearn.plotting import plot_stat_map  # noqa: E402
from PIL import Image  # noqa: E402

from neurolatent.config import RenderParams  # noqa: E402

#: the figure nilearn draws the ortho display on before the resize (its default size)
FIGURE_INCHES = (7.0, 2.6)
DPI = 100


def render_nilearn(volume: np.ndarray, affine: np.ndarray, size: int, threshold: float) -> np.ndarray:
    """One volume as the study's picture.

    Parameters
    ----------
    volume : ndarray, shape (X, Y, Z), intensity units
    affine : ndarray, shape (4, 4), voxel -> mm
    size : side of the output picture, pixels
    threshold : values with absolute value below it are not drawn

    Returns
    -------
    ndarray, shape (3, size, size), uint8 RGB, channels first
    """
    figure = plt.figure(figsize=FIGURE_INCHES, dpi=DPI)
    try:
        plot_stat_map(nib.Nifti1Image(np.asarray(volume, dtype=np.float32), affine), bg_img=None,
                      display_mode="ortho", threshold=threshold, annotate=False, draw_cross=False,
                      colorbar=False, figure=figure)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=DPI, facecolor=figure.get_facecolor())
    finally:
        plt.close(figure)
    picture = Image.open(buffer).convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(picture, dtype=np.uint8).transpose(2, 0, 1)


def render_volumes(volumes: np.ndarray, affine: np.ndarray, params: RenderParams) -> np.ndarray:
    """Volumes (n, X, Y, Z) -> pictures (n, 3, size, size) uint8."""
    return np.stack([render_nilearn(v, affine, params.size, params.threshold) for v in volumes])
