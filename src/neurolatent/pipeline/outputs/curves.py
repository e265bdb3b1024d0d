"""Figures of accuracy against the amount of data (matplotlib, Agg): the align stage's few-shot curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd

from neurolatent.pipeline.outputs.figures.common import display_name, plt, save_figure


def fewshot_curves(table: pd.DataFrame, path: Path, chance: float = 0.5) -> None:
    """2-way accuracy against k (log axis), a line per method with its CI band (means over held-out
    subjects of two_way, ci_low, ci_high), a panel per target, the chance level dashed.
    table : fewshot.csv's rows (subject, method, k, target, two_way, ci_low, ci_high, top1)."""
    targets = list(dict.fromkeys(table["target"]))
    methods = list(dict.fromkeys(table["method"]))
    colours = dict(zip(methods, plt.cm.tab10(np.arange(len(methods)) % 10)))
    figure, axes = plt.subplots(1, len(targets), figsize=(0.6 + 2.6 * len(targets), 3.2), squeeze=False, sharey=True)
    for ax, target in zip(axes[0], targets):
        own = table[table["target"] == target]
        for method in methods:
            curve = own[own["method"] == method].groupby("k")[["two_way", "ci_low", "ci_high"]].mean()
            if curve.empty:
                continue
            ax.plot(curve.index, curve["two_way"], marker="o", ms=3, lw=1.2, color=colours[method], label=method)
            ax.fill_between(curve.index, curve["ci_low"], curve["ci_high"], color=colours[method], alpha=0.15, lw=0)
        ax.axhline(chance, color="black", ls="--", lw=0.8, label="chance")
        ax.set_xscale("log")
        ks = sorted(set(own["k"]))
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("images of the new subject (k)", fontsize=8)
        ax.set_title("between subjects" if target == "subjects" else display_name(target), fontsize=9)
        ax.tick_params(labelsize=7)
    axes[0, 0].set_ylabel("2-way identification", fontsize=8)
    figure.suptitle("A new subject from k of its images: mean over held-out subjects, band = mean 95% CI",
                    fontsize=9)
    handles = {h.get_label(): h for ax in axes[0] for h in ax.get_legend_handles_labels()[0]}
    figure.legend(handles.values(), handles.keys(), loc="lower center", ncol=min(6, len(handles)), fontsize=7)
    figure.tight_layout(rect=(0, 0.1, 1, 1))
    save_figure(figure, path)
