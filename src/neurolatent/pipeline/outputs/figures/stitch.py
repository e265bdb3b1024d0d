"""The stitch stage's figures: decoding/encoding bars per ROI, reconstructions, the encoding r map."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from neurolatent.pipeline.outputs.figures.common import display_name, plt, save_figure


def roi_bars(table: pd.DataFrame, value: str, label: str, path: Path, chance: float | None = None) -> None:
    """``value`` per ROI, a bar per model in each ROI's group (a panel per fMRI representation);
    the chance level as a dashed line. table : columns fmri, roi, model and ``value``."""
    kinds = list(dict.fromkeys(table["fmri"]))
    models = list(dict.fromkeys(table["model"]))
    colours = dict(zip(models, plt.cm.tab10(np.arange(len(models)) % 10)))
    figure, axes = plt.subplots(1, len(kinds), figsize=(1.2 + 0.35 * len(models) * table["roi"].nunique(), 3.4),
                                squeeze=False, sharey=True)
    for ax, kind in zip(axes[0], kinds):
        own = table[table["fmri"] == kind]
        regions = list(dict.fromkeys(own["roi"]))
        width = 0.8 / len(models)
        for m, model in enumerate(models):
            values = own[own["model"] == model].set_index("roi")[value].reindex(regions)
            ax.bar(np.arange(len(regions)) + (m - (len(models) - 1) / 2) * width, values, width, color=colours[model],
                   label=display_name(model))
        if chance is not None:
            ax.axhline(chance, color="black", ls="--", lw=0.8, label="chance")
        ax.set_xticks(range(len(regions)), regions, fontsize=8)
        ax.set_title(f"fMRI {kind}", fontsize=9)
        ax.tick_params(labelsize=7)
    axes[0, 0].set_ylabel(label, fontsize=8)
    handles = {h.get_label(): h for ax in axes[0] for h in ax.get_legend_handles_labels()[0]}
    figure.legend(handles.values(), handles.keys(), loc="lower center", ncol=min(5, len(handles)), fontsize=7)
    figure.tight_layout(rect=(0, 0.12, 1, 1))
    save_figure(figure, path)


def decoded_stimuli(label: str, originals: np.ndarray, own: np.ndarray, decoded: np.ndarray, path: Path) -> None:
    """Held-out stimuli (top), the image AE's own reconstruction (middle, the ceiling) and the
    reconstruction from fMRI (bottom), each reconstruction with its pixel r against its stimulus;
    pictures (n, 3, H, W) in [0, 1]."""
    n = len(originals)
    figure, axes = plt.subplots(3, n, figsize=(1.5 * n, 5.0), squeeze=False)
    for column in range(n):
        for row, pictures in enumerate((originals, own, decoded)):
            axes[row, column].imshow(np.clip(pictures[column].transpose(1, 2, 0), 0, 1))
            axes[row, column].set_xticks([])
            axes[row, column].set_yticks([])
            if row:  # under the picture it scores
                r = np.corrcoef(pictures[column].ravel(), originals[column].ravel())[0, 1]
                axes[row, column].set_xlabel(f"pixel r {r:.2f}", fontsize=7, labelpad=2)
    for row, text in enumerate(("test stimulus", "image AE\n(ceiling)", "from fMRI")):
        axes[row, 0].set_ylabel(text, fontsize=8)
    figure.suptitle(f"Held-out stimuli reconstructed from fMRI ({label}): ridge to the image AE's latent, "
                    "decoded", fontsize=8)
    figure.tight_layout()
    save_figure(figure, path)


def encoding_brain_map(r: np.ndarray, mask_path: Path, label: str, path: Path) -> None:
    """Voxelwise r (one value per mask voxel, C order) drawn on nilearn's glass brain."""
    from nilearn import plotting

    mask_image = nib.load(mask_path)
    mask = np.asarray(mask_image.dataobj).astype(bool)
    volume = np.zeros(mask.shape, dtype=np.float32)
    volume[mask] = np.nan_to_num(r[:mask.sum()])
    # voxels outside the region and |r| < 0.05 stay unpainted
    display = plotting.plot_glass_brain(nib.Nifti1Image(volume, mask_image.affine), colorbar=True, plot_abs=False,
                                        cmap="RdBu_r", vmin=-1.0, vmax=1.0, threshold=0.05,
                                        title=f"encoding: Pearson r on test images ({label})")
    save_figure(display.frame_axes.figure, path)
