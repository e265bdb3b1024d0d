"""The encode stage's figures: each band's part of the held-out R^2 per ROI, the winning band's map."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from neurolatent.pipeline.outputs.figures.common import display_name, plt, save_figure


def variance_partition_bars(table: pd.DataFrame, path: Path) -> None:
    """Per ROI, each band's part of the held-out R^2 (its share, or its unique R^2; bars, 95 %
    bootstrap interval) and every shared part together (grey, where the subsets were fitted), a
    panel per partition; beside it, where the table has them, the ROI's Algonauts scores. table :
    the encode stage's partition.csv rows (partition, roi, part, kind, r2, ci_low, ci_high, and the
    full rows' algonauts, percent)."""
    partitions = list(dict.fromkeys(table["partition"]))
    scores = "algonauts" in table and table["algonauts"].notna().any()
    figure, axes = plt.subplots(len(partitions), 1 + scores, figsize=(10.5 + 3.5 * scores, 3.2 * len(partitions)),
                                squeeze=False, width_ratios=[3, 1][:1 + scores])
    for ax, score_ax, partition in zip(axes[:, 0], axes[:, -1], partitions):
        own = table[table["partition"] == partition]
        regions = list(dict.fromkeys(own["roi"]))
        kind = "share" if (own["kind"] == "share").any() else "unique"
        bands = list(dict.fromkeys(own.loc[own["kind"] == kind, "part"]))
        together = [*bands, "shared"] if (own["kind"] == "shared_total").any() else bands
        colours = dict(zip(bands, plt.cm.tab10(np.arange(len(bands)) % 10)))
        width = 0.8 / (len(bands) + 1)
        for k, band in enumerate(together):
            rows = own[(own["part"] == band) & own["kind"].isin([kind, "shared_total"])].set_index("roi")
            rows = rows.reindex(regions)
            x = np.arange(len(regions)) + (k - len(bands) / 2) * width
            error = None
            if band != "shared":
                error = np.vstack([rows["r2"] - rows["ci_low"], rows["ci_high"] - rows["r2"]])
            ax.bar(x, rows["r2"], width, yerr=error, capsize=2, label=f"{display_name(band)}, {kind}" if band != "shared"
                   else "shared by two or more", color=colours.get(band, "0.7"), error_kw={"lw": 0.7})
        ax.axhline(0.0, color="black", lw=0.6)
        ax.set_xticks(range(len(regions)), regions, fontsize=8)
        ax.set_ylabel("held-out R$^2$", fontsize=8)
        ax.set_title(f"{partition}: " + ("each band's share of the variance all explain" if kind == "share" else
                                          "variance each band explains alone, and together")
                     + " (banded ridge, test images)", fontsize=9)
        ax.tick_params(labelsize=7)
        # beside the panel: inside it, the legend hid the tallest bars (a family's share reaches 0.6)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
        if scores:
            full = own[own["kind"] == "full"].set_index("roi").reindex(regions)
            score_ax.bar(range(len(regions)), full["algonauts"], color="0.4")
            score_ax.set_ylim(0, 100)
            score_ax.set_xticks(range(len(regions)), regions, fontsize=7, rotation=45)
            score_ax.set_ylabel("% of the noise ceiling", fontsize=8)
            score_ax.set_title("Algonauts score, all bands\n(median over voxels, mean over subjects)", fontsize=8)
            score_ax.tick_params(labelsize=7)
    figure.tight_layout()
    save_figure(figure, path)


def winning_band_map(winner: np.ndarray, bands: tuple[str, ...], mask_path: Path, title: str, path: Path,
                     background: Path | None = None) -> None:
    """Each voxel's winning band (index into ``bands`` per mask voxel, C order; -1: no band
    predicts it) as a label image on the mask's grid, in axial slices through every part of the
    mask; over ``background`` (a 3D or 4D image on the same grid, its mean drawn: the subject's
    functional anatomy) when given."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch
    from nilearn import image, plotting

    mask_image = nib.load(mask_path)
    mask = np.asarray(mask_image.dataobj).astype(bool)
    labels = np.zeros(mask.shape, dtype=np.int16)
    labels[mask] = np.asarray(winner)[:mask.sum()] + 1
    colours = plt.cm.tab10(np.arange(len(bands)) % 10)
    if background is not None:
        anatomy = image.mean_img(background, copy_header=True) if len(nib.load(background).shape) == 4 else background
    else:
        anatomy = nib.Nifti1Image(mask.astype(np.float32), mask_image.affine)
    # slices at the quantiles of the mask's z: every ROI, early to late, appears in one of them
    depth = np.nonzero(mask)[2]
    z = [float(nib.affines.apply_affine(mask_image.affine, [0, 0, k])[2])
         for k in np.unique(np.quantile(depth, np.linspace(0.05, 0.95, 6)).round().astype(int))]
    figure = plt.figure(figsize=(12, 3.8), facecolor="black")
    display = plotting.plot_roi(nib.Nifti1Image(labels, mask_image.affine), bg_img=anatomy, cmap=ListedColormap(colours),
                                vmin=0.5, vmax=len(bands) + 0.5, black_bg=True, title=title, draw_cross=False,
                                display_mode="z", cut_coords=z, alpha=0.9, colorbar=False, figure=figure,
                                axes=(0.0, 0.2, 1.0, 0.8))
    # in the strip below the slices, not over their coordinates
    figure.legend([Patch(color=c) for c in colours], [display_name(b) for b in bands], loc="lower center",
                  bbox_to_anchor=(0.5, 0.01),
                  ncol=len(bands), fontsize=8, title_fontsize=8,
                  title="band with the most unique held-out R$^2$ (unpainted: all bands together predict nothing)")
    del display
    save_figure(figure, path)
