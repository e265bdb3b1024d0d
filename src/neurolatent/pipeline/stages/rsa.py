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
order, :func:`neurolatent.science.stimuli.paired_by_position`).

Each model's RDM is computed once, over every image any subject saw; a subject is compared with
its rows. The group value is the mean over subjects; its permutation test and bootstrap relabel
and resample the union of the subjects' images once per replicate, the same draw for every
subject restricted to its own images (within the atoms of who saw which image:
:func:`neurolatent.science.rsa.results.compare_regions`), so the group null is as wide
as it must be when subjects saw the same images. The noise ceiling (leave one subject
out) uses the pairs of images the subjects share.

Outputs: ``data/rdms/`` (:mod:`neurolatent.io.rdms`), ``metrics/rsa.json`` (flat keys
``rsa.<fmri>.<model>.<statistic>``), ``plots/rsa/`` (``group.csv`` for ``dvc plots``,
``subjects.csv``, and the figures: RDM heatmaps ordered by category, RSA per model with noise
ceiling, an MDS of each space, and with indexed ``embed.layers`` RSA by layer, ``layers.png``).
"""

from __future__ import annotations

import itertools
import logging
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from neurolatent.errors import NeurolatentError
from neurolatent.io import bids
from neurolatent.io.files import atomic_dir, write_metrics
from neurolatent.io.rdms import save_rdms
from neurolatent.io.representations import (first_presentations, fmri_aligned, fmri_latents, fmri_samples,
                                            fmri_trial_samples, image_layers, image_models, planted_features,
                                            roi_columns, voxel_labels)
from neurolatent.pipeline import tracking
from neurolatent.pipeline.numerics import torch_device
from neurolatent.pipeline.outputs import figures, summaries
from neurolatent.pipeline.parallel import parallel_map, scheduler_address
from neurolatent.pipeline.progress import progress
from neurolatent.science.cka import group_cka_models
from neurolatent.science.rsa.inference import familywise_p
from neurolatent.science.rsa.rdm import RDM, category_rdm, reduced_rdm
from neurolatent.science.rsa.results import (RepresentationComparison, compare_regions, interaction, model_difference,
                                             subject_draws)
from neurolatent.science.stats import named_rng
from neurolatent.science.stimuli import StimulusMatrix, paired_by_position

log = logging.getLogger(__name__)

#: the region of every visual ROI together; with ROI labels each ROI is a region of its own too
UNION = "union"
#: the category model: the hypothesis RDM of COCO / ImageNet / Scene membership
CATEGORY = "category"

#: the line the stage ends with (its best model, CI, p)
closing_line = summaries.rsa_line


def _rdm(matrix: np.ndarray, stimuli: tuple[str, ...], params: SimpleNamespace, name: str, subject: str) -> RDM:
    try:
        item = reduced_rdm(matrix, stimuli, name, params.dissimilarity, params.variance, params.components,
                           params.standardise, params.min_components)
    except ValueError as exc:
        raise NeurolatentError(f"rsa: {name}: {exc}") from None
    item.meta["subject"] = subject
    return item


def _inputs(params: SimpleNamespace, paths: SimpleNamespace) -> tuple[dict, dict, pd.DataFrame, pd.DataFrame | None]:
    """fMRI representations {kind: {subject: matrix}}, image models {name: matrix} (with the planted
    truth's), stimuli, and the samples' voxel labels (None without ROIs)."""
    stimuli = pd.read_parquet(paths.stimuli)
    fmri: dict[str, dict[str, StimulusMatrix]] = {}
    if "ae" in params.rsa.fmri:
        fmri["ae"] = fmri_latents(paths.fmri, paths.fmri_index)
    if "align" in params.rsa.fmri:
        fmri["align"] = fmri_aligned(paths.align)
    if "samples" in params.rsa.fmri:
        fmri["samples"] = fmri_samples(fmri_trial_samples(paths.samples, paths.trials, params.preprocess.lag_s,
                                                          params.preprocess.anchor, params.preprocess.rounding))
    labels = voxel_labels(paths.samples) if "samples" in fmri else None
    if params.rsa.pairing == "position":
        shown = first_presentations(pd.read_parquet(paths.trials))
        order = tuple(stimuli["image_name"])
        fmri = {kind: {subject: paired_by_position(sample, shown[subject], order)
                       for subject, sample in per_subject.items()} for kind, per_subject in fmri.items()}
    models = image_models(paths.images, stimuli) | planted_features(paths.truth)
    return fmri, models, stimuli, labels


def _regions(kind: str, per_subject: dict[str, StimulusMatrix], labels: pd.DataFrame | None) -> dict[str, dict]:
    """{region: {subject: matrix}}: the union of the visual ROIs, then each ROI (both hemispheres)
    where the samples carry ROI labels (the AE's latents and unlabelled samples: the union only)."""
    regions = {UNION: per_subject}
    if kind == "samples" and labels is not None:
        for roi in [roi for roi in bids.ROIS if roi in set(labels["roi"])]:  # early to late visual areas
            regions[roi] = roi_columns(per_subject, labels, roi)
    return regions


def _model_tables(kind: str, comparisons: dict[str, RepresentationComparison], fwe: dict, draws: np.ndarray
                  ) -> tuple[list[dict], list[dict], list[dict]]:
    """The ROI table (a row per region x model), the pairwise model comparisons within each region,
    and the ROI x model interactions between every two ROIs (not the union)."""
    rois, pairs, interactions = [], [], []
    for region, comparison in comparisons.items():
        for model, found in comparison.models.items():
            row = found.group_row()
            rois.append({"roi": region, "fmri": kind, "model": model, "r": row["r"], "ci_low": row["ci_low"],
                         "ci_high": row["ci_high"], "p": row["p"], "p_method": row["p_method"],
                         "p_fwe": fwe[region, model][0], "p_fwe_method": fwe[region, model][1],
                         "ceiling_low": comparison.ceiling[0], "ceiling_high": comparison.ceiling[1]})
        for first, second in itertools.combinations(comparison.models, 2):
            difference = model_difference(comparison.models[first], comparison.models[second], draws)
            pairs.append({"roi": region, "fmri": kind, "model_a": first, "model_b": second, **difference.row()})
    areas = [region for region in comparisons if region != UNION]
    for roi_a, roi_b in itertools.combinations(areas, 2):
        first, second = comparisons[roi_a].models, comparisons[roi_b].models
        for model_a, model_b in itertools.combinations(first, 2):
            found = interaction(first[model_a], first[model_b], second[model_a], second[model_b], draws)
            interactions.append({"fmri": kind, "roi_a": roi_a, "roi_b": roi_b, "model_a": model_a,
                                 "model_b": model_b, **found.row()})
    return rois, pairs, interactions


def run(params: SimpleNamespace, paths: SimpleNamespace) -> dict:
    """The stage on its declared ``params`` and ``paths`` (the registry's files); returns its metrics."""
    settings = params.rsa
    # exact: the permutation p of rsa.permutations; tail, gamma: a fit to the null of rsa.fit_permutations
    permutations = settings.permutations if settings.inference == "exact" else settings.fit_permutations
    device = torch_device(params.compute.device, params.compute.threads)
    fmri, models, stimuli, labels = _inputs(params, paths)
    seen = set().union(*(sample.stimuli for per_subject in fmri.values() for sample in per_subject.values()))
    union = tuple(name for name in stimuli["image_name"] if name in seen)
    category_of = dict(zip(stimuli["image_name"], stimuli["category"]))
    # one RDM per model, over every image any subject saw; each subject is compared with its rows
    model_rdms = {model: _rdm(features.rows(union), union, settings, model, "all") for model, features in models.items()}
    model_rdms[CATEGORY] = category_rdm(union, [category_of[name] for name in union])
    one_hot = pd.get_dummies(pd.Series([category_of[name] for name in union])).to_numpy(dtype=np.float64)
    regions = {kind: _regions(kind, per_subject, labels) for kind, per_subject in fmri.items()}
    fmri_rdms: list[RDM] = []
    subject_rows, group_rows, roi_rows, pair_rows, interaction_rows, metrics = [], [], [], [], [], {}
    # one bar over every permutation and resample: at BOLD5000's size the tests take minutes a region
    # with a Dask scheduler (compute.scheduler), the permutation chunks run on its workers, each
    # comparison's prepared matrices shipped once to each worker (parallel_map scatters the function)
    chunks_on = None
    if scheduler_address(params.compute.scheduler, params.compute.dask_address) is not None:
        chunks_on = partial(parallel_map, jobs=1, desc="rsa permutations", unit="chunk",
                            scheduler=params.compute.scheduler, address=params.compute.dask_address)
    bar = progress(total=sum(len(r) for r in regions.values()) * (permutations
                                                                    + len(model_rdms) * settings.bootstrap)
                   + len(fmri) * settings.cka_permutations, desc="rsa", unit="replicate")
    for kind, per_region in regions.items():
        region_rdms = {}
        for region, per_subject in per_region.items():
            label = kind if region == UNION else f"{kind}/{region}"
            region_rdms[region] = [_rdm(sample.matrix, sample.stimuli, settings, f"{label}/{subject}", subject)
                                   for subject, sample in per_subject.items()]
            fmri_rdms += region_rdms[region]
        # every model and every region under the same relabellings and resamples (name=kind): one pass
        # over a subject's RDMs serves all models, each model's ranks serve all regions, and the
        # family-wise maximum spans regions and models
        comparisons = compare_regions(
            region_rdms, model_rdms, method=settings.compare, permutations=permutations,
            bootstrap=settings.bootstrap, ci=settings.ci, seed=settings.seed, name=kind,
            triangle=settings.triangle, device=device, progress=bar.update, map_chunks=chunks_on,
            inference=settings.inference)
        for region, rdms in region_rdms.items():
            label = kind if region == UNION else f"{kind}/{region}"
            metrics.update({f"rsa.{label}.noise_ceiling_lower": comparisons[region].ceiling[0],
                            f"rsa.{label}.noise_ceiling_upper": comparisons[region].ceiling[1],
                            f"rsa.{label}.components": float(np.mean([r.meta["components"] for r in rdms])),
                            f"rsa.{label}.variance": float(np.mean([r.meta["variance"] for r in rdms]))})
        fwe = familywise_p({(region, model): found.test for region, comparison in comparisons.items()
                            for model, found in comparison.models.items()}, settings.inference)
        union_comparison, per_subject = comparisons[UNION], per_region[UNION]
        alignments = group_cka_models([(sample.matrix, sample.stimuli) for sample in per_subject.values()],
                                      {model: models[model].rows(union) if model in models else one_hot
                                       for model in model_rdms}, union, settings.cka_permutations,
                                      named_rng(settings.seed, kind, "cka"), device, progress=bar.update)
        kind_groups = [row | dict(zip(("p_fwe", "p_fwe_method"), fwe[UNION, row["model"]]))
                       for row in union_comparison.group_rows({"cka": alignments})]
        group_rows += [{"comparison": f"{kind}: {row['model']}", "fmri": kind, **row} for row in kind_groups]
        subject_rows += [{"fmri": kind, **row} for row in union_comparison.subject_rows({"cka": alignments})]
        draws = subject_draws(len(per_subject), settings.bootstrap, named_rng(settings.seed, kind, "subjects"))
        rois, pairs, interactions = _model_tables(kind, comparisons, fwe, draws)
        roi_rows += rois
        pair_rows += pairs
        interaction_rows += interactions
        for row in kind_groups:
            metrics.update({f"rsa.{kind}.{row['model']}.{name}": row[name] for name in summaries.RSA_STATISTICS})
        for row in rois:
            if row["roi"] != UNION:
                metrics.update({f"rsa.{kind}.{row['roi']}.{row['model']}.{name}": row[name]
                                for name in ("r", "ci_low", "ci_high", "p", "p_method", "p_fwe", "p_fwe_method")})
    bar.close()
    for model, model_rdm in model_rdms.items():
        metrics[f"rsa.{model}.components"] = float(model_rdm.meta["components"])
        metrics[f"rsa.{model}.variance"] = float(model_rdm.meta["variance"])
    metrics.update({"rsa.subjects": len(next(iter(fmri.values()))), "rsa.permutations": permutations,
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
        pd.DataFrame(roi_rows).to_csv(out / "rois.csv", index=False)
        pd.DataFrame(pair_rows).to_csv(out / "pairwise.csv", index=False)
        pd.DataFrame(interaction_rows).to_csv(out / "interactions.csv", index=False)
        figures.roi_heatmap(pd.DataFrame(roi_rows), out / "rois.png", settings.compare)
        figures.rdm_heatmaps(first, category, out / "rdms.png")
        figures.rsa_bars(pd.DataFrame(group_rows), out / "rsa_per_model.png", settings.compare, settings.ci)
        figures.mds_scatter(first, category, out / "mds.png")
        layers = image_layers(paths.images)  # embed.layers: a curve per transformer when it has indexed layers
        if (layers["layer"].astype(str) != "last").any():
            figures.rsa_layers(pd.DataFrame(roi_rows).merge(layers, on="model").assign(
                compare=settings.compare, ci=settings.ci), out / "layers.png")
    write_metrics(metrics, paths.metrics)
    tracking.log_artifacts(sorted(Path(paths.plots).glob("*.png")) + sorted(Path(paths.plots).glob("*.svg")), "rsa")
    tracking.log_table(pd.DataFrame(group_rows), "rsa/group.json")
    tracking.log_table(pd.DataFrame(subject_rows), "rsa/subjects.json")
    return metrics
