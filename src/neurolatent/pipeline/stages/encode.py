"""Stage ``encode``: image models fitted together to every voxel by banded ridge, and the variance
each explains, per ROI.

Two partitions: ``models`` (the image models and layers, ``encode.bands``) and, on the synthetic
data, ``planted`` (the planted feature families: the check that each ROI's own family carries its
variance); each with a control band of pure noise features (``encode.noise_features``). Per subject
and partition, fitted on the training images and scored on the test images of the stitch stage's
split (``stitch.test``, the same images): with ``encode.partition: split``, one fit of all bands and
each band's share of the held-out R^2 (the product measure); with ``subsets``, every non-empty
subset of the bands fitted and each band's unique part and the shared parts by inclusion-exclusion.
A part's value per ROI is the mean over the ROI's voxels, then over subjects, with a percentile
interval from ``encode.bootstrap`` draws over each subject's test images. With repeated test images
(``stitch.test: repeats``) each band's part is also read over the noise ceiling. The fits (one per
subject and partition) run on the Dask scheduler when ``compute.scheduler`` names one, else here,
with progress per fold and band weighting.

Outputs: ``metrics/encode.json`` (``encode.<partition>.<roi>.<band>.share`` (split) or ``.unique``
(subsets), with ``.ci_low``, ``.ci_high``, ``.explainable`` and ``.log10_penalty`` (the median over
voxels); ``...<roi>.shared`` (subsets: every shared part together), ``...<roi>.full`` and, with repeated test images,
``...<roi>.algonauts``: Algonauts 2023's noise-normalised accuracy of the fit of all bands, median
over the ROI's voxels, mean over subjects, :func:`neurolatent.science.peers.roi_scores`),
``plots/encode/`` (partition.csv, a row per part; partition.png, the per-ROI bars;
winning_<partition>.png, each voxel's winning band on the first subject's brain),
``data/encoding/<subject>.npz`` (per voxel: the fit of all bands' R^2 and penalties; each band's
share, or every subset's R^2 and penalties).
"""

from __future__ import annotations

import logging
from functools import partial
from math import comb
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from neurolatent.errors import NeurolatentError
from neurolatent.io.files import atomic_dir, write_metrics, write_npz
from neurolatent.io.representations import (fmri_samples, fmri_trial_samples, image_models, planted_features,
                                            region_columns, voxel_labels)
from neurolatent.pipeline import tracking
from neurolatent.pipeline.numerics import resolve_device
from neurolatent.pipeline.outputs.figures import encode as encode_figures
from neurolatent.pipeline.parallel import parallel_map, scheduler_address
from neurolatent.pipeline.progress import progress
from neurolatent.pipeline.split import held_out_images
from neurolatent.science.encoding import (BandedRidgeCV, BandSplit, VariancePartition, band_split, group_parts,
                                          region_parts, variance_partition, winning_band)
from neurolatent.science.prediction import held_out_ceiling_r
from neurolatent.science.stats import named_rng
from neurolatent.science.stimuli import StimulusMatrix, presentations

log = logging.getLogger(__name__)

#: the control band's name
NOISE = "noise"
#: what a band's own part is called, by ``encode.partition``
BAND_PART = {"split": BandSplit.PART, "subsets": VariancePartition.PART}


def closing_line(metrics: dict) -> str:
    """Per partition, the band with the largest part (share or unique R^2) in each ROI."""
    own = {key: value for key, value in metrics.items() if key.endswith((".share", ".unique"))}
    parts = []
    for partition in dict.fromkeys(key.split(".")[1] for key in own):
        winners = []
        for roi in dict.fromkeys(key.split(".")[2] for key in own if key.startswith(f"encode.{partition}.")):
            values = {key.split(".")[3]: value for key, value in own.items()
                      if key.startswith(f"encode.{partition}.{roi}.")}
            best = max(values, key=values.get)
            winners.append(f"{roi} {best} {values[best]:.3f}")
        parts.append(f"{partition}: " + ", ".join(winners))
    kind = "share of" if any(key.endswith(".share") for key in own) else "unique"
    return f"encode: most {kind} R^2 per ROI: " + "; ".join(parts) if parts else "encode: nothing fitted"


def _partitions(params: SimpleNamespace, paths: SimpleNamespace, stimuli: pd.DataFrame) -> dict[str, dict]:
    """{partition: {band: StimulusMatrix}}, each with the noise band last."""
    models = image_models(paths.images, stimuli)
    chosen = params.encode.bands if params.encode.bands is not None else list(models)
    unknown = [name for name in chosen if name not in models]
    if unknown:
        raise NeurolatentError(f"encode.bands: {', '.join(unknown)} not among the image models of {paths.images} "
                               f"({', '.join(models)})")
    out = {"models": {name: models[name] for name in chosen}}
    planted = {name.removeprefix("planted_"): matrix for name, matrix in planted_features(paths.truth).items()
               if name.startswith("planted_")}
    if params.encode.planted and planted:
        out["planted"] = planted
    if params.encode.noise_features:
        names = tuple(stimuli["image_name"])
        noise = named_rng(params.encode.seed, "encode", NOISE).standard_normal((len(names), params.encode.noise_features))
        for bands in out.values():
            bands[NOISE] = StimulusMatrix(NOISE, noise, names)
    return out


def _roi_columns(labels: pd.DataFrame | None, subject: str, n_voxels: int) -> dict[str, np.ndarray]:
    """{ROI: the subject's columns in it}, early to late areas, then ``region`` (every column)."""
    return ({} if labels is None else region_columns(labels, subject)) | {"region": np.arange(n_voxels)}


def _fit(how: str, settings: dict, job: tuple, progress=None) -> BandSplit | VariancePartition:
    """One subject's fit of one partition: ``how`` ``split`` (:func:`band_split`) or ``subsets``
    (:func:`variance_partition`); ``settings`` their keyword arguments; ``job`` (bands {name:
    (n_images, n_features)}, responses (n_images, n_voxels), is_test (n_images,) bool)."""
    bands, responses, is_test = job
    fit = band_split if how == "split" else variance_partition
    return fit(bands, responses, train=~is_test, test=is_test, progress=progress, **settings)


def _steps(how: str, n_bands: int, estimator: BandedRidgeCV) -> int:
    """Progress steps of one :func:`_fit` on ``n_bands`` bands."""
    if how == "split":
        return estimator.steps(n_bands)
    return sum(comb(n_bands, size) * estimator.steps(size) for size in range(1, n_bands + 1))


def _per_voxel(fit: BandSplit | VariancePartition) -> dict[str, np.ndarray]:
    """{name: (n_voxels,) or (n_bands, n_voxels) float32} for the subject's npz: the R^2 (``r2/<bands>``)
    and penalties (``penalty/<bands>``) of the fit of all bands, and each band's share
    (``share/<band>``) or every subset's R^2 and penalties."""
    if isinstance(fit, BandSplit):
        every = "+".join(fit.bands)
        return {f"r2/{every}": fit.full.astype(np.float32), f"penalty/{every}": fit.penalties.astype(np.float32),
                **{f"share/{band}": share.astype(np.float32) for band, share in fit.shares.items()}}
    return {**{f"r2/{'+'.join(s)}": r2.astype(np.float32) for s, r2 in fit.r2.items()},
            **{f"penalty/{'+'.join(s)}": p.astype(np.float32) for s, p in fit.penalties.items()}}


def _fits(params: SimpleNamespace, partitions: dict[str, dict], samples: dict[str, StimulusMatrix],
          test_of: dict[str, list[str]]) -> dict[tuple[str, str], BandSplit | VariancePartition]:
    """{(partition, subject): its fit}. The fits are independent of each other: on the Dask
    scheduler's workers when one is named; here, with a bar over every fold and band weighting (a fit
    takes minutes at BOLD5000's size)."""
    settings, how = params.encode, params.encode.partition
    backend = "torch_cuda" if resolve_device(params.compute.device) == "cuda" else "numpy"
    fit_settings = {"random_state": settings.seed, "n_iter": settings.search, "cv": settings.folds, "backend": backend}
    jobs = {(partition, subject): ({name: band.rows(voxels.stimuli) for name, band in bands.items()}, voxels.matrix,
                                   np.isin(np.asarray(voxels.stimuli), test_of[subject]))
            for partition, bands in partitions.items() for subject, voxels in samples.items()}
    if scheduler_address(params.compute.scheduler, params.compute.dask_address) is not None:
        return dict(zip(jobs, parallel_map(partial(_fit, how, fit_settings), list(jobs.values()), jobs=1,
                                           desc="encode fits", unit="fit", scheduler=params.compute.scheduler,
                                           address=params.compute.dask_address)))
    estimator = BandedRidgeCV(n_iter=settings.search, cv=settings.folds)
    bar = progress(total=sum(_steps(how, len(bands), estimator) for bands in partitions.values()) * len(samples),
                   desc=f"encode ({how}: fits by fold and band weighting)", unit="step")
    fits = {key: _fit(how, fit_settings, job, bar.update) for key, job in jobs.items()}
    bar.close()
    return fits


def _ceiling(trials: StimulusMatrix, test: list[str], subject: str) -> np.ndarray | None:
    """The noise ceiling r of the subject's test images' repeats; None where no test image repeats."""
    ceiling = held_out_ceiling_r(trials, test)
    if ceiling is None:
        log.info("encode: %s: no test image has two samples, no noise ceiling", subject)
    return ceiling


def _metrics(table: pd.DataFrame) -> dict[str, float]:
    """The partition table as ``encode.<partition>.<roi>...`` metrics (see the module's docstring)."""
    metrics = {}
    for row in table.itertuples():
        prefix = f"encode.{row.partition}.{row.roi}"
        if row.kind in BAND_PART.values():
            metrics[f"{prefix}.{row.part}.{row.kind}"] = row.r2
            metrics[f"{prefix}.{row.part}.ci_low"] = row.ci_low
            metrics[f"{prefix}.{row.part}.ci_high"] = row.ci_high
            metrics[f"{prefix}.{row.part}.log10_penalty"] = row.log10_penalty
            if "explainable" in table and np.isfinite(row.explainable):
                metrics[f"{prefix}.{row.part}.explainable"] = row.explainable
        elif row.kind in ("full", "shared_total"):
            metrics[f"{prefix}.{row.part}"] = row.r2
            if row.kind == "full" and "algonauts" in table and np.isfinite(row.algonauts):
                metrics[f"{prefix}.algonauts"] = row.algonauts
    return metrics


def _winning_maps(fits: dict, partitions: dict, subject: str, paths: SimpleNamespace, out: Path) -> None:
    """winning_<partition>.png: each voxel's winning band on ``subject``'s brain, over its functional
    anatomy (its first T1w-space run, where the copy has one); none without the subject's mask."""
    mask = Path(paths.samples) / f"mask_sub-{subject}.nii.gz"
    if not mask.is_file():
        return
    anatomy = next(iter(sorted((Path(paths.raw) / "derivatives" / "fmriprep" / f"sub-{subject}").glob(
        "**/*_bold_space-T1w_preproc.nii.gz"))), None)
    for partition in partitions:
        fit = fits[partition, subject]
        encode_figures.winning_band_map(winning_band(fit), fit.bands, mask,
                                 f"{partition}: the band with the most unique R^2 per voxel ({subject})",
                                 out / f"winning_{partition}.png", anatomy)


def run(params: SimpleNamespace, paths: SimpleNamespace) -> dict:
    """The stage on its declared ``params`` and ``paths``; returns its metrics."""
    settings = params.encode
    if params.preprocess.method == "rendered":
        log.info("encode: skipped: rendered samples are pictures, not voxels (use volume, betas or glmsingle)")
        with atomic_dir(Path(paths.plots)), atomic_dir(Path(paths.out)):
            pass
        write_metrics({}, paths.metrics)
        return {}

    # read: the stitch split's test images, each subject's samples, the bands, the voxels' ROIs
    stimuli = pd.read_parquet(paths.stimuli)
    index = presentations(pd.read_parquet(paths.trials), stimuli)  # the rows of embed_fmri's index, as stitch splits
    test_of = held_out_images(params.stitch, index, paths.raw)
    trial_samples = fmri_trial_samples(paths.samples, paths.trials, params.preprocess.lag_s, params.preprocess.anchor,
                                       params.preprocess.rounding)
    samples = fmri_samples(trial_samples)
    partitions = _partitions(params, paths, stimuli)
    labels = voxel_labels(paths.samples)

    # compute: a fit per partition and subject, its parts per ROI, their means over subjects
    fits = _fits(params, partitions, samples, test_of)
    rows = []
    for partition in partitions:
        per_subject = [region_parts(fits[partition, subject], _roi_columns(labels, subject, voxels.matrix.shape[1]),
                                    settings.bootstrap, named_rng(settings.seed, "encode-bootstrap", partition, subject),
                                    _ceiling(trial_samples[subject], test_of[subject], subject)
                                    if params.stitch.test == "repeats" else None)
                       for subject, voxels in samples.items()]
        rows += [{"partition": partition, **row} for row in group_parts(per_subject)]
    table = pd.DataFrame(rows)
    metrics = _metrics(table)

    # write: the table and figures, each subject's per-voxel arrays, the metrics
    with atomic_dir(Path(paths.plots)) as out:
        table.to_csv(out / "partition.csv", index=False)
        encode_figures.variance_partition_bars(table, out / "partition.png")
        _winning_maps(fits, partitions, next(iter(samples)), paths, out)
    with atomic_dir(Path(paths.out)) as out:
        for subject in samples:
            write_npz({f"{partition}/{key}": value for partition in partitions
                       for key, value in _per_voxel(fits[partition, subject]).items()}, out / f"{subject}.npz")
    write_metrics(metrics, paths.metrics)
    tracking.log_artifacts(sorted(Path(paths.plots).glob("*.png")), "encode")
    tracking.log_table(table, "encode/partition.json")
    return metrics
