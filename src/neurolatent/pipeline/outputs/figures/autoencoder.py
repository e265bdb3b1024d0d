"""An autoencoder's originals over its reconstructions (image_ae, fmri_ae)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neurolatent.pipeline.outputs.figures.common import plt, save_figure


def autoencoder_reconstructions(originals: np.ndarray, reconstructions: np.ndarray, path: Path, title: str) -> None:
    """Originals (top) over their reconstructions (bottom): pictures (n, 3, H, W) as pictures,
    volumes (n, 1, X, Y, Z) as their middle axial slice, vectors (n, d) as lines."""
    n = len(originals)
    figure, axes = plt.subplots(2, n, figsize=(2.2 * n, 4.6), squeeze=False)
    for column in range(n):
        for row, tensor in enumerate((originals, reconstructions)):
            item, ax = np.asarray(tensor[column]), axes[row, column]
            if item.ndim == 3:
                ax.imshow(np.clip(item.transpose(1, 2, 0), 0, 1))
            elif item.ndim == 4:
                ax.imshow(item[0, :, :, item.shape[3] // 2].T, origin="lower", cmap="RdBu_r")
            else:
                ax.plot(item, lw=0.6)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, column].set_title(f"sample {column + 1}", fontsize=8)
    axes[0, 0].set_ylabel("original")
    axes[1, 0].set_ylabel("reconstruction")
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    save_figure(figure, path)
