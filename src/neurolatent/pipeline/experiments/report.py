"""The one-page comparison of a sweep (``neurolatent report``): study vs corrected on planted truth.

From the sweep's experiments (:func:`neurolatent.pipeline.experiments.sweep.experiments`: params and every stage's
metrics per experiment) it writes ``reports/compare/``:

- ``rsa_vs_snr.png``: group RSA r (mean over seeds, error bars the mean bootstrap CI) against
  planted SNR, a panel per configuration and fMRI representation, a line per image model, the
  noise ceiling as a band;
- ``two_way_vs_snr.png``: 2-way identification of held-out images (ridge) against SNR, chance
  interval shaded;
- ``results.csv`` (one row per experiment, fMRI representation and model) and ``report.md``: the
  table at the default SNR, the planted truth's r at every SNR beside what could explain its course
  (the SVD components RSA kept, the fMRI AE's best epoch, the noise ceiling), the false-positive
  rates at SNR 0 of the study's naive p and of the permutation p, and what the study's r = 0.0167
  means in the light of both.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from neurolatent.pipeline.outputs.figures import common as common_figures
from neurolatent.pipeline.outputs.figures import sweep as sweep_figures
from neurolatent.pipeline.outputs.summaries import TRUTH
from neurolatent.io.bids import ROIS
from neurolatent.io.files import atomic_dir
from neurolatent.pipeline.outputs.summaries import RSA_STATISTICS
from neurolatent.science.rsa.compare import naive_p

#: the ``roi`` of the comparisons over every visual region together
UNION = "union"
#: the study's published result (Dalbagno et al. 2024): ViT-in21k vs fMRI AE latents, 4,916 images
STUDY_R, STUDY_IMAGES = 0.0167, 4916
_NAME = re.compile(r"^(?P<sweep>.+?)-(?P<config>[A-Za-z][\w-]*?)-snr(?P<snr>[0-9.]+)-seed(?P<seed>\d+)$")


def results_table(experiments: list[dict]) -> pd.DataFrame:
    """One row per (experiment, fMRI representation, image model): config, snr, seed and the RSA,
    CKA, noise ceiling and ridge 2-way numbers of that pair, and the SVD components kept of the
    fMRI space. ``roi`` is ``union`` for the visual regions together, or the ROI of a per-ROI
    comparison (the rsa stage's ``rsa.samples.<ROI>.<model>.*``, with that ROI's own noise ceiling
    and components)."""
    rows = []
    for exp in experiments:
        match = _NAME.match(exp["name"])
        if match is None:
            continue
        metrics = exp["metrics"]
        pairs = {(m.group(1), m.group(2)) for key in metrics if (m := re.match(r"^rsa\.(\w+)\.(.+)\.r$", key))}
        for fmri, compared in sorted(pairs):
            area, _, own = compared.partition(".")
            roi, model = (area, own) if own and area in ROIS else (UNION, compared)
            # the rsa stage keys a space's own numbers by rsa.<fmri> (the union) or rsa.<fmri>/<ROI>
            space = f"rsa.{fmri}" if roi == UNION else f"rsa.{fmri}/{roi}"
            row = {"experiment": exp["name"], "config": match["config"], "snr": float(match["snr"]),
                   "seed": int(match["seed"]), "fmri": fmri, "roi": roi, "model": model}
            row.update({name: metrics.get(f"rsa.{fmri}.{compared}.{name}", math.nan) for name in RSA_STATISTICS})
            row["ceiling_low"] = metrics.get(f"{space}.noise_ceiling_lower", math.nan)
            row["ceiling_high"] = metrics.get(f"{space}.noise_ceiling_upper", math.nan)
            decode = f"stitch.decode.{fmri}.{model}.ridge"
            row["two_way"] = metrics.get(f"{decode}.two_way", math.nan)
            row["two_way_chance_high"] = metrics.get(f"{decode}.chance_high", math.nan)
            row["stimuli"] = metrics.get("rsa.stimuli_per_subject", math.nan)
            row["components"] = metrics.get(f"{space}.components", math.nan)
            row["ae_best_epoch"] = metrics.get("fmri_ae.best_epoch", math.nan) if fmri == "ae" else math.nan
            rows.append(row)
    table = pd.DataFrame(rows).replace({None: math.nan})
    if table.empty:
        raise ValueError("no experiment of the sweep has RSA metrics")
    return table.sort_values(["config", "fmri", "model", "snr", "seed"], ignore_index=True)


def false_positive_rates(table: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """At SNR 0 (nothing planted), per configuration: how many tests (seeds x fMRI x models) each
    p called significant at ``alpha``: the study's naive p, the permutation p, CKA's p."""
    null = table[table["snr"] == 0]
    return null.groupby("config").agg(
        tests=("p", "size"),
        naive_p=("p_naive_wrong_df", lambda p: float(np.mean(p < alpha))),
        permutation_p=("p", lambda p: float(np.mean(p < alpha))),
        cka_p=("cka_p", lambda p: float(np.mean(p < alpha)))).reset_index()


def default_table(table: pd.DataFrame, snr: float) -> pd.DataFrame:
    """Means over seeds at ``snr`` per (config, fMRI, model): r, naive p, permutation p, CI, noise
    ceiling, CKA, 2-way (medians for p-values)."""
    at = table[np.isclose(table["snr"], snr)]
    return at.groupby(["config", "fmri", "model"]).agg(
        seeds=("seed", "size"), r=("r", "mean"), r_sd=("r", "std"), r_pearson=("r_pearson", "mean"),
        naive_p=("p_naive_wrong_df", "median"), permutation_p=("p", "median"), ci_low=("ci_low", "mean"),
        ci_high=("ci_high", "mean"), ceiling_low=("ceiling_low", "mean"), ceiling_high=("ceiling_high", "mean"),
        cka=("cka", "mean"), two_way=("two_way", "mean")).reset_index()


def planted_by_snr(table: pd.DataFrame) -> pd.DataFrame:
    """Per (config, fMRI representation, SNR), means over seeds: r with the planted truth, its noise
    ceiling, the SVD components RSA kept of the fMRI space and (for the AE) the epoch whose weights
    were kept. Where r falls as the signal grows, or levels off below its ceiling, these columns say
    whether the components kept or the training changed with the SNR (an ablation sweep varies them)."""
    planted = table[table["model"] == TRUTH]
    return planted.groupby(["config", "fmri", "snr"]).agg(
        seeds=("seed", "size"), r=("r", "mean"), r_sd=("r", "std"), ceiling_low=("ceiling_low", "mean"),
        ceiling_high=("ceiling_high", "mean"), components=("components", "mean"),
        ae_best_epoch=("ae_best_epoch", "mean")).reset_index()


def _fmt(value: float, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.1e}" if 0 < abs(value) < 10 ** -digits else f"{value:.{digits}f}"


def _markdown(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(frame.columns) + " |"
    lines = [header, "|" + "---|" * len(frame.columns)]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(_fmt(v) if isinstance(v, float) else str(v) for v in row) + " |")
    return "\n".join(lines)


def meaning_of_study_r(table: pd.DataFrame, snr: float, study: str, corrected: str) -> list[str]:
    """Sentences, from the sweep's numbers, on what the study's r = 0.0167 with p < 0.001 means."""
    cells = STUDY_IMAGES * (STUDY_IMAGES - 1) // 2
    lines = [f"- The study's naive p for r = {STUDY_R} over {STUDY_IMAGES:,} images counts "
             f"{cells:,} RDM cells as independent: p = {_p_text(naive_p(STUDY_R, cells))}. At that many cells "
             f"any |r| above {_threshold(cells):.4f} is 'p < 0.001', so the p says nothing about the images."]
    at = table[np.isclose(table["snr"], snr)]
    planted = at[at["model"] == TRUTH].groupby(["config", "fmri"])["r"].mean()
    for (config, fmri), r in planted.items():
        if config in (study, corrected):
            lines.append(f"- On the planted truth at SNR {snr:g}, the {config} pipeline's {fmri} RDM has "
                         f"r = {r:.3f} with the planted features (mean over seeds).")
    null = table[table["snr"] == 0]
    for config in (study, corrected):
        own = null[null["config"] == config]
        if len(own):
            lines.append(f"- With nothing planted (SNR 0), {config}: the naive p is below 0.05 in "
                         f"{int((own['p_naive_wrong_df'] < 0.05).sum())} of {len(own)} tests, the permutation p in "
                         f"{int((own['p'] < 0.05).sum())}; r ranges {own['r'].min():.3f} to {own['r'].max():.3f}.")
    return lines


def _p_text(p: float) -> str:
    return "< 1e-300 (below double precision)" if p == 0 else f"{p:.1e}"


def _threshold(cells: int) -> float:
    """The |r| at which the naive test reaches p = 0.001 with ``cells`` cells."""
    low, high = 0.0, 1.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if naive_p(mid, cells) > 1e-3 else (low, mid)
    return high


def write_report(experiments: list[dict], out: Path, sweep: str, snr: float = 1.0, study: str = "study",
                 corrected: str = "corrected", notes: list[str] | None = None) -> Path:
    """Write ``out/`` (figures, results.csv, report.md) atomically; return the report's path. The
    figures and tables are of the visual regions together; results.csv has the per-ROI rows too."""
    every = results_table(experiments)
    table = every[every["roi"] == UNION]
    rates = false_positive_rates(table)
    headline = default_table(table, snr)
    planted = planted_by_snr(table)
    planted["snr"] = planted["snr"].map("{:g}".format)
    with atomic_dir(Path(out)) as folder:
        every.to_csv(folder / "results.csv", index=False)
        shown = table.assign(model=table["model"].map(common_figures.display_name))  # the names the stages' figures use
        sweep_figures.sensitivity(shown, "r", "RSA r (group mean; bars: mean 95% CI)", folder / "rsa_vs_snr.png",
                            band=("ceiling_low", "ceiling_high"), interval=("ci_low", "ci_high"))
        sweep_figures.sensitivity(shown, "two_way", "2-way identification (ridge)", folder / "two_way_vs_snr.png",
                            chance=0.5, chance_high="two_way_chance_high")
        seeds = sorted(int(seed) for seed in table["seed"].unique())
        configs = sorted(table["config"].unique())
        text = [f"# {' vs '.join(configs)} on the planted truth: sweep `{sweep}`", "",
                f"{table['experiment'].nunique()} experiments: configurations {', '.join(configs)}; "
                f"planted SNR {', '.join(f'{s:g}' for s in sorted(table['snr'].unique()))}; seeds {seeds}; "
                f"{_fmt(float(table['stimuli'].mean()), 0)} images per subject.", "",
                *(notes or []), "",
                f"## At SNR {snr:g} (means over seeds; p-values: medians)", "", _markdown(headline), "",
                "## The planted truth at each SNR (means over seeds)", "",
                _markdown(planted) if len(planted) else "(no planted truth in this sweep)", "",
                "## False positives with nothing planted (SNR 0): share of tests with p < 0.05", "",
                _markdown(rates) if len(rates) else "(no SNR 0 point in this sweep)", "",
                *(["## What the study's r = 0.0167 with p < 0.001 means", "",
                   *meaning_of_study_r(table, snr, study, corrected), ""] if study in configs else []),
                "![RSA r against SNR](rsa_vs_snr.png)", "", "![2-way identification against SNR](two_way_vs_snr.png)", ""]
        (folder / "report.md").write_text("\n".join(text))
    return Path(out) / "report.md"
