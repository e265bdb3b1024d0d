"""Every figure the stages draw (matplotlib, Agg), as functions of arrays and tables writing one file.

It imports nothing from the package, so a figure module never makes one stage's code a dependency
of another (RDMs arrive as objects with ``square()``, ``stimuli``, ``name`` and ``meta``)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import rankdata  # noqa: E402
from scipy.sparse.linalg import eigsh  # noqa: E402
from sklearn.utils.extmath import svd_flip  # noqa: E402


#: SVG ids from a fixed salt (not a random one): the same figure gives the same file
matplotlib.rcParams["svg.hashsalt"] = "neurolatent"
#: text stays text in SVG (editable in a paper's figure), not glyph outlines
matplotlib.rcParams["svg.fonttype"] = "none"
DPI = 300
#: at most this many images a side in an RDM heatmap (an axis is ~600 pixels wide at DPI) and
#: dots in an MDS panel: a larger RDM is drawn from every k-th image of its ordered list (BOLD5000's
#: 4,916 images: every 9th and every 5th), which also keeps the SVGs small
HEATMAP_IMAGES = 600
MDS_IMAGES = 1000


def display_name(model: str) -> str:
    """A model's name as figures show it: ``untrained_resources_vit-tiny`` -> ``vit-tiny
    (untrained)``, ``image_ae`` -> ``image AE``, ``planted_object`` -> ``planted: object``,
    ``<model>_layer<k>`` -> ``<model>, layer k``; other names as they are."""
    import re

    layer = re.fullmatch(r"(.+)_layer(\d+)", model)
    if layer:
        return f"{display_name(layer.group(1))}, layer {layer.group(2)}"
    if model.startswith("untrained_"):
        return f"{model.removeprefix('untrained_').removeprefix('resources_')} (untrained)"
    if model.startswith("planted_"):
        return f"planted: {model.removeprefix('planted_')}"
    return {"image_ae": "image AE", "planted": "planted truth (all families)", "noise": "noise (control)"}.get(model, model)


def save_figure(figure, path: Path) -> None:
    """Write ``figure`` as a 300 dpi PNG at ``path`` and as SVG beside it (``.svg``: vector, text
    editable, for papers), without dates in either, and close it."""
    path = Path(path)
    figure.savefig(path, dpi=DPI, metadata={"Software": None})
    figure.savefig(path.with_suffix(".svg"), metadata={"Date": None, "Creator": None})
    plt.close(figure)


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


def _every(count: int, limit: int) -> int:
    """The step k that keeps at most ``limit`` of ``count`` items (every k-th)."""
    return -(-count // limit)


def rdm_heatmaps(rdms: list, category: dict[str, str], path: Path) -> None:
    """One subject's RDMs side by side as percentile heatmaps, images ordered by category with the
    category blocks outlined, one colour bar (percentile of each RDM's dissimilarities, 0-100 %).
    rdms : RDMs over that subject's images; category : image -> category. Over more than
    :data:`HEATMAP_IMAGES` images, every k-th image of the order is drawn (the x label says so)."""
    categories = sorted(set(category.values()))
    figure, axes = plt.subplots(1, len(rdms), figsize=(2.6 * len(rdms) + 0.8, 3.0), squeeze=False)
    for ax, item in zip(axes[0], rdms):
        step = _every(item.n, HEATMAP_IMAGES)
        order = sorted(range(item.n), key=lambda i: (category[item.stimuli[i]], item.stimuli[i]))[::step]
        image = ax.imshow(squareform_ranks(item.square()[np.ix_(order, order)]), cmap="viridis",
                          interpolation="nearest", vmin=0, vmax=100)
        edges = np.flatnonzero(np.diff([categories.index(category[item.stimuli[i]]) for i in order])) + 0.5
        for edge in edges:
            ax.axhline(edge, color="white", lw=0.6)
            ax.axvline(edge, color="white", lw=0.6)
        ax.set_title(item.name, fontsize=8)
        # a tick at the middle of each category's block, named: the order is read off the axes
        labels = [category[item.stimuli[i]] for i in order]
        bounds = np.concatenate([[-0.5], edges, [len(order) - 0.5]])
        middles, names = (bounds[:-1] + bounds[1:]) / 2, [labels[int(np.ceil(b))] for b in bounds[:-1]]
        ax.set_xticks(middles, names, fontsize=6, rotation=90)
        ax.set_yticks(middles, names, fontsize=6)
        ax.tick_params(length=0)
        ax.set_xlabel(f"{item.n} images by category" + (f" (1 in {step} drawn)" if step > 1 else ""), fontsize=7)
    subject = rdms[0].meta.get("subject", "")
    figure.suptitle(f"RDMs of {subject} ({rdms[0].dissimilarity} distance; images by category: "
                    f"{', '.join(categories)})", fontsize=9)
    figure.tight_layout(rect=(0, 0, 0.9, 1))
    bar = figure.colorbar(image, cax=figure.add_axes((0.91, 0.2, 0.012, 0.6)))
    bar.set_label("dissimilarity percentile (%)", fontsize=7)
    bar.ax.tick_params(labelsize=6)
    save_figure(figure, path)


#: rsa.compare's names as a reader knows them
_COMPARE_NAMES = {"spearman": "Spearman", "pearson": "Pearson", "kendall_tau_a": "Kendall tau-a", "cosine": "cosine"}


def rsa_bars(group: pd.DataFrame, path: Path, compare: str = "spearman", ci: float = 0.95) -> None:
    """Group RSA r per image model, one panel per fMRI representation: bootstrap CIs, the noise
    ceiling as a band, * where the permutation p < 0.05. group : the rsa stage's group table
    (columns fmri, model, r, ci_low, ci_high, p, noise_ceiling_lower, noise_ceiling_upper);
    compare : how RDMs were compared (``rsa.compare``), ci : the CI's level."""
    kinds = list(dict.fromkeys(group["fmri"]))
    figure, axes = plt.subplots(1, len(kinds), figsize=(4.2 * len(kinds), 3.6), squeeze=False, sharey=True)
    for ax, kind in zip(axes[0], kinds):
        rows = group[group["fmri"] == kind].reset_index(drop=True)
        x = np.arange(len(rows))
        ax.bar(x, rows["r"], color="steelblue",
               yerr=[rows["r"] - rows["ci_low"], rows["ci_high"] - rows["r"]], capsize=3)
        lower, upper = rows["noise_ceiling_lower"].iloc[0], rows["noise_ceiling_upper"].iloc[0]
        if np.isfinite(lower):
            ax.axhspan(lower, upper, color="grey", alpha=0.3, label="noise ceiling")
            ax.legend(fontsize=7, loc="upper right")
        for i, p in enumerate(rows["p"]):
            if p < 0.05:
                ax.text(i, rows["ci_high"].iloc[i], "*", ha="center", va="bottom")
        ax.axhline(0, color="black", lw=0.6)
        ax.set_xticks(x, rows["model"], rotation=30, ha="right", fontsize=7)
        ax.set_title(f"fMRI {kind}", fontsize=9)
    axes[0, 0].set_ylabel(f"RSA r\n({_COMPARE_NAMES.get(compare, compare)} r of RDMs, mean over subjects)", fontsize=8)
    figure.suptitle(f"RSA per image model: bars {ci:.0%} bootstrap CI, * permutation p < 0.05", fontsize=9)
    figure.tight_layout()
    save_figure(figure, path)


def rsa_layers(table: pd.DataFrame, path: Path) -> None:
    """Group RSA r against layer: a panel per fMRI representation and network, a line per region (the
    union of the ROIs and each ROI), error bars the bootstrap CI.

    table : the rsa stage's ROI rows of layer entries, columns roi, fmri, network, layer (a hidden
    state's index, or ``last``), hidden_states (how many the network has), r, ci_low, ci_high, and
    optionally compare (``rsa.compare``) and ci (its level). ``last`` (``last_hidden_state``: the last
    block's output after the final layernorm) is drawn apart from the line, as an open diamond at
    x = hidden_states, one step past the deepest index (its tick labelled last where no indexed point
    shares it); a network without indexed layers is left out."""
    panels = [(kind, network) for kind in dict.fromkeys(table["fmri"]) for network in dict.fromkeys(table["network"])
              if (table[(table["fmri"] == kind) & (table["network"] == network)]["layer"].astype(str) != "last").any()]
    regions = list(dict.fromkeys(table["roi"]))
    colours = dict(zip(regions, plt.cm.tab10(np.arange(len(regions)) % 10)))
    figure, axes = plt.subplots(1, len(panels), figsize=(max(6.4, 4.6 * len(panels)), 3.8), squeeze=False,
                                sharey=True)
    for ax, (kind, network) in zip(axes[0], panels):
        own = table[(table["fmri"] == kind) & (table["network"] == network)]
        indices, lasts = set(), set()
        for region in regions:
            rows = own[own["roi"] == region]
            is_last = rows["layer"].astype(str) == "last"
            indexed = rows[~is_last].astype({"layer": int}).sort_values("layer")
            if indexed.empty:
                continue
            indices.update(indexed["layer"])
            ax.errorbar(indexed["layer"], indexed["r"], yerr=[indexed["r"] - indexed["ci_low"],
                                                              indexed["ci_high"] - indexed["r"]],
                        marker="o", ms=4, capsize=2, lw=1.2, color=colours[region], label=region)
            last = rows[is_last]
            if len(last) and pd.notna(last["hidden_states"].iloc[0]):
                x, r = int(last["hidden_states"].iloc[0]), float(last["r"].iloc[0])
                lasts.add(x)
                ax.errorbar([x], [r], yerr=[[r - last["ci_low"].iloc[0]], [last["ci_high"].iloc[0] - r]], marker="D",
                            ms=5, mfc="white", ls="none", capsize=2, color=colours[region])
        # integer ticks up to the deepest index drawn, and "last" under a diamond no indexed point shares
        deepest = max(indices, default=0)
        ticks = [int(t) for t in matplotlib.ticker.MaxNLocator(integer=True).tick_values(0, deepest)
                 if 0 <= t <= deepest]
        extra = sorted(x for x in lasts if x not in ticks)
        ax.set_xticks(ticks + extra, [str(t) for t in ticks] + [str(x) if x in indices else "last" for x in extra])
        ax.axhline(0, color="black", lw=0.6)
        ax.set_title(f"fMRI {kind}: {network}", fontsize=9)
        ax.set_xlabel("layer (hidden state index)", fontsize=8)
        ax.tick_params(labelsize=7)
    compare = table["compare"].iloc[0] if "compare" in table else None
    axes[0, 0].set_ylabel(f"RSA r ({_COMPARE_NAMES.get(compare, compare)}, mean over subjects)" if compare
                          else "RSA r (mean over subjects)", fontsize=8)
    handles = {h.get_label(): h for ax in axes[0] for h in ax.get_legend_handles_labels()[0]}
    handles["last (last_hidden_state)"] = plt.Line2D([], [], marker="D", mfc="white", color="black", ls="none")
    columns = min(4, len(handles))
    figure.legend(handles.values(), handles.keys(), loc="lower center", ncol=columns, fontsize=7)
    level = f"{table['ci'].iloc[0]:.0%} " if "ci" in table else ""
    figure.suptitle(f"RSA by layer and region, error bars the {level}bootstrap CI over stimuli\n0 = the patch "
                    "embeddings, k = after block k, last = last_hidden_state (after the final layernorm)", fontsize=8)
    legend_rows = -(-len(handles) // columns)
    figure.tight_layout(rect=(0, 0.05 + 0.05 * legend_rows, 1, 1))
    save_figure(figure, path)


def roi_heatmap(rois: pd.DataFrame, path: Path, compare: str = "spearman") -> None:
    """RSA per region and model at a glance: a panel per fMRI representation, a row per region (the
    union of the ROIs, then each ROI), a column per model; the colour is r over the region's lower
    noise ceiling (the share of the explainable structure a model reaches; r itself where the ceiling
    is undefined), each cell printed with its r, * where the family-wise corrected p < 0.05.
    rois : the rsa stage's ROI table (columns roi, fmri, model, r, p_fwe, ceiling_low)."""
    kinds = list(dict.fromkeys(rois["fmri"]))
    models = list(dict.fromkeys(rois["model"]))
    heights = [len(dict.fromkeys(rois[rois["fmri"] == kind]["roi"])) for kind in kinds]
    figure, axes = plt.subplots(len(kinds), 1, figsize=(1.6 + 0.9 * len(models), 2.2 + 0.42 * sum(heights)),
                                squeeze=False, gridspec_kw={"height_ratios": heights})
    for ax, kind in zip(axes[:, 0], kinds):
        own = rois[rois["fmri"] == kind]
        regions = list(dict.fromkeys(own["roi"]))
        table = own.pivot(index="roi", columns="model").reindex(index=regions)
        r = table["r"].reindex(columns=models).to_numpy(dtype=float)
        ceiling = table["ceiling_low"].reindex(columns=models).to_numpy(dtype=float)
        usable = np.isfinite(ceiling) & (ceiling > 0.05)
        shown = np.where(usable, r / np.where(usable, ceiling, 1.0), r)
        image = ax.imshow(shown, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
        significant = table["p_fwe"].reindex(columns=models).to_numpy(dtype=float) < 0.05
        for (row, column), value in np.ndenumerate(r):
            ax.text(column, row, f"{value:.2f}{'*' if significant[row, column] else ''}", ha="center", va="center",
                    fontsize=7, color="white" if abs(shown[row, column]) > 0.6 else "black")
        ax.set_yticks(range(len(regions)), regions, fontsize=8)
        ax.set_xticks(range(len(models)), models if ax is axes[-1, 0] else [], rotation=30, ha="right", fontsize=7)
        ax.set_ylabel(f"fMRI {kind}", fontsize=8)
    figure.subplots_adjust(left=0.12, right=0.86, top=0.9, bottom=0.22, hspace=0.15)
    bar = figure.colorbar(image, ax=axes[:, 0].tolist(), fraction=0.03, pad=0.02)
    bar.set_label("r / lower noise ceiling", fontsize=7)
    bar.ax.tick_params(labelsize=6)
    figure.suptitle(f"RSA per region and model ({_COMPARE_NAMES.get(compare, compare)} r in each cell, "
                    "* family-wise corrected p < 0.05 over every region and model)", fontsize=8)
    save_figure(figure, path)


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


def classical_mds(square: np.ndarray, n_components: int = 2) -> np.ndarray:
    """Classical MDS of a (n, n) dissimilarity matrix: (n, n_components), the coordinates (and signs)
    of scikit-learn's ``ClassicalMDS(n_components, metric="precomputed").fit_transform``.

    ClassicalMDS decomposes the whole double-centred matrix; only its top eigenpairs are needed,
    which ARPACK finds in 0.95 s at n = 4,916 against ClassicalMDS's 15.4 s (measured), and the
    rsa stage draws six spaces."""
    centred = np.asarray(square, dtype=np.float64) ** 2
    centred -= centred.mean(axis=0)
    centred -= centred.mean(axis=1, keepdims=True)
    centred *= -0.5
    # a seeded start: the constant vector would lie in the double-centred matrix's null space
    start = np.random.default_rng(0).uniform(-1.0, 1.0, len(centred))
    values, vectors = eigsh(centred, k=n_components, which="LA", v0=start)
    vectors, _ = svd_flip(vectors[:, ::-1], None)
    return np.sqrt(values[::-1]) * vectors


def mds_scatter(rdms: list, category: dict[str, str], path: Path) -> None:
    """Classical MDS (:func:`classical_mds`) of each RDM's space, images coloured by category; of every
    k-th of its images over more than :data:`MDS_IMAGES` (the title says how many)."""
    categories = sorted(set(category.values()))
    colours = dict(zip(categories, plt.cm.tab10.colors))
    figure, axes = plt.subplots(1, len(rdms), figsize=(2.6 * len(rdms), 2.8), squeeze=False)
    for ax, item in zip(axes[0], rdms):
        kept = np.arange(0, item.n, _every(item.n, MDS_IMAGES))
        coordinates = classical_mds(item.square()[np.ix_(kept, kept)])
        ax.scatter(coordinates[:, 0], coordinates[:, 1], s=6,
                   c=[colours[category[item.stimuli[i]]] for i in kept])
        ax.set_title(item.name if len(kept) == item.n else f"{item.name} ({len(kept)} of {item.n})", fontsize=8)
        ax.tick_params(labelsize=6)
        ax.set_xlabel("MDS dimension 1", fontsize=7)
        ax.set_ylabel("MDS dimension 2", fontsize=7)
    handles = [plt.Line2D([], [], marker="o", ls="", color=colours[c], label=c) for c in categories]
    figure.legend(handles=handles, loc="lower center", ncol=len(categories), fontsize=7)
    figure.suptitle(f"Classical MDS of each space ({rdms[0].meta.get('subject', '')}; axes in the RDM's "
                    f"{rdms[0].dissimilarity} distance)", fontsize=9)
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    save_figure(figure, path)


def squareform_ranks(square: np.ndarray) -> np.ndarray:
    """An RDM's off-diagonal values as percentiles (0-100), for a heatmap whose colours use the range."""
    n = len(square)
    upper = np.triu_indices(n, k=1)
    ranks = rankdata(square[upper])
    out = np.zeros_like(square)
    out[upper] = 100.0 * (ranks - 1) / max(1, len(ranks) - 1)
    return out + out.T


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


def sensitivity(table: pd.DataFrame, value: str, label: str, path: Path, band: tuple[str, str] | None = None,
                interval: tuple[str, str] | None = None, chance: float | None = None,
                chance_high: str | None = None) -> None:
    """``value`` against planted SNR: a panel per (config, fmri), a line per model (mean over seeds;
    error bars the mean of ``interval``'s columns), the mean of ``band``'s columns as a grey band
    (the noise ceiling), and the chance level with the mean of ``chance_high`` (the upper end of
    the permutation null) shaded. table : one row per (experiment, fmri, model) with columns
    config, fmri, model, snr, seed and those named."""
    panels = list(dict.fromkeys(zip(table["config"], table["fmri"])))
    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.4 * columns, 3.3 * rows), squeeze=False, sharey=True)
    models = sorted(table["model"].unique())
    colours = dict(zip(models, plt.cm.tab10(np.arange(len(models)) % 10)))
    for ax, (config, fmri) in zip(axes.ravel(), panels):
        own = table[(table["config"] == config) & (table["fmri"] == fmri)]
        by_snr = own.groupby("snr")
        if band is not None and own[band[0]].notna().any():
            low, high = by_snr[band[0]].mean(), by_snr[band[1]].mean()
            ax.fill_between(low.index, low, high, color="grey", alpha=0.25, label="noise ceiling")
        if chance is not None:
            ax.axhline(chance, color="black", lw=0.8, ls="--", label="chance")
            if chance_high is not None and own[chance_high].notna().any():
                high = by_snr[chance_high].mean()
                ax.fill_between(high.index, chance, high, color="black", alpha=0.1, label="95% of the null")
        for model in models:
            line = own[own["model"] == model].groupby("snr")
            if not len(line):
                continue
            mean = line[value].mean()
            if mean.isna().all():
                continue
            error = None
            if interval is not None:
                error = [mean - line[interval[0]].mean(), line[interval[1]].mean() - mean]
            ax.errorbar(mean.index, mean, yerr=error, marker="o", ms=3, capsize=2, lw=1.2, color=colours[model],
                        label=model)
        ax.axhline(0, color="black", lw=0.5)
        ax.set_title(f"{config}: fMRI {fmri}", fontsize=9)
        ax.set_xlabel("planted SNR (trial response sd / noise sd)", fontsize=8)
        ax.set_ylabel(label, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    handles = {h.get_label(): h for ax in axes.ravel() for h in ax.get_legend_handles_labels()[0]}
    figure.legend(handles.values(), handles.keys(), loc="lower center", ncol=min(6, len(handles)), fontsize=7)
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    save_figure(figure, path)
