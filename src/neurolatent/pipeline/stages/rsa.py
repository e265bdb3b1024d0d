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

import logging
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from neurolatent.errors import NeurolatentError
from neurolatent.io import bids
from neurolatent.io.files import atomic_dir, write_metrics
from neurolatent.io.rdms import StoredRDM, write_index
from neurolatent.io.representations import (first_presentations, fmri_aligned, fmri_latents, fmri_samples,
                                            fmri_trial_samples, image_layers, image_models, planted_features,
                                            roi_columns, voxel_labels)
from neurolatent.pipeline import tracking
from neurolatent.pipeline.numerics import kernel_device
from neurolatent.pipeline.outputs import summaries
from neurolatent.pipeline.outputs.figures import rsa as rsa_figures
from neurolatent.pipeline.outputs.figures.rsa import DrawnRDM, drawn_rdm
from neurolatent.pipeline.parallel import parallel_map, scheduler_address
from neurolatent.pipeline.progress import progress
from neurolatent.science.cka import group_cka_models
from neurolatent.science.rsa.inference import familywise_p
from neurolatent.science.rsa.rdm import RDM, category_rdm, reduced_rdm
from neurolatent.science.rsa.results import Tables, compare_regions, representation_tables, subject_draws
from neurolatent.science.stats import named_rng
from neurolatent.science.stimuli import StimulusMatrix, paired_by_position

log = logging.getLogger(__name__)

#: the region of every visual ROI together; with ROI labels each ROI is a region of its own too
UNION = "union"
#: the category model: the hypothesis RDM of COCO / ImageNet / Scene membership
CATEGORY = "category"

#: the line the stage ends with (its best model, CI, p)
closing_line = summaries.rsa_line
#: the tables of plots/rsa: {file stem: the field of :class:`Tables`}
TABLES = {"group": "group", "subjects": "subjects", "rois": "rois", "pairwise": "pairs", "interactions": "interactions"}


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


def _model_rdms(models: dict[str, StimulusMatrix], union: tuple[str, ...], category: dict[str, str],
                settings: SimpleNamespace) -> Iterator[RDM]:
    """Each model's RDM over every image any subject saw (``union``), one at a time (at BOLD5000's
    size 97 MB each), the category model's last."""
    for model, features in models.items():
        yield _rdm(features.rows(union), union, settings, model, "all")
    yield category_rdm(union, [category[name] for name in union], CATEGORY)


def _cka_features(models: dict[str, StimulusMatrix], union: tuple[str, ...], category: dict[str, str]) -> dict:
    """The features CKA compares, in the order of :func:`_model_rdms`: {model: (n_union, q)}; the
    category model's are its one-hot codes."""
    one_hot = pd.get_dummies(pd.Series([category[name] for name in union])).to_numpy(dtype=np.float64)
    return {model: features.rows(union) for model, features in models.items()} | {CATEGORY: one_hot}


def _chunk_mapper(compute: SimpleNamespace):
    """Where the permutation chunks run: the Dask scheduler's workers when ``compute.scheduler`` names
    one (each comparison's prepared matrices shipped once to each worker: parallel_map scatters the
    function), else here (None)."""
    if scheduler_address(compute.scheduler, compute.dask_address) is None:
        return None
    return partial(parallel_map, jobs=1, desc="rsa permutations", unit="chunk", scheduler=compute.scheduler,
                   address=compute.dask_address)


def _cka(kind: str, per_subject: dict[str, StimulusMatrix], features: dict, union: tuple[str, ...],
         settings: SimpleNamespace, device: str, bar) -> dict:
    """CKA of one representation's whole region with every model ({model: GroupPermutationResult});
    run before the region RDMs are made, so that its kernels (at BOLD5000's size 97 MB a model
    and subject) and those RDMs are not held at once."""
    return group_cka_models([(sample.matrix, sample.stimuli) for sample in per_subject.values()], features, union,
                            settings.cka_permutations, named_rng(settings.seed, kind, "cka"), device,
                            progress=bar.update)


def _representation(kind: str, region_rdms: dict[str, list[StoredRDM]], model_rdms: dict[str, StoredRDM], alignments: dict,
                    n_subjects: int, settings: SimpleNamespace, permutations: int, device: str, bar,
                    map_chunks) -> tuple[Tables, dict]:
    """One fMRI representation's tables and metrics: every region against every model under the same
    relabellings and resamples (name=kind: one pass over a subject's RDMs serves all models, each
    model's ranks serve all regions, and the family-wise maximum spans regions and models), CKA of
    the whole region (``alignments``: :func:`_cka`) beside RSA."""
    comparisons = compare_regions(
        region_rdms, model_rdms, method=settings.compare, permutations=permutations, bootstrap=settings.bootstrap,
        ci=settings.ci, seed=settings.seed, name=kind, triangle=settings.triangle, device=device,
        progress=bar.update, map_chunks=map_chunks, inference=settings.inference)
    fwe = familywise_p({(region, model): found.test for region, comparison in comparisons.items()
                        for model, found in comparison.models.items()}, settings.inference)
    draws = subject_draws(n_subjects, settings.bootstrap, named_rng(settings.seed, kind, "subjects"))
    tables = representation_tables(kind, comparisons, fwe, draws, UNION, {"cka": alignments})
    metrics = {}
    for region, rdms in region_rdms.items():
        label = kind if region == UNION else f"{kind}/{region}"
        metrics.update({f"rsa.{label}.noise_ceiling_lower": comparisons[region].ceiling[0],
                        f"rsa.{label}.noise_ceiling_upper": comparisons[region].ceiling[1],
                        f"rsa.{label}.components": float(np.mean([r.meta["components"] for r in rdms])),
                        f"rsa.{label}.variance": float(np.mean([r.meta["variance"] for r in rdms]))})
    for row in tables.group:
        metrics.update({f"rsa.{kind}.{row['model']}.{name}": row[name] for name in summaries.RSA_STATISTICS})
    for row in tables.rois:
        if row["roi"] != UNION:
            metrics.update({f"rsa.{kind}.{row['roi']}.{row['model']}.{name}": row[name]
                            for name in ("r", "ci_low", "ci_high", "p", "p_method", "p_fwe", "p_fwe_method")})
    return tables, metrics


def _plots(out: Path, tables: list[Tables], shown: list[DrawnRDM], category: dict[str, str],
           settings: SimpleNamespace, images: Path) -> dict[str, pd.DataFrame]:
    """The tables (``TABLES``, every representation's rows) and the figures, the RDMs and the MDS of
    the first subject's RDMs and of the models over its images (``shown``); returns the tables."""
    frames = {name: pd.DataFrame([row for found in tables for row in getattr(found, field)])
              for name, field in TABLES.items()}
    for name, frame in frames.items():
        frame.to_csv(out / f"{name}.csv", index=False)
    rsa_figures.roi_heatmap(frames["rois"], out / "rois.png", settings.compare)
    rsa_figures.rdm_heatmaps(shown, category, out / "rdms.png")
    rsa_figures.rsa_bars(frames["group"], out / "rsa_per_model.png", settings.compare, settings.ci)
    rsa_figures.mds_scatter(shown, category, out / "mds.png")
    layers = image_layers(images)  # embed.layers: a curve per transformer when it has indexed layers
    if (layers["layer"].astype(str) != "last").any():
        rsa_figures.rsa_layers(frames["rois"].merge(layers, on="model").assign(compare=settings.compare, ci=settings.ci),
                           out / "layers.png")
    return frames


def run(params: SimpleNamespace, paths: SimpleNamespace) -> dict:
    """The stage on its declared ``params`` and ``paths`` (the registry's files); returns its metrics."""
    settings = params.rsa
    # exact: the permutation p of rsa.permutations; tail, gamma: a fit to the null of rsa.fit_permutations
    permutations = settings.permutations if settings.inference == "exact" else settings.fit_permutations
    device = kernel_device(params.compute.device, params.compute.threads)
    fmri, models, stimuli, labels = _inputs(params, paths)
    seen = set().union(*(sample.stimuli for per_subject in fmri.values() for sample in per_subject.values()))
    union = tuple(name for name in stimuli["image_name"] if name in seen)
    category = dict(zip(stimuli["image_name"], stimuli["category"]))
    features = _cka_features(models, union, category)
    regions = {kind: _regions(kind, per_subject, labels) for kind, per_subject in fmri.items()}
    first_subject = next(iter(next(iter(fmri.values()))))
    # one bar over every permutation and resample: at BOLD5000's size the tests take minutes a region
    bar = progress(total=sum(len(r) for r in regions.values()) * (permutations + len(features) * settings.bootstrap)
                   + len(fmri) * settings.cka_permutations, desc="rsa", unit="replicate")
    tables, metrics, shown, index = [], {}, [], []
    with atomic_dir(Path(paths.rdms)) as out:
        # every RDM is written as it is made and handed on as a StoredRDM, read where it is compared
        # (at BOLD5000's size 97 MB each: held together, one subject's took 7 GB)
        model_rdms, model_index = {}, []
        for item in _model_rdms(models, union, category, settings):
            model_rdms[item.name], entry = StoredRDM.saved(item, out, category)
            model_index.append(entry)
            del item  # not held through the loop's next RDM, nor the last through the comparisons
        for kind, per_region in regions.items():
            alignments = _cka(kind, per_region[UNION], features, union, settings, device, bar)
            region_rdms: dict[str, list[StoredRDM]] = {}
            for region, per_subject in per_region.items():
                region_rdms[region] = []
                for subject, sample in per_subject.items():
                    item = _rdm(sample.matrix, sample.stimuli, settings,
                                f"{kind if region == UNION else f'{kind}/{region}'}/{subject}", subject)
                    if subject == first_subject:  # what the figures draw of it (11 MB of 97 at BOLD5000's size)
                        shown.append(drawn_rdm(item, category))
                    stored, entry = StoredRDM.saved(item, out, category)
                    region_rdms[region].append(stored)
                    index.append(entry)
                    del item
            found, kind_metrics = _representation(kind, region_rdms, model_rdms, alignments, len(per_region[UNION]),
                                                  settings, permutations, device, bar, _chunk_mapper(params.compute))
            tables.append(found)
            metrics.update(kind_metrics)
        write_index(index + model_index, out)
        first_images = fmri[next(iter(fmri))][first_subject].stimuli  # the first figure panel's images
        shown += [drawn_rdm(model.load(), category, first_images) for model in model_rdms.values()]
    bar.close()
    for model, model_rdm in model_rdms.items():
        metrics[f"rsa.{model}.components"] = float(model_rdm.meta["components"])
        metrics[f"rsa.{model}.variance"] = float(model_rdm.meta["variance"])
    metrics.update({"rsa.subjects": len(next(iter(fmri.values()))), "rsa.permutations": permutations,
                    "rsa.stimuli_per_subject": float(np.mean([r["stimuli"] for t in tables for r in t.subjects]))})
    log.info("rsa: drawing the figures")
    with atomic_dir(Path(paths.plots)) as out:
        frames = _plots(out, tables, shown, category, settings, paths.images)
    write_metrics(metrics, paths.metrics)
    tracking.log_artifacts(sorted(Path(paths.plots).glob("*.png")) + sorted(Path(paths.plots).glob("*.svg")), "rsa")
    tracking.log_table(frames["group"], "rsa/group.json")
    tracking.log_table(frames["subjects"], "rsa/subjects.json")
    return metrics
