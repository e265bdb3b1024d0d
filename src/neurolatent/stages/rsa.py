"""Stage ``rsa``: every image model against every fMRI representation, per subject and group.

For each subject, each fMRI representation (``rsa.fmri``: ``ae`` latents, ``samples`` of the
visual region) and each image model (the embeddings' manifest, plus ``planted`` with synthetic
data), over the images that subject saw (joined by name):

1. both matrices are standardised and reduced by SVD (``rsa.variance`` or ``rsa.components``);
2. their RDMs (``rsa.dissimilarity``) are compared (``rsa.compare``) on the upper triangle
   (``rsa.triangle: full``, the whole squares: a pitfall kept to show its effect);
3. a Mantel test (``rsa.permutations``) gives p, a bootstrap over stimuli (``rsa.bootstrap``)
   the CI, and the study's Pearson r and naive p (cells counted as independent) are kept beside;
4. linear CKA with the unbiased HSIC (:mod:`neurolatent.science.cka`) of the unreduced matrices,
   with its own permutation p (``rsa.cka_permutations``).

Rows meet by image name; ``rsa.pairing: position`` pairs them as the study did instead (each
subject's rows in the order of first presentation against the image models' rows in their own
order, :func:`neurolatent.io.representations.paired_by_position`).

Each model's RDM is computed once, over every image any subject saw; a subject is compared with
its rows. The group value is the mean over subjects; its permutation test and bootstrap relabel
and resample the union of the subjects' images once per replicate, the same draw for every
subject restricted to its own images (within the atoms of who saw which image:
:func:`neurolatent.science.rsa.group_mantel`, ``group_bootstrap``), so the group null is as wide
as it must be when subjects saw the same images. The noise ceiling (leave one subject
out) uses the pairs of images the subjects share.

Outputs: ``data/rdms/`` (:mod:`neurolatent.io.rdms`), ``metrics/rsa.json`` (flat keys
``rsa.<fmri>.<model>.<statistic>``), ``plots/rsa/`` (``group.csv`` for ``dvc plots``,
``subjects.csv``, and the figures: RDM heatmaps ordered by category, RSA per model with noise
ceiling, an MDS of each space, and with indexed ``embed.layers`` RSA by layer, ``layers.png``).
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from neurolatent import figures, tracking
from neurolatent.errors import NeurolatentError
from neurolatent.io.files import atomic_dir, write_metrics
from neurolatent.io.rdms import save_rdms
from neurolatent.io.representations import (StimulusMatrix, first_presentations, fmri_latents, fmri_samples,
                                            fmri_trial_samples, image_layers, image_models, paired_by_position,
                                            planted_features)
from neurolatent.runtime import progress, torch_device
from neurolatent.science import cka, rsa

log = logging.getLogger(__name__)

STATISTICS = ("r", "p", "ci_low", "ci_high", "r_pearson", "p_naive_wrong_df", "cka", "cka_p")


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


def _inputs(params: SimpleNamespace, paths: SimpleNamespace) -> tuple[dict, dict, pd.DataFrame]:
    """fMRI representations {kind: {subject: matrix}}, image models {name: matrix}, stimuli."""
    stimuli = pd.read_parquet(paths.stimuli)
    fmri: dict[str, dict[str, StimulusMatrix]] = {}
    if "ae" in params.rsa.fmri:
        fmri["ae"] = fmri_latents(paths.fmri, paths.fmri_index)
    if "samples" in params.rsa.fmri:
        fmri["samples"] = fmri_samples(fmri_trial_samples(paths.samples, paths.trials, params.preprocess.lag_s,
                                                          params.preprocess.anchor, params.preprocess.rounding))
    if params.rsa.pairing == "position":
        shown = first_presentations(pd.read_parquet(paths.trials))
        order = tuple(stimuli["image_name"])
        fmri = {kind: {subject: paired_by_position(sample, shown[subject], order)
                       for subject, sample in per_subject.items()} for kind, per_subject in fmri.items()}
    models = image_models(paths.images, stimuli)
    planted = planted_features(paths.truth)
    if planted is not None:
        models["planted"] = planted
    return fmri, models, stimuli


def _comparison_rows(kind: str, model: str, fmri_rdms: list[rsa.RDM], model_rdm: rsa.RDM, settings: SimpleNamespace,
                     ceiling: tuple[float, float], test: rsa.GroupPermutationResult,
                     alignment: rsa.GroupPermutationResult) -> tuple[list[dict], dict]:
    """One fMRI representation against one model: a row per subject and the group row.

    ``test`` is the group Mantel test and ``alignment`` the CKA test of the pair; the bootstrap
    resamples the union of the subjects' images once per replicate for every subject
    (:func:`neurolatent.science.rsa.group_bootstrap`). Each subject's p comes from its part of the
    shared permutations, its CI from its part of the shared resamples (a bootstrap of its own
    images stratified by who else saw them)."""
    tail = (1 - settings.ci) / 2
    boot = rsa.group_bootstrap(fmri_rdms, model_rdm, settings.compare, settings.bootstrap, _rng(settings, kind, model),
                               triangle=settings.triangle)
    subject_rows, pearson, cells = [], [], 0
    for s, fmri_rdm in enumerate(fmri_rdms):
        own_model = model_rdm.subset(fmri_rdm.stimuli)
        pearson.append(rsa.compare(own_model.upper, fmri_rdm.upper, "pearson", settings.triangle))
        own_cells = fmri_rdm.n ** 2 if settings.triangle == "full" else len(fmri_rdm.upper)
        cells += own_cells
        subject_rows.append({"fmri": kind, "model": model, "subject": fmri_rdm.meta["subject"], "stimuli": fmri_rdm.n,
                             "r": float(test.subject_statistics[s]), "p": float(test.subject_p[s]),
                             "ci_low": float(np.quantile(boot.subject_replicates[s], tail)),
                             "ci_high": float(np.quantile(boot.subject_replicates[s], 1 - tail)),
                             "r_pearson": pearson[-1], "p_naive_wrong_df": rsa.naive_p(pearson[-1], own_cells),
                             "cka": float(alignment.subject_statistics[s]), "cka_p": float(alignment.subject_p[s]),
                             "cells": own_cells})
    r_pearson = float(np.mean(pearson))
    group = {"comparison": f"{kind}: {model}", "fmri": kind, "model": model, "r": test.statistic, "p": test.p,
             "ci_low": float(np.quantile(boot.replicates, tail)),
             "ci_high": float(np.quantile(boot.replicates, 1 - tail)), "r_pearson": r_pearson,
             # the study's test, cells of every subject counted as independent observations
             "p_naive_wrong_df": rsa.naive_p(r_pearson, cells),
             "cka": alignment.statistic, "cka_p": alignment.p,
             "noise_ceiling_lower": ceiling[0], "noise_ceiling_upper": ceiling[1]}
    return subject_rows, group


def run(params: SimpleNamespace, paths: SimpleNamespace) -> dict:
    settings = params.rsa
    device = torch_device(params.compute.device, params.compute.threads)
    fmri, models, stimuli = _inputs(params, paths)
    seen = set().union(*(sample.stimuli for per_subject in fmri.values() for sample in per_subject.values()))
    union = tuple(name for name in stimuli["image_name"] if name in seen)
    # one RDM per model, over every image any subject saw; each subject is compared with its rows
    model_rdms = {model: _rdm(features.rows(union), union, settings, model, "all") for model, features in models.items()}
    fmri_rdms: list[rsa.RDM] = []
    subject_rows, group_rows, metrics = [], [], {}
    # one bar over every permutation and resample: at BOLD5000's size the tests take minutes a kind
    bar = progress(total=len(fmri) * (settings.permutations + settings.cka_permutations
                                      + len(model_rdms) * settings.bootstrap), desc="rsa", unit="replicate")
    for kind, per_subject in fmri.items():
        kind_rdms = [_rdm(sample.matrix, sample.stimuli, settings, f"{kind}/{subject}", subject)
                     for subject, sample in per_subject.items()]
        fmri_rdms += kind_rdms
        order = [name for name in union if name in set().union(*(r.stimuli for r in kind_rdms))]
        ceiling = (rsa.noise_ceiling(rsa.union_vectors(kind_rdms, order), settings.compare) if len(kind_rdms) >= 2
                   else (float("nan"), float("nan")))
        metrics.update({f"rsa.{kind}.noise_ceiling_lower": ceiling[0], f"rsa.{kind}.noise_ceiling_upper": ceiling[1],
                        f"rsa.{kind}.components": float(np.mean([r.meta["components"] for r in kind_rdms])),
                        f"rsa.{kind}.variance": float(np.mean([r.meta["variance"] for r in kind_rdms]))})
        # every model under the same relabellings: one pass over the subjects' RDMs serves them all
        tests = rsa.group_mantel_models(kind_rdms, model_rdms, settings.compare, settings.permutations,
                                        _rng(settings, kind), device=device, triangle=settings.triangle,
                                        progress=bar.update)
        alignments = cka.group_cka_models([(sample.matrix, sample.stimuli) for sample in per_subject.values()],
                                          {model: models[model].rows(union) for model in model_rdms}, union,
                                          settings.cka_permutations, _rng(settings, kind, "cka"), device,
                                          progress=bar.update)
        for model, model_rdm in model_rdms.items():
            rows, group = _comparison_rows(kind, model, kind_rdms, model_rdm, settings, ceiling, tests[model],
                                           alignments[model])
            bar.update(settings.bootstrap)
            subject_rows += rows
            group_rows.append(group)
            metrics.update({f"rsa.{kind}.{model}.{name}": group[name] for name in STATISTICS})
    bar.close()
    for model, model_rdm in model_rdms.items():
        metrics[f"rsa.{model}.components"] = float(model_rdm.meta["components"])
        metrics[f"rsa.{model}.variance"] = float(model_rdm.meta["variance"])
    metrics.update({"rsa.subjects": len(next(iter(fmri.values()))), "rsa.permutations": settings.permutations,
                    "rsa.stimuli_per_subject": float(np.mean([r["stimuli"] for r in subject_rows]))})

    rdms = fmri_rdms + list(model_rdms.values())
    log.info("rsa: writing %d RDMs of %d stimuli at most, then drawing the figures", len(rdms), len(union))
    with atomic_dir(Path(paths.rdms)) as out:
        save_rdms(rdms, out, categories=dict(zip(stimuli["image_name"], stimuli["category"])))
    category = dict(zip(stimuli["image_name"], stimuli["category"]))
    first = [r for r in fmri_rdms if r.meta["subject"] == fmri_rdms[0].meta["subject"]]
    first += [m.subset(first[0].stimuli) for m in model_rdms.values()]
    with atomic_dir(Path(paths.plots)) as out:
        pd.DataFrame(group_rows).to_csv(out / "group.csv", index=False)
        pd.DataFrame(subject_rows).to_csv(out / "subjects.csv", index=False)
        figures.rdm_heatmaps(first, category, out / "rdms.png")
        figures.rsa_bars(pd.DataFrame(group_rows), out / "rsa_per_model.png", settings.compare, settings.ci)
        figures.mds_scatter(first, category, out / "mds.png")
        layers = image_layers(paths.images)  # embed.layers: a curve per transformer when it has indexed layers
        if (layers["layer"].astype(str) != "last").any():
            figures.rsa_layers(pd.DataFrame(group_rows).merge(layers, on="model").assign(
                compare=settings.compare, ci=settings.ci), out / "layers.png")
    write_metrics(metrics, paths.metrics)
    tracking.log_artifacts(sorted(Path(paths.plots).glob("*.png")) + sorted(Path(paths.plots).glob("*.svg")), "rsa")
    tracking.log_table(pd.DataFrame(group_rows), "rsa/group.json")
    tracking.log_table(pd.DataFrame(subject_rows), "rsa/subjects.json")
    return metrics
