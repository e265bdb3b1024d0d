"""Stage ``stitch``: fMRI -> image latents (identify, reconstruct) and image -> fMRI (encode).

Test stimuli (``stitch.test``) are BOLD5000's repeated images (the stimulus release's list of 113
when present, else the images a subject saw more than once), or a seeded holdout when the
selection has none; everything is fitted on the other images only. Per subject, each fMRI
representation (``stitch.fmri``) is mapped onto each image model by each method
(``stitch.methods``) and the held-out stimuli are identified among each other (2-way accuracy with
a permutation null, top-1/top-5). With ``pooled``, one mapping is fitted on every subject's AE
latents (the AE's space is shared) and tested on the images no subject trained on.

Reconstruction: ridge from fMRI to the image AE's full latent (C x h x w), decoded by its decoder;
pixel correlation, SSIM and 2-way identification in pixel space, beside the AE's own
reconstruction of the same images (the ceiling of this route).

Voxelwise prediction (``stitch.encode``; :mod:`neurolatent.science.prediction`): ridge from each
image model on its own to every voxel of the region (``volume``/``betas`` samples), voxelwise r on
the test images, its median, the same over the noise ceiling from repeats (``repeats`` split only),
a shuffled-features control, and a brain map of r. How well each model predicts alone: what each
explains given the others is the encode stage's banded ridge.

Outputs: ``metrics/stitch.json`` (flat keys ``stitch.decode...``, ``stitch.reconstruct...``,
``stitch.encode...``), ``plots/stitch/`` (identification.csv for ``dvc plots``,
reconstructions.png, encoding_r.png); MLflow gets the metrics and figures.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from neurolatent.io import bids
from neurolatent.io.files import atomic_dir, write_metrics
from neurolatent.io.images import load_stimuli
from neurolatent.io.representations import (fmri_aligned, fmri_latents, fmri_samples, fmri_trial_samples, image_models,
                                            planted_features, roi_columns, voxel_labels)
from neurolatent.models.autoencoder import decode_latents, encode_pictures, load_model, network_input
from neurolatent.pipeline import tracking
from neurolatent.pipeline.numerics import torch_device
from neurolatent.pipeline.outputs import summaries
from neurolatent.pipeline.outputs.figures import common as common_figures
from neurolatent.pipeline.outputs.figures import stitch as stitch_figures
from neurolatent.pipeline.progress import progress
from neurolatent.pipeline.split import held_out_images
from neurolatent.science.identification import identification
from neurolatent.science.mapping import build_mapping
from neurolatent.science.prediction import group_prediction
from neurolatent.science.stats import named_rng
from neurolatent.science.stimuli import StimulusMatrix
from neurolatent.science.stitching import (GroupIdentification, identify_held_out, pooled_latents,
                                           reconstruct_held_out)

log = logging.getLogger(__name__)

#: the line the stage ends with (its best model, CI, p)
closing_line = summaries.stitch_line


def _inputs(params: SimpleNamespace, paths: SimpleNamespace) -> tuple[dict, dict, dict, dict]:
    """Trial samples {subject: matrix}, repeat-averaged samples, fMRI representations {kind:
    {subject: matrix}} and image models {name: matrix}."""
    stimuli = pd.read_parquet(paths.stimuli)
    trial_samples = fmri_trial_samples(paths.samples, paths.trials, params.preprocess.lag_s, params.preprocess.anchor,
                                       params.preprocess.rounding)
    samples = fmri_samples(trial_samples)
    fmri: dict[str, dict[str, StimulusMatrix]] = {}
    if "ae" in params.stitch.fmri:
        fmri["ae"] = fmri_latents(paths.fmri, paths.fmri_index)
    if "samples" in params.stitch.fmri:
        fmri["samples"] = samples
    if "align" in params.stitch.fmri:
        fmri["align"] = fmri_aligned(paths.align)
    models = image_models(paths.images, stimuli) | planted_features(paths.truth)
    return trial_samples, samples, fmri, models


def _decoding_rows(params: SimpleNamespace, fmri: dict, models: dict, test_of: dict[str, list[str]],
                   all_test: set[str]) -> list[dict]:
    """Identification per (fMRI kind, model, method), mean over subjects; and the pooled AE mapping."""
    rows = []
    pooled = params.pooled and "ae" in fmri
    bar = progress(total=(len(fmri) + pooled) * len(models) * len(params.methods), desc="stitch", unit="mapping")

    def mapping(method: str):
        return build_mapping(method, params.procrustes_dims, params.anchors, params.seed)

    for kind, per_subject in fmri.items():
        for model, target in models.items():
            for method in params.methods:
                group = GroupIdentification.of_subjects([
                    identify_held_out(mapping(method), per_subject[s], target, test_of[s], params.permutations,
                                      named_rng(params.seed, f"{kind}/{model}/{method}/{s}")) for s in per_subject])
                rows.append({"comparison": f"{kind} -> {model} ({method})", "fmri": kind, "model": model,
                             "method": method, **group.row()})
                bar.update()
    if pooled:
        train, test = pooled_latents(fmri["ae"], all_test)
        for model, target in models.items():
            for method in params.methods:
                # train rows hold no test image of any subject (pooled_latents); names repeat across subjects
                fitted = mapping(method).fit(train.matrix, target.rows(train.stimuli))
                predicted, targets = fitted.transform(test.matrix, target.rows(test.stimuli))
                ident = identification(predicted, targets, params.permutations,
                                       named_rng(params.seed, "pooled", model, method))
                rows.append({"comparison": f"pooled ae -> {model} ({method})", "fmri": "pooled", "model": model,
                             "method": method, **GroupIdentification.of_one(ident).row()})
                bar.update()
    bar.close()
    return rows


def _roi_decoding_rows(params: SimpleNamespace, samples: dict, labels: pd.DataFrame, models: dict,
                       test_of: dict[str, list[str]]) -> list[dict]:
    """2-way identification from each ROI's samples (ridge), mean over subjects, per model."""
    rows = []
    for roi in [roi for roi in bids.ROIS if roi in set(labels["roi"])]:  # early to late visual areas
        per_subject = roi_columns(samples, labels, roi)
        for model, target in models.items():
            group = GroupIdentification.of_subjects([
                identify_held_out(build_mapping("ridge", params.procrustes_dims, params.anchors, params.seed),
                                  per_subject[s], target, test_of[s], params.permutations,
                                  named_rng(params.seed, f"samples/{roi}/{model}/ridge/{s}")) for s in per_subject])
            rows.append({"fmri": "samples", "roi": roi, "model": model, "method": "ridge", **group.row()})
    return rows


def run(params: SimpleNamespace, paths: SimpleNamespace) -> dict:
    """The stage on its declared ``params`` and ``paths`` (the registry's files); returns its metrics."""
    settings = params.stitch
    device = torch_device(params.compute.device, params.compute.threads)
    test_of = held_out_images(settings, pd.read_parquet(paths.fmri_index), paths.raw)
    trial_samples, samples, fmri, models = _inputs(params, paths)

    metrics: dict[str, float] = {
        "stitch.decode.n_test": float(np.mean([len(t) for t in test_of.values()])),
        "stitch.decode.chance.two_way": 0.5,
        "stitch.decode.chance.top1": float(np.mean([1 / len(t) for t in test_of.values()])),
        "stitch.decode.chance.top5": float(np.mean([min(5, len(t)) / len(t) for t in test_of.values()]))}
    rows = _decoding_rows(settings, fmri, models, test_of, {name for test in test_of.values() for name in test})
    for row in rows:
        metrics.update({f"stitch.decode.{row['fmri']}.{row['model']}.{row['method']}.{name}": row[name]
                        for name in GroupIdentification.STATISTICS})
    drawings: dict[str, object] = {}
    labels = voxel_labels(paths.samples) if params.preprocess.method != "rendered" else None
    roi_rows = _roi_decoding_rows(settings, samples, labels, models, test_of) if labels is not None else []
    for row in roi_rows:
        metrics.update({f"stitch.decode.samples.{row['roi']}.{row['model']}.ridge.{name}": row[name]
                        for name in GroupIdentification.STATISTICS})
    if roi_rows:
        drawings["rois_decoding.png"] = lambda path: stitch_figures.roi_bars(
            pd.DataFrame(roi_rows), "two_way", "2-way identification accuracy from each ROI (ridge)", path, chance=0.5)
    if settings.reconstruct:
        metrics.update(_reconstruction(settings, fmri, test_of, paths, device, drawings))
    if settings.encode:
        if params.preprocess.method == "rendered":
            log.info("stitch: encoding skipped: rendered samples are pictures, not voxels (use volume or betas)")
        else:
            metrics.update(_voxel_prediction(settings, models, samples, trial_samples, test_of, Path(paths.samples),
                                             drawings, labels))
    with atomic_dir(Path(paths.plots)) as out:
        pd.DataFrame(rows).to_csv(out / "identification.csv", index=False)
        if roi_rows:
            pd.DataFrame(roi_rows).to_csv(out / "rois.csv", index=False)
        for name, draw in drawings.items():
            draw(out / name)
    write_metrics(metrics, paths.metrics)
    tracking.log_artifacts([Path(paths.plots) / name for name in drawings], "stitch")
    tracking.log_table(pd.DataFrame(rows), "stitch/identification.json")
    return metrics



def _reconstruction(params: SimpleNamespace, fmri: dict, test_of: dict[str, list[str]], paths: SimpleNamespace,
                    device: str, drawings: dict) -> dict:
    """The image AE's pictures decoded from each fMRI kind's predicted latents
    (:func:`~neurolatent.science.stitching.reconstruct_held_out`); scores per kind, mean over subjects."""
    model, config = load_model(paths.image_ae, device)
    stimuli, pictures = load_stimuli(paths.stimuli, paths.raw, config["input_shape"][-1])
    latents = encode_pictures(model, pictures, device)
    shape = list(latents.shape[1:])
    target = StimulusMatrix("image_ae_full", latents.reshape(len(latents), -1).numpy(), tuple(stimuli["image_name"]))
    row_of = pd.Series(np.arange(len(stimuli)), index=stimuli["image_name"])
    originals = {subject: network_input(pictures[row_of.loc[test].to_numpy()]).numpy()
                 for subject, test in test_of.items()}
    result = reconstruct_held_out(fmri, target, originals, test_of, lambda z: decode_latents(model, z, shape, device),
                                  params.permutations, params.seed)
    if result.shown is not None:
        drawings["reconstructions.png"] = lambda path: stitch_figures.decoded_stimuli(*result.shown, path)
    return ({f"stitch.reconstruct.ceiling.{name}": value for name, value in result.ceiling.items()}
            | {f"stitch.reconstruct.{kind}.{name}": value for kind, scores in result.scores.items()
               for name, value in scores.items()})


def _voxel_prediction(params: SimpleNamespace, models: dict[str, StimulusMatrix], samples: dict[str, StimulusMatrix],
                      trial_samples: dict[str, StimulusMatrix], test_of: dict[str, list[str]], samples_dir: Path,
                      drawings: dict, labels: pd.DataFrame | None = None) -> dict:
    """Voxelwise prediction from each image model (:func:`~neurolatent.science.prediction.group_prediction`):
    medians over the region and (with ROI labels) over each ROI's voxels, mean over subjects."""
    rois = [roi for roi in bids.ROIS if roi in set(labels["roi"])] if labels is not None else []
    regions = {roi: {subject: labels.loc[(labels["subject"] == subject) & (labels["roi"] == roi), "column"].to_numpy()
                     for subject in samples} for roi in rois}
    out: dict[str, float] = {}
    best = None
    per_roi: list[dict] = []
    for model, features in models.items():
        group = group_prediction(features, samples, test_of,
                                 {subject: named_rng(params.seed, "encode-null", model, subject) for subject in samples},
                                 trial_samples if params.test == "repeats" else None, regions)
        out[f"stitch.encode.{model}.median_r"] = group.median_r
        out[f"stitch.encode.{model}.median_r_shuffled"] = group.median_r_shuffled
        out[f"stitch.encode.{model}.median_r_normalised"] = group.median_r_normalised
        for roi, median in group.regions.items():
            out[f"stitch.encode.{model}.{roi}.median_r"] = median
            per_roi.append({"fmri": "samples", "roi": roi, "model": model, "median_r": median})
        # the map shows the best image model (by mean median r), the one the closing line names:
        # the planted truth and its families are references, not candidates
        if not summaries.is_reference(model) and (best is None or group.median_r > best[1].median_r):
            best = (model, group)
    if per_roi:
        drawings["rois_encoding.png"] = lambda path: stitch_figures.roi_bars(
            pd.DataFrame(per_roi), "median_r", "encoding: median voxel r on test images, per ROI", path)
    if best is not None:
        model, group = best
        subject, score = next(iter(group.subjects.items()))
        mask_path = Path(samples_dir) / f"mask_sub-{subject}.nii.gz"
        if mask_path.is_file():
            drawings["encoding_r.png"] = lambda path: stitch_figures.encoding_brain_map(
                score.r, mask_path, f"best image model, {common_figures.display_name(model)}, in {subject}", path)
    return out
