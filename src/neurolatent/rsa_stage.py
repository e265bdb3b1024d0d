"""Stage ``rsa``: every image model against every fMRI representation, per subject and group.

For each subject, each fMRI representation (``rsa.fmri``: ``ae`` latents, ``samples`` of the
visual region) and each image model (the embeddings' manifest, plus ``planted`` with synthetic
data), over the images that subject saw (joined by name):

1. both matrices are standardised and reduced by SVD (``rsa.variance`` or ``rsa.components``);
2. their RDMs (``rsa.dissimilarity``) are compared (``rsa.compare``) on the upper triangle;
3. a Mantel test (``rsa.permutations``) gives p, a bootstrap over stimuli (``rsa.bootstrap``)
   the CI, and the study's Pearson r and naive p (cells counted as independent) are kept beside.

The group value is the mean over subjects; its null distribution is the mean of the subjects'
independent permutation nulls (valid under H0 for each subject), its CI the mean of their
bootstrap replicates. The noise ceiling (leave one subject out) uses the pairs of images the
subjects share.

Outputs: ``data/rdms/`` (one ``.npy`` upper triangle per RDM + ``index.json``; :func:`load_rdms`
reads them back, :meth:`neurolatent.rsa.RDM.to_rsatoolbox` exports one), ``metrics/rsa.json``
(flat keys), ``plots/rsa/`` (``group.csv`` for ``dvc plots``, ``subjects.csv``, and the figures:
RDM heatmaps ordered by category, RSA per model with noise ceiling, an MDS of each space).
"""

from __future__ import annotations

import json
import logging
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from neurolatent import rsa
from neurolatent.config import PreprocessParams, RsaParams
from neurolatent.errors import NeurolatentError
from neurolatent.files import atomic_dir, atomic_file, save_npy, write_json
from neurolatent.representations import (StimulusMatrix, fmri_latents, fmri_samples, image_models,
                                         planted_features)

log = logging.getLogger(__name__)


def rdm_of(matrix: np.ndarray, stimuli: tuple[str, ...], params: RsaParams, name: str) -> rsa.RDM:
    """Reduce (standardise + SVD) a (n_stimuli, d) matrix and take its RDM."""
    try:
        scores, explained = rsa.reduce(matrix, params.variance, params.components, params.standardise,
                                         params.min_components)
        upper = rsa.rdm_upper(scores, params.dissimilarity)
    except ValueError as exc:
        raise NeurolatentError(f"rsa: {name}: {exc}") from None
    return rsa.RDM(upper, stimuli, params.dissimilarity, name,
                   {"components": int(scores.shape[1]), "variance": explained})


def _seed(params: RsaParams, *names: str) -> np.random.Generator:
    return np.random.default_rng([params.seed, *(zlib.crc32(n.encode()) for n in names)])


def union_vectors(rdms: list[rsa.RDM], order: list[str]) -> np.ndarray:
    """(n_rdms, cells over ``order``) with NaN for the pairs an RDM does not have."""
    position = {name: i for i, name in enumerate(order)}
    n = len(order)
    upper = np.triu_indices(n, k=1)
    out = np.full((len(rdms), len(upper[0])), np.nan)
    for k, item in enumerate(rdms):
        rows = np.array([position[name] for name in item.stimuli])
        square = np.full((n, n), np.nan)
        square[np.ix_(rows, rows)] = item.square()
        out[k] = square[upper]
    return out


def compare_subject(fmri_rdm: rsa.RDM, model_rdm: rsa.RDM, params: RsaParams, device: str) -> dict:
    """One subject, one fMRI representation, one model: statistic, null, bootstrap, the study's r."""
    rng = _seed(params, fmri_rdm.name, model_rdm.name)
    test = rsa.mantel(model_rdm.upper, fmri_rdm.upper, params.compare, params.permutations, rng, device=device)
    boot = rsa.bootstrap(model_rdm.upper, fmri_rdm.upper, params.compare, params.bootstrap, rng)
    r_pearson = rsa.compare(model_rdm.upper, fmri_rdm.upper, "pearson")
    return {"r": test.statistic, "p": test.p, "null": test.null, "boot": boot, "r_pearson": r_pearson,
            "p_naive_wrong_df": rsa.naive_p(r_pearson, len(fmri_rdm.upper)), "cells": len(fmri_rdm.upper)}


def run_rsa(params: RsaParams, preprocess: PreprocessParams, fmri_npy: Path, fmri_index: Path, samples_dir: Path,
            trials_path: Path, stimuli_path: Path, images_dir: Path, truth_dir: Path, rdms_dir: Path,
            metrics_json: Path, plots_dir: Path, device: str = "cpu") -> dict:
    """The stage; see the module docstring."""
    stimuli = pd.read_parquet(stimuli_path)
    fmri: dict[str, dict[str, StimulusMatrix]] = {}
    if "ae" in params.fmri:
        fmri["ae"] = fmri_latents(fmri_npy, fmri_index)
    if "samples" in params.fmri:
        fmri["samples"] = fmri_samples(samples_dir, trials_path, preprocess)
    models = image_models(images_dir, stimuli)
    planted = planted_features(truth_dir)
    if planted is not None:
        models["planted"] = planted
    tail = (1 - params.ci) / 2

    rdms: list[rsa.RDM] = []
    model_rdms: dict[tuple[str, tuple[str, ...]], rsa.RDM] = {}
    subject_rows, group_rows, metrics = [], [], {}
    for kind, per_subject in fmri.items():
        fmri_rdms = []
        results: dict[str, list[dict]] = {model: [] for model in models}
        for subject, sample in per_subject.items():
            fmri_rdm = rdm_of(sample.matrix, sample.stimuli, params, f"{kind}/{subject}")
            fmri_rdm.meta["subject"] = subject
            fmri_rdms.append(fmri_rdm)
            for model, features in models.items():
                key = (model, sample.stimuli)
                if key not in model_rdms:
                    model_rdms[key] = rdm_of(features.rows(sample.stimuli), sample.stimuli, params, f"{model}/{subject}")
                    model_rdms[key].meta["subject"] = subject
                result = compare_subject(fmri_rdm, model_rdms[key], params, device)
                results[model].append(result)
                subject_rows.append({"fmri": kind, "model": model, "subject": subject, "stimuli": sample.matrix.shape[0],
                                     **{k: v for k, v in result.items() if k not in ("null", "boot")},
                                     "ci_low": float(np.quantile(result["boot"], tail)),
                                     "ci_high": float(np.quantile(result["boot"], 1 - tail))})
        rdms += fmri_rdms
        seen = set().union(*(r.stimuli for r in fmri_rdms))
        order = [name for name in stimuli["image_name"] if name in seen]
        if len(fmri_rdms) >= 2:
            lower, upper = rsa.noise_ceiling(union_vectors(fmri_rdms, order), params.compare)
        else:
            lower = upper = float("nan")
        metrics[f"{kind}.noise_ceiling_lower"] = lower
        metrics[f"{kind}.noise_ceiling_upper"] = upper
        metrics[f"{kind}.components"] = float(np.mean([r.meta["components"] for r in fmri_rdms]))
        metrics[f"{kind}.variance"] = float(np.mean([r.meta["variance"] for r in fmri_rdms]))
        for model, per in results.items():
            r = float(np.mean([x["r"] for x in per]))
            null = np.mean([x["null"] for x in per], axis=0)
            boot = np.mean([x["boot"] for x in per], axis=0)
            r_pearson = float(np.mean([x["r_pearson"] for x in per]))
            row = {"comparison": f"{kind}: {model}", "fmri": kind, "model": model, "r": r,
                   "p": (1 + int((null >= r - 1e-6).sum())) / (1 + len(null)),
                   "ci_low": float(np.quantile(boot, tail)), "ci_high": float(np.quantile(boot, 1 - tail)),
                   "r_pearson": r_pearson,
                   # the study's test, cells of every subject counted as independent observations
                   "p_naive_wrong_df": rsa.naive_p(r_pearson, sum(x["cells"] for x in per)),
                   "noise_ceiling_lower": lower, "noise_ceiling_upper": upper}
            group_rows.append(row)
            for field in ("r", "p", "ci_low", "ci_high", "r_pearson", "p_naive_wrong_df"):
                metrics[f"{kind}.{model}.{field}"] = row[field]
    rdms += list(model_rdms.values())
    for model in models:
        reduced = [r for (m, _), r in model_rdms.items() if m == model]
        metrics[f"{model}.components"] = float(np.mean([r.meta["components"] for r in reduced]))
        metrics[f"{model}.variance"] = float(np.mean([r.meta["variance"] for r in reduced]))
    metrics.update({"subjects": len(next(iter(fmri.values()))), "permutations": params.permutations,
                    "stimuli_per_subject": float(np.mean([r["stimuli"] for r in subject_rows]))})
    metrics = {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in metrics.items()}

    with atomic_dir(Path(rdms_dir)) as out:
        save_rdms(rdms, out)
    with atomic_dir(Path(plots_dir)) as out:
        pd.DataFrame(group_rows).to_csv(out / "group.csv", index=False)
        pd.DataFrame(subject_rows).to_csv(out / "subjects.csv", index=False)
        figures = draw_figures(rdms, fmri, models, pd.DataFrame(group_rows), stimuli, out)
    with atomic_file(Path(metrics_json)) as temp:
        write_json(metrics, temp)
    _log_figures([Path(plots_dir) / f.name for f in figures])
    return metrics


def _log_figures(paths: list[Path]) -> None:
    import mlflow

    if mlflow.active_run() is not None:
        for path in paths:
            mlflow.log_artifact(str(path), artifact_path="rsa")


def _file_name(name: str) -> str:
    return name.replace("/", "__").replace(":", "_") + ".npy"


def save_rdms(rdms: list[rsa.RDM], folder: Path) -> None:
    """Each RDM's upper triangle as ``<name>.npy`` (float64) and ``index.json`` describing them."""
    index = []
    for item in rdms:
        save_npy(item.upper, Path(folder) / _file_name(item.name))
        index.append({"name": item.name, "file": _file_name(item.name), "dissimilarity": item.dissimilarity,
                      "stimuli": list(item.stimuli), **item.meta})
    write_json(index, Path(folder) / "index.json")


def load_rdms(folder: Path) -> list[rsa.RDM]:
    """The RDMs of ``data/rdms`` (see :func:`save_rdms`); ``.to_rsatoolbox()`` converts each."""
    index_path = Path(folder) / "index.json"
    if not index_path.is_file():
        raise NeurolatentError(f"{index_path}: missing (run the rsa stage first)")
    out = []
    for entry in json.loads(index_path.read_text()):
        meta = {k: v for k, v in entry.items() if k not in ("name", "file", "dissimilarity", "stimuli")}
        out.append(rsa.RDM(np.load(Path(folder) / entry["file"]), tuple(entry["stimuli"]), entry["dissimilarity"],
                           entry["name"], meta))
    return out


def classical_mds(square: np.ndarray, dims: int = 2) -> np.ndarray:
    """Torgerson's classical MDS of an (n, n) dissimilarity matrix: (n, dims) coordinates."""
    n = len(square)
    centring = np.eye(n) - 1.0 / n
    gram = -0.5 * centring @ (square ** 2) @ centring
    values, vectors = np.linalg.eigh(gram)
    top = np.argsort(values)[::-1][:dims]
    return vectors[:, top] * np.sqrt(np.clip(values[top], 0, None))


def draw_figures(rdms: list[rsa.RDM], fmri: dict, models: dict, group: pd.DataFrame, stimuli: pd.DataFrame,
                 out: Path) -> list[Path]:
    """rdms.png (first subject, images ordered by category), rsa_per_model.png, mds.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    category = dict(zip(stimuli["image_name"], stimuli["category"]))
    first_subject = sorted(next(iter(fmri.values())))[0]
    shown = [r for r in rdms if r.meta.get("subject") == first_subject]
    categories = sorted(set(category.values()))
    colours = dict(zip(categories, plt.cm.tab10.colors))

    figure, axes = plt.subplots(1, len(shown), figsize=(2.6 * len(shown), 2.9), squeeze=False)
    for ax, item in zip(axes[0], shown):
        order = sorted(range(item.n), key=lambda i: (category[item.stimuli[i]], item.stimuli[i]))
        square = item.square()[np.ix_(order, order)]
        ranked = squareform_ranks(square)
        ax.imshow(ranked, cmap="viridis", interpolation="nearest")
        edges = np.flatnonzero(np.diff([categories.index(category[item.stimuli[i]]) for i in order])) + 0.5
        for edge in edges:
            ax.axhline(edge, color="white", lw=0.6)
            ax.axvline(edge, color="white", lw=0.6)
        ax.set_title(item.name, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    figure.suptitle(f"RDMs of {first_subject} (percentile of dissimilarity; images by category: "
                    f"{', '.join(categories)})", fontsize=9)
    figure.tight_layout()
    figure.savefig(out / "rdms.png", dpi=90)
    plt.close(figure)

    kinds = list(fmri)
    figure, axes = plt.subplots(1, len(kinds), figsize=(4.2 * len(kinds), 3.4), squeeze=False)
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
        ax.set_ylabel("RDM correlation (mean over subjects)", fontsize=8)
    figure.suptitle("RSA per image model: bars 95% bootstrap CI, * permutation p < 0.05", fontsize=9)
    figure.tight_layout()
    figure.savefig(out / "rsa_per_model.png", dpi=90)
    plt.close(figure)

    figure, axes = plt.subplots(1, len(shown), figsize=(2.6 * len(shown), 2.8), squeeze=False)
    for ax, item in zip(axes[0], shown):
        coordinates = classical_mds(item.square())
        ax.scatter(coordinates[:, 0], coordinates[:, 1], s=6,
                   c=[colours[category[name]] for name in item.stimuli])
        ax.set_title(item.name, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [plt.Line2D([], [], marker="o", ls="", color=colours[c], label=c) for c in categories]
    figure.legend(handles=handles, loc="lower center", ncol=len(categories), fontsize=7)
    figure.suptitle(f"Classical MDS of each space ({first_subject})", fontsize=9)
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    figure.savefig(out / "mds.png", dpi=90)
    plt.close(figure)
    return [out / "rdms.png", out / "rsa_per_model.png", out / "mds.png"]


def squareform_ranks(square: np.ndarray) -> np.ndarray:
    """An RDM's off-diagonal values as percentiles (0-100), for a heatmap whose colours use the range."""
    n = len(square)
    upper = np.triu_indices(n, k=1)
    ranks = rsa.rank(square[upper])
    out = np.zeros_like(square)
    out[upper] = 100.0 * (ranks - 1) / max(1, len(ranks) - 1)
    return out + out.T
