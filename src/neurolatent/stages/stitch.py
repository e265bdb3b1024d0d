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

Encoding: ridge from each image model to every voxel of the region (``volume``/``betas``
samples), voxelwise r on the test images, its median, the same over the noise ceiling from
repeats (``repeats`` split only), a shuffled-features control, and a brain map of r.

Outputs: ``metrics/stitch.json`` (flat keys ``stitch.decode...``, ``stitch.reconstruct...``,
``stitch.encode...``), ``plots/stitch/`` (identification.csv for ``dvc plots``,
reconstructions.png, encoding_r.png); MLflow gets the metrics and figures.
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch

from neurolatent import figures, tracking
from neurolatent.errors import NeurolatentError
from neurolatent.io import bids
from neurolatent.io.files import atomic_dir, write_metrics
from neurolatent.io.images import load_stimuli
from neurolatent.io.representations import (StimulusMatrix, average_repeats, fmri_latents, fmri_samples,
                                            fmri_trial_samples, image_models, planted_features)
from neurolatent.models.autoencoder import load_model
from neurolatent.runtime import progress, torch_device
from neurolatent.science import mapping as stitch
from neurolatent.science.stats import permutation_p

log = logging.getLogger(__name__)

IDENTIFICATION = ("two_way", "p", "chance_high", "top1", "top5")


def _rng(params: SimpleNamespace, *names: str) -> np.random.Generator:
    return np.random.default_rng([params.seed, *(zlib.crc32(n.encode()) for n in names)])


def fit_mapping(mapping, x: StimulusMatrix, y: StimulusMatrix, names: tuple[str, ...], test_names: list[str]):
    """Fit ``mapping`` from x to y on ``names`` less the test images: the one place where every
    mapping of this stage meets data, so no test row can reach a fit. Rows joined by name."""
    test = set(test_names)
    train = [name for name in names if name not in test]
    return mapping.fit(x.rows(train), y.rows(train))


def decode_one(x: StimulusMatrix, y: StimulusMatrix, test_names: list[str], method: str, params: SimpleNamespace,
               label: str) -> stitch.Identification:
    """Fit ``method`` on x's non-test images, identify the test images among each other."""
    mapping = fit_mapping(stitch.build_mapping(method, params.procrustes_dims, params.anchors, params.seed),
                          x, y, x.stimuli, test_names)
    predicted, targets = mapping.transform(x.rows(test_names), y.rows(test_names))
    return stitch.identification(predicted, targets, params.permutations, _rng(params, label))


def pooled_latents(per_subject: dict[str, StimulusMatrix], test: set[str]) -> tuple[StimulusMatrix, StimulusMatrix]:
    """Every subject's training rows (images no subject has in its test set), and the test images'
    latents averaged over the subjects who saw them."""
    train_rows, train_names = [], []
    for sample in per_subject.values():
        keep = [name for name in sample.stimuli if name not in test]
        train_rows.append(sample.rows(keep))
        train_names += keep
    tests = StimulusMatrix("pooled/test", np.concatenate([s.rows([n for n in s.stimuli if n in test])
                                                          for s in per_subject.values()]),
                           tuple(n for s in per_subject.values() for n in s.stimuli if n in test))
    return (StimulusMatrix("pooled/train", np.concatenate(train_rows), tuple(train_names)),
            average_repeats(tests, "pooled/test"))


def image_ae_latents(model_dir: Path, pictures: np.ndarray, device: str) -> tuple[np.ndarray, list[int]]:
    """(n, C*h*w) full (unpooled) latents of the image AE, and the latent's shape."""
    model, config = load_model(model_dir, device)
    with torch.inference_mode():
        latents = torch.cat([model.encode(torch.from_numpy(pictures[i:i + 64]).float().div_(255).to(device)).cpu()
                             for i in range(0, len(pictures), 64)])
    return latents.reshape(len(latents), -1).numpy(), list(latents.shape[1:])


def decode_pictures(model_dir: Path, latents: np.ndarray, latent_shape: list[int], device: str) -> np.ndarray:
    """(n, 3, H, W) float in [0, 1]: the image AE's decoder applied to flattened latents."""
    model, _ = load_model(model_dir, device)
    with torch.inference_mode():
        z = torch.from_numpy(latents.astype(np.float32)).reshape(len(latents), *latent_shape).to(device)
        return model.decoder(z).cpu().numpy()


def picture_scores(reconstructed: np.ndarray, originals: np.ndarray, params: SimpleNamespace, label: str) -> dict:
    """Mean pixel r (and with the other test images, the chance level), mean SSIM and 2-way
    identification in pixel space; pictures (n, 3, H, W) in [0, 1]."""
    from skimage.metrics import structural_similarity

    flat_r, flat_o = reconstructed.reshape(len(reconstructed), -1), originals.reshape(len(originals), -1)
    similarity = stitch.row_correlations(flat_r, flat_o)
    pixel_r = np.diag(similarity)
    # chance reference: how well a reconstruction correlates with the other test images
    other = similarity[~np.eye(len(similarity), dtype=bool)]
    ssim = [structural_similarity(r, o, channel_axis=0, data_range=1.0) for r, o in zip(reconstructed, originals)]
    ident = stitch.identification(flat_r, flat_o, params.permutations, _rng(params, label))
    return {"pixel_r": float(pixel_r.mean()), "pixel_r_other_images": float(other.mean()),
            "ssim": float(np.mean(ssim)), "two_way": ident.two_way,
            "two_way_p": ident.p}


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
    models = image_models(paths.images, stimuli)
    planted = planted_features(paths.truth)
    if planted is not None:
        models["planted"] = planted
    return trial_samples, samples, fmri, models


def _decoding_rows(params: SimpleNamespace, fmri: dict, models: dict, test_of: dict[str, list[str]],
                   all_test: set[str]) -> list[dict]:
    """Identification per (fMRI kind, model, method), mean over subjects; and the pooled AE mapping."""
    rows = []
    pooled = params.pooled and "ae" in fmri
    bar = progress(total=(len(fmri) + pooled) * len(models) * len(params.methods), desc="stitch", unit="mapping")
    for kind, per_subject in fmri.items():
        for model, target in models.items():
            for method in params.methods:
                results = [decode_one(per_subject[s], target, test_of[s], method, params, f"{kind}/{model}/{method}/{s}")
                           for s in per_subject]
                two_way = float(np.mean([r.two_way for r in results]))
                null = np.mean([r.null for r in results], axis=0)
                rows.append({"comparison": f"{kind} -> {model} ({method})", "fmri": kind, "model": model,
                             "method": method, "two_way": two_way, "p": permutation_p(two_way, null),
                             "chance_high": float(np.quantile(null, 0.975)),
                             "top1": float(np.mean([r.top1 for r in results])),
                             "top5": float(np.mean([r.top5 for r in results]))})
                bar.update()
    if pooled:
        train, test = pooled_latents(fmri["ae"], all_test)
        for model, target in models.items():
            for method in params.methods:
                mapping = stitch.build_mapping(method, params.procrustes_dims, params.anchors, params.seed)
                # train rows hold no test image of any subject (pooled_latents); names repeat across subjects
                mapping.fit(train.matrix, target.rows(train.stimuli))
                predicted, targets = mapping.transform(test.matrix, target.rows(test.stimuli))
                ident = stitch.identification(predicted, targets, params.permutations, _rng(params, "pooled", model, method))
                rows.append({"comparison": f"pooled ae -> {model} ({method})", "fmri": "pooled", "model": model,
                             "method": method, "two_way": ident.two_way, "p": ident.p, "chance_high": ident.null_high,
                             "top1": ident.top1, "top5": ident.top5})
                bar.update()
    bar.close()
    return rows


def run(params: SimpleNamespace, paths: SimpleNamespace) -> dict:
    settings = params.stitch
    device = torch_device(params.compute.device, params.compute.threads)
    index = pd.read_parquet(paths.fmri_index)
    listed = Path(paths.raw) / bids.REPEATED_LIST
    repeated = set(listed.read_text().split()) if listed.is_file() else None
    try:
        is_test = stitch.split_test_images(index, settings.test, settings.test_fraction, settings.min_test, settings.seed,
                                           repeated)
    except ValueError as exc:
        raise NeurolatentError(f"stitch.test: {exc}") from None
    test_of = {s: list(rows.loc[is_test[rows.index], "image_name"]) for s, rows in index.groupby("subject")}
    trial_samples, samples, fmri, models = _inputs(params, paths)

    metrics: dict[str, float] = {
        "stitch.decode.n_test": float(np.mean([len(t) for t in test_of.values()])),
        "stitch.decode.chance.two_way": 0.5,
        "stitch.decode.chance.top1": float(np.mean([1 / len(t) for t in test_of.values()])),
        "stitch.decode.chance.top5": float(np.mean([min(5, len(t)) / len(t) for t in test_of.values()]))}
    rows = _decoding_rows(settings, fmri, models, test_of, set(index.loc[is_test, "image_name"]))
    for row in rows:
        metrics.update({f"stitch.decode.{row['fmri']}.{row['model']}.{row['method']}.{name}": row[name]
                        for name in IDENTIFICATION})
    drawings: dict[str, object] = {}
    if settings.reconstruct:
        metrics.update(reconstruct(settings, fmri, test_of, paths, device, drawings))
    if settings.encode:
        if params.preprocess.method == "rendered":
            log.info("stitch: encoding skipped: rendered samples are pictures, not voxels (use volume or betas)")
        else:
            metrics.update(encode(settings, models, samples, trial_samples, test_of, Path(paths.samples), drawings))
    with atomic_dir(Path(paths.plots)) as out:
        pd.DataFrame(rows).to_csv(out / "identification.csv", index=False)
        for name, draw in drawings.items():
            draw(out / name)
    write_metrics(metrics, paths.metrics)
    tracking.log_artifacts([Path(paths.plots) / name for name in drawings], "stitch")
    tracking.log_table(pd.DataFrame(rows), "stitch/identification.json")
    return metrics


def reconstruct(params: SimpleNamespace, fmri: dict, test_of: dict[str, list[str]], paths: SimpleNamespace,
                device: str, drawings: dict) -> dict:
    """Ridge fMRI -> full image-AE latents, decoded; scores per fMRI kind (mean over subjects)."""
    image_ae_dir = paths.image_ae
    _, config = load_model(image_ae_dir, "cpu")
    stimuli, pictures = load_stimuli(paths.stimuli, paths.raw, config["input_shape"][-1])
    latents, shape = image_ae_latents(image_ae_dir, pictures, device)
    target = StimulusMatrix("image_ae_full", latents, tuple(stimuli["image_name"]))
    row_of = pd.Series(np.arange(len(stimuli)), index=stimuli["image_name"])
    out: dict[str, float] = {}
    shown = None
    for kind, per_subject in fmri.items():
        scores = []
        for subject, x in per_subject.items():
            test = test_of[subject]
            mapping = fit_mapping(stitch.RidgeMapping(), x, target, x.stimuli, test)
            decoded = decode_pictures(image_ae_dir, mapping.predict(x.rows(test)), shape, device)
            originals = pictures[row_of.loc[test].to_numpy()].astype(np.float32) / 255
            scores.append(picture_scores(decoded, originals, params, f"reconstruct/{kind}/{subject}"))
            if shown is None:
                own = decode_pictures(image_ae_dir, target.rows(test), shape, device)
                shown = (f"{kind}, {subject}", originals[:8], own[:8], decoded[:8])
                ceiling = picture_scores(own, originals, params, f"reconstruct/ceiling/{subject}")
                out.update({f"stitch.reconstruct.ceiling.{k}": v for k, v in ceiling.items()})
        for field in scores[0]:
            out[f"stitch.reconstruct.{kind}.{field}"] = float(np.mean([s[field] for s in scores]))
    if shown is not None:
        drawings["reconstructions.png"] = lambda path: figures.decoded_stimuli(*shown, path)
    return out


def encode(params: SimpleNamespace, models: dict[str, StimulusMatrix], samples: dict[str, StimulusMatrix],
           trial_samples: dict[str, StimulusMatrix], test_of: dict[str, list[str]], samples_dir: Path,
           drawings: dict) -> dict:
    """Voxelwise encoding models from each image model; medians over the region, mean over subjects."""
    out: dict[str, float] = {}
    best = None
    for model, features in models.items():
        medians, nulls, normalised = [], [], []
        for subject, voxels in samples.items():
            test = test_of[subject]
            mapping = fit_mapping(stitch.RidgeMapping(alpha_per_target=True), features, voxels, voxels.stimuli, test)
            r = stitch.voxelwise_r(*mapping.transform(features.rows(test), voxels.rows(test)))
            # control: the same fit with images' features shuffled among the training images
            train = [n for n in voxels.stimuli if n not in set(test)]
            shuffled = StimulusMatrix("shuffled", features.rows(train)[_rng(params, "encode-null", model, subject)
                                                                         .permutation(len(train))], tuple(train))
            control = fit_mapping(stitch.RidgeMapping(alpha_per_target=True), shuffled, voxels, voxels.stimuli, test)
            nulls.append(np.nanmedian(stitch.voxelwise_r(*control.transform(features.rows(test), voxels.rows(test)))))
            medians.append(np.nanmedian(r))
            trials = trial_samples[subject]
            in_test = np.isin(np.asarray(trials.stimuli), test)
            if params.test == "repeats":
                ceiling = stitch.noise_ceiling_r(trials.matrix[in_test], np.asarray(trials.stimuli)[in_test])
                usable = ceiling > 0.1
                normalised.append(np.nanmedian(r[usable] / ceiling[usable]) if usable.any() else np.nan)
            if best is None or (model == "planted" and best[0] != "planted"):
                best = (model, subject, r)
        out[f"stitch.encode.{model}.median_r"] = float(np.mean(medians))
        out[f"stitch.encode.{model}.median_r_shuffled"] = float(np.mean(nulls))
        out[f"stitch.encode.{model}.median_r_normalised"] = float(np.mean(normalised)) if normalised else float("nan")
    if best is not None:
        model, subject, r = best
        mask_path = Path(samples_dir) / f"mask_sub-{subject}.nii.gz"
        if mask_path.is_file():
            drawings["encoding_r.png"] = lambda path: figures.encoding_brain_map(r, mask_path, f"{model} -> {subject}", path)
    return out
