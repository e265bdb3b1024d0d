"""Stage ``rsa``: every image model against every fMRI representation, per subject and group.

For each subject, each fMRI representation (``rsa.fmri``: ``ae`` latents, ``samples`` of the
visual region) and each image model (the embeddings' manifest, plus ``planted`` with synthetic
data), over the images that subject saw (joined by name):

1. both matrices are standardised and reduced by SVD (``rsa.variance`` or ``rsa.components``);
2. their RDMs (``rsa.dissimilarity``) are compared (``rsa.compare``) on the upper triangle;
3. a Mantel test (``rsa.permutations``) gives p, a bootstrap over stimuli (``rsa.bootstrap``)
   the CI, and the study's Pearson r and naive p (cells counted as independent) are kept beside.

The group value is the mean over subjects; its null distribution is the mean of the subjects'
permutation nulls, its CI the mean of their bootstrap replicates. The noise ceiling (leave one
subject out) uses the pairs of images the subjects share.

Outputs: ``data/rdms/`` (:mod:`neurolatent.io.rdms`), ``metrics/rsa.json`` (flat keys
``rsa.<fmri>.<model>.<statistic>``), ``plots/rsa/`` (``group.csv`` for ``dvc plots``,
``subjects.csv``, and the figures: RDM heatmaps ordered by category, RSA per model with noise
ceiling, an MDS of each space).
"""

from __future__ import annotations

import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from neurolatent import figures, tracking
from neurolatent.errors import NeurolatentError
from neurolatent.io.files import atomic_dir, write_metrics
from neurolatent.io.rdms import save_rdms
from neurolatent.io.representations import (StimulusMatrix, fmri_latents, fmri_samples, fmri_trial_samples,
                                            image_models, planted_features)
from neurolatent.runtime import torch_device
from neurolatent.science import rsa
from neurolatent.science.stats import permutation_p

STATISTICS = ("r", "p", "ci_low", "ci_high", "r_pearson", "p_naive_wrong_df")


def _rng(params: SimpleNamespace, *names: str) -> np.random.Generator:
    return np.random.default_rng([params.seed, *(zlib.crc32(n.encode()) for n in names)])


def _rdm(matrix: np.ndarray, stimuli: tuple[str, ...], params: SimpleNamespace, name: str, subject: str) -> rsa.RDM:
    try:
        item = rsa.reduced_rdm(matrix, stimuli, name, params.dissimilarity, params.variance, params.components,
                               params.standardise, params.min_components)
    except ValueError as exc:
        raise NeurolatentError(f"rsa: {name}: {exc}") from None
    item.meta["subject"] = subject
    return item


def compare_subject(fmri_rdm: rsa.RDM, model_rdm: rsa.RDM, params: SimpleNamespace, device: str) -> dict:
    """One subject, one fMRI representation, one model: statistic, null, bootstrap, the study's r."""
    rng = _rng(params, fmri_rdm.name, model_rdm.name)
    test = rsa.mantel(model_rdm.upper, fmri_rdm.upper, params.compare, params.permutations, rng, device=device)
    boot = rsa.bootstrap(model_rdm.upper, fmri_rdm.upper, params.compare, params.bootstrap, rng)
    r_pearson = rsa.compare(model_rdm.upper, fmri_rdm.upper, "pearson")
    return {"r": test.statistic, "p": test.p, "null": test.null, "boot": boot, "r_pearson": r_pearson,
            "p_naive_wrong_df": rsa.naive_p(r_pearson, len(fmri_rdm.upper)), "cells": len(fmri_rdm.upper)}


def _inputs(params: SimpleNamespace, paths: SimpleNamespace) -> tuple[dict, dict, pd.DataFrame]:
    """fMRI representations {kind: {subject: matrix}}, image models {name: matrix}, stimuli."""
    stimuli = pd.read_parquet(paths.stimuli)
    fmri: dict[str, dict[str, StimulusMatrix]] = {}
    if "ae" in params.rsa.fmri:
        fmri["ae"] = fmri_latents(paths.fmri, paths.fmri_index)
    if "samples" in params.rsa.fmri:
        fmri["samples"] = fmri_samples(fmri_trial_samples(paths.samples, paths.trials, params.preprocess.lag_s,
                                                          params.preprocess.anchor))
    models = image_models(paths.images, stimuli)
    planted = planted_features(paths.truth)
    if planted is not None:
        models["planted"] = planted
    return fmri, models, stimuli


def _group_row(kind: str, model: str, per_subject: list[dict], ceiling: tuple[float, float], tail: float) -> dict:
    """The group statistics of one comparison from its subjects' results."""
    r = float(np.mean([x["r"] for x in per_subject]))
    null = np.mean([x["null"] for x in per_subject], axis=0)
    boot = np.mean([x["boot"] for x in per_subject], axis=0)
    r_pearson = float(np.mean([x["r_pearson"] for x in per_subject]))
    return {"comparison": f"{kind}: {model}", "fmri": kind, "model": model, "r": r, "p": permutation_p(r, null),
            "ci_low": float(np.quantile(boot, tail)), "ci_high": float(np.quantile(boot, 1 - tail)),
            "r_pearson": r_pearson,
            # the study's test, cells of every subject counted as independent observations
            "p_naive_wrong_df": rsa.naive_p(r_pearson, sum(x["cells"] for x in per_subject)),
            "noise_ceiling_lower": ceiling[0], "noise_ceiling_upper": ceiling[1]}


def run(params: SimpleNamespace, paths: SimpleNamespace) -> dict:
    settings = params.rsa
    device = torch_device(params.compute.device, params.compute.threads)
    fmri, models, stimuli = _inputs(params, paths)
    tail = (1 - settings.ci) / 2
    fmri_rdms: list[rsa.RDM] = []
    model_rdms: dict[tuple[str, tuple[str, ...]], rsa.RDM] = {}
    subject_rows, group_rows, metrics = [], [], {}
    for kind, per_subject in fmri.items():
        kind_rdms, results = [], {model: [] for model in models}
        for subject, sample in per_subject.items():
            kind_rdms.append(_rdm(sample.matrix, sample.stimuli, settings, f"{kind}/{subject}", subject))
            for model, features in models.items():
                key = (model, sample.stimuli)
                if key not in model_rdms:
                    model_rdms[key] = _rdm(features.rows(sample.stimuli), sample.stimuli, settings,
                                           f"{model}/{subject}", subject)
                result = compare_subject(kind_rdms[-1], model_rdms[key], settings, device)
                results[model].append(result)
                subject_rows.append({"fmri": kind, "model": model, "subject": subject, "stimuli": sample.matrix.shape[0],
                                     **{k: v for k, v in result.items() if k not in ("null", "boot")},
                                     "ci_low": float(np.quantile(result["boot"], tail)),
                                     "ci_high": float(np.quantile(result["boot"], 1 - tail))})
        fmri_rdms += kind_rdms
        seen = set().union(*(r.stimuli for r in kind_rdms))
        order = [name for name in stimuli["image_name"] if name in seen]
        ceiling = (rsa.noise_ceiling(rsa.union_vectors(kind_rdms, order), settings.compare) if len(kind_rdms) >= 2
                   else (float("nan"), float("nan")))
        metrics.update({f"rsa.{kind}.noise_ceiling_lower": ceiling[0], f"rsa.{kind}.noise_ceiling_upper": ceiling[1],
                        f"rsa.{kind}.components": float(np.mean([r.meta["components"] for r in kind_rdms])),
                        f"rsa.{kind}.variance": float(np.mean([r.meta["variance"] for r in kind_rdms]))})
        for model, per in results.items():
            group_rows.append(_group_row(kind, model, per, ceiling, tail))
            metrics.update({f"rsa.{kind}.{model}.{name}": group_rows[-1][name] for name in STATISTICS})
    for model in models:
        reduced = [r for (m, _), r in model_rdms.items() if m == model]
        metrics[f"rsa.{model}.components"] = float(np.mean([r.meta["components"] for r in reduced]))
        metrics[f"rsa.{model}.variance"] = float(np.mean([r.meta["variance"] for r in reduced]))
    metrics.update({"rsa.subjects": len(next(iter(fmri.values()))), "rsa.permutations": settings.permutations,
                    "rsa.stimuli_per_subject": float(np.mean([r["stimuli"] for r in subject_rows]))})

    rdms = fmri_rdms + list(model_rdms.values())
    with atomic_dir(Path(paths.rdms)) as out:
        save_rdms(rdms, out)
    category = dict(zip(stimuli["image_name"], stimuli["category"]))
    first_subject = [r for r in rdms if r.meta["subject"] == min(r.meta["subject"] for r in rdms)]
    with atomic_dir(Path(paths.plots)) as out:
        pd.DataFrame(group_rows).to_csv(out / "group.csv", index=False)
        pd.DataFrame(subject_rows).to_csv(out / "subjects.csv", index=False)
        figures.rdm_heatmaps(first_subject, category, out / "rdms.png")
        figures.rsa_bars(pd.DataFrame(group_rows), out / "rsa_per_model.png")
        figures.mds_scatter(first_subject, category, out / "mds.png")
    write_metrics(metrics, paths.metrics)
    tracking.log_artifacts([Path(paths.plots) / name for name in ("rdms.png", "rsa_per_model.png", "mds.png")], "rsa")
    return metrics
