"""The rsa stage's figures: RDM heatmaps, MDS, group bars, ROI x model heatmaps, layer curves."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from scipy.stats import rankdata

from neurolatent.pipeline.outputs.figures.common import plt, save_figure
from neurolatent.science.rsa.mds import classical_mds
from neurolatent.science.rsa.rdm import RDM


#: at most this many images a side in an RDM heatmap (an axis is ~600 pixels wide at DPI) and
#: dots in an MDS panel: a larger RDM is drawn from every k-th image of its ordered list (BOLD5000's
#: 4,916 images: every 9th and every 5th), which also keeps the SVGs small
HEATMAP_IMAGES = 600


MDS_IMAGES = 1000


def _every(count: int, limit: int) -> int:
    """The step k that keeps at most ``limit`` of ``count`` items (every k-th)."""
    return -(-count // limit)


@dataclass(frozen=True)
class DrawnRDM:
    """What the RDM figures draw of one RDM (:func:`drawn_rdm`): its name, images (n), distance
    and subject, and two cuts of it, ``heatmap`` ((k, k) over ``heatmap_stimuli``: every
    ``heatmap_step``-th image ordered by category, at most :data:`HEATMAP_IMAGES`) and ``mds``
    ((k, k) over ``mds_stimuli``: every k-th image in the RDM's order, at most :data:`MDS_IMAGES`).
    At BOLD5000's 4,916 images they take 11 MB where the RDM takes 97 (the rsa stage keeps one per
    region and model until the figures are drawn)."""

    name: str
    n: int
    dissimilarity: str
    subject: str
    heatmap_step: int
    heatmap_stimuli: tuple[str, ...]
    heatmap: np.ndarray
    mds_stimuli: tuple[str, ...]
    mds: np.ndarray


def drawn_rdm(rdm: RDM, category: dict[str, str], stimuli: tuple[str, ...] | None = None) -> DrawnRDM:
    """The cuts of ``rdm`` the figures draw (:class:`DrawnRDM`), over ``stimuli`` (names, in that
    order: the images of the subject whose RDMs are shown; default the RDM's own): the same values
    as cutting the square of ``rdm.subset(stimuli)``. category : image -> category."""
    stimuli = rdm.stimuli if stimuli is None else tuple(stimuli)
    rows = rdm.positions(stimuli)
    step = _every(len(stimuli), HEATMAP_IMAGES)
    order = sorted(range(len(stimuli)), key=lambda i: (category[stimuli[i]], stimuli[i]))[::step]
    kept = np.arange(0, len(stimuli), _every(len(stimuli), MDS_IMAGES))
    return DrawnRDM(rdm.name, len(stimuli), rdm.dissimilarity, rdm.meta.get("subject", ""),
                    step, tuple(stimuli[i] for i in order), rdm.cut(rows[order]),
                    tuple(stimuli[i] for i in kept), rdm.cut(rows[kept]))


def rdm_heatmaps(rdms: list[DrawnRDM], category: dict[str, str], path: Path) -> None:
    """One subject's RDMs side by side as percentile heatmaps, images ordered by category with the
    category blocks outlined, one colour bar (percentile of each RDM's dissimilarities, 0-100 %).
    rdms : :func:`drawn_rdm` of RDMs over that subject's images; category : image -> category. Over
    more than :data:`HEATMAP_IMAGES` images, every k-th image of the order is drawn (the x label says so)."""
    categories = sorted(set(category.values()))
    figure, axes = plt.subplots(1, len(rdms), figsize=(2.6 * len(rdms) + 0.8, 3.0), squeeze=False)
    for ax, item in zip(axes[0], rdms):
        step, drawn = item.heatmap_step, item.heatmap_stimuli
        image = ax.imshow(squareform_ranks(item.heatmap), cmap="viridis", interpolation="nearest", vmin=0, vmax=100)
        edges = np.flatnonzero(np.diff([categories.index(category[name]) for name in drawn])) + 0.5
        for edge in edges:
            ax.axhline(edge, color="white", lw=0.6)
            ax.axvline(edge, color="white", lw=0.6)
        ax.set_title(item.name, fontsize=8)
        # a tick at the middle of each category's block, named: the order is read off the axes
        labels = [category[name] for name in drawn]
        bounds = np.concatenate([[-0.5], edges, [len(drawn) - 0.5]])
        middles, names = (bounds[:-1] + bounds[1:]) / 2, [labels[int(np.ceil(b))] for b in bounds[:-1]]
        ax.set_xticks(middles, names, fontsize=6, rotation=90)
        ax.set_yticks(middles, names, fontsize=6)
        ax.tick_params(length=0)
        ax.set_xlabel(f"{item.n} images by category" + (f" (1 in {step} drawn)" if step > 1 else ""), fontsize=7)
    figure.suptitle(f"RDMs of {rdms[0].subject} ({rdms[0].dissimilarity} distance; images by category: "
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


def mds_scatter(rdms: list[DrawnRDM], category: dict[str, str], path: Path) -> None:
    """Classical MDS (:func:`classical_mds`) of each RDM's space (:func:`drawn_rdm`), images coloured
    by category; of every k-th of its images over more than :data:`MDS_IMAGES` (the title says how many)."""
    categories = sorted(set(category.values()))
    colours = dict(zip(categories, plt.cm.tab10.colors))
    figure, axes = plt.subplots(1, len(rdms), figsize=(2.6 * len(rdms), 2.8), squeeze=False)
    for ax, item in zip(axes[0], rdms):
        kept = item.mds_stimuli
        coordinates = classical_mds(item.mds)
        ax.scatter(coordinates[:, 0], coordinates[:, 1], s=6, c=[colours[category[name]] for name in kept])
        ax.set_title(item.name if len(kept) == item.n else f"{item.name} ({len(kept)} of {item.n})", fontsize=8)
        ax.tick_params(labelsize=6)
        ax.set_xlabel("MDS dimension 1", fontsize=7)
        ax.set_ylabel("MDS dimension 2", fontsize=7)
    handles = [plt.Line2D([], [], marker="o", ls="", color=colours[c], label=c) for c in categories]
    figure.legend(handles=handles, loc="lower center", ncol=len(categories), fontsize=7)
    figure.suptitle(f"Classical MDS of each space ({rdms[0].subject}; axes in the RDM's "
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
