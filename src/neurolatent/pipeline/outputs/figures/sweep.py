"""A metric against the planted SNR over a sweep of experiments (reports of neurolatent sweep)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from neurolatent.pipeline.outputs.figures.common import plt, save_figure


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
