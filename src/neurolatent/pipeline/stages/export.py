"""Stage ``export``: the run's results in the files of the field's tools (``export.frames``).

- ``net2brain``: ``exports/net2brain/`` holds ``brain_rdms/<roi>.npz`` (the rsa stage's RDMs of the
  ``samples`` representation, per ROI and their union, subjects x n x n over the images every
  subject saw; ``<roi>.json`` beside it names them), ``model_rdms/<Model>/RDM_<Layer>.npz`` (every
  model RDM of the rsa stage over the same images), ``results.csv`` (Net2Brain's columns,
  :mod:`neurolatent.science.peers`) and ``results_by_representation.csv`` (an ``fmri`` column,
  then the same, for every representation: the AE's latents too, whose RDMs are in
  ``brain_rdms_ae/``). When the subjects share fewer than 3 images no statistic is defined: the
  tables have their header only and the RDMs are subjects x n x n with n < 3; the log says so.
- ``brainscore``: ``exports/brainscore/`` holds ``assembly.nc`` (every trial's sample of every
  voxel, :func:`neurolatent.io.exports.neural_assembly`, with each voxel's NSD noise ceiling in
  percent where the subject saw an image twice or more, else NaN), ``stimulus_set.csv`` (with each
  image's path) and ``plugin/`` (Brain-Score's ``data/`` and ``benchmarks/`` plugin layout,
  ``export.identifier``). Subjects who saw different images leave NaN where a subject had no such
  presentation; the plugin's benchmarks keep the images every subject saw.
- ``algonauts``: ``exports/algonauts/scores.csv``: per image model and ROI (and ``union``, every
  visual voxel), the Algonauts 2023 noise-normalised encoding accuracy (the stitch stage's ridge
  from the model to each voxel, on the stitch split's test images: :func:`neurolatent.science.peers.algonauts_scores`),
  median over the ROI's voxels,
  mean over subjects; beside it the median r (the stitch stage's encoding figure) and the median
  noise ceiling. NaN where no test image was shown twice (no noise ceiling).
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pandas as pd

from neurolatent.errors import NeurolatentError
from neurolatent.io.exports import (net2brain_results, neural_assembly, shared_images, write_assembly,
                                    write_brain_rdms, write_model_rdms, write_plugin, write_stimulus_set)
from neurolatent.io.files import atomic_dir, write_csv
from neurolatent.io.rdms import stored_rdms
from neurolatent.io.representations import (fmri_samples, fmri_trial_samples, image_layers, image_models,
                                            planted_features, region_columns, voxel_labels)
from neurolatent.pipeline.progress import progress
from neurolatent.pipeline.split import held_out_images
from neurolatent.science.voxelwise import noise_ceiling_r
from neurolatent.science.peers import algonauts_scores
from neurolatent.science.stimuli import StimulusMatrix, presentations

log = logging.getLogger(__name__)

#: the rsa stage's region of every visual voxel together
UNION = "union"


def _rdm_groups(rdms: list) -> tuple[dict[str, dict[str, list]], dict]:
    """The rsa stage's RDMs (StoredRDMs: read as each is written out) as {fMRI kind: {region: RDMs
    per subject}} and {model: RDM}; an RDM named ``<kind>/<subject>`` is the kind's union, ``<kind>/<roi>/<subject>`` a ROI's."""
    fmri: dict[str, dict[str, list]] = {}
    models = {}
    for item in rdms:
        if item.meta.get("subject", "all") == "all":
            models[item.name] = item
            continue
        parts = item.name.split("/")
        region = parts[1] if len(parts) == 3 else UNION
        fmri.setdefault(parts[0], {}).setdefault(region, []).append(item)
    return fmri, models


def _layer_names(models: dict, images_dir: Path) -> dict[str, tuple[str, str]]:
    """{model: (Net2Brain's Model, Layer)}: a transformer's entry is (its network, its layer); any
    other model (pixels, the image AE, the planted truth, the category model) is one layer, ``output``."""
    layers = image_layers(images_dir).set_index("model")
    return {name: (str(layers.loc[name, "network"]), str(layers.loc[name, "layer"])) if name in layers.index
            else (name, "output") for name in models}


def _net2brain(paths: SimpleNamespace, out: Path, order: tuple[str, ...]) -> int:
    fmri, models = _rdm_groups(stored_rdms(paths.rdms))
    if "samples" not in fmri:
        raise NeurolatentError(f"{paths.rdms}: no RDM of the samples representation (rsa.fmri must list samples)")
    images = shared_images([item.stimuli for regions in fmri.values() for rdms in regions.values() for item in rdms],
                           order)
    if len(images) < 3:
        log.warning("export: the subjects share %d image(s): Net2Brain's tables are empty (select sessions and "
                    "runs whose images the subjects share)", len(images))
    layers = _layer_names(models, paths.images)
    squares = write_model_rdms(out / "net2brain" / "model_rdms", models, layers, images)
    tables = []
    bar = progress(total=sum(len(regions) for regions in fmri.values()) * len(squares), desc="export: Net2Brain's rows",
                   unit="row")
    for kind, regions in fmri.items():
        folder = "brain_rdms" if kind == "samples" else f"brain_rdms_{kind}"
        stacks = write_brain_rdms(out / "net2brain" / folder, regions, images)
        tables.append(net2brain_results(stacks, squares, layers, bar.update).assign(fmri=kind))
    bar.close()
    results = pd.concat(tables, ignore_index=True)
    write_csv(results[results["fmri"] == "samples"].drop(columns="fmri"), out / "net2brain" / "results.csv")
    write_csv(results[["fmri", *results.columns[:-1]]], out / "net2brain" / "results_by_representation.csv")
    return len(images)


def _voxels(samples_dir: Path, trials: dict[str, StimulusMatrix]) -> pd.DataFrame:
    """A row per (subject, column) of the samples: its region (the ROI, or ``brain`` without ROI
    labels), hemisphere, position in the subject's mask grid (-1 where the fmri stage wrote no mask)
    and noise ceiling (percent of the repeat-averaged response's variance that is signal, NSD's
    form, from every image the subject saw twice or more; NaN without one)."""
    labels = voxel_labels(samples_dir)
    frames = []
    for subject, matrix in trials.items():
        width = matrix.matrix.shape[1]
        if labels is not None:
            own = labels[labels["subject"] == subject].sort_values("column")
            frame = pd.DataFrame({"column": own["column"].to_numpy(), "region": own["roi"].to_numpy(),
                                  "hemisphere": own["hemisphere"].to_numpy()})
        else:
            frame = pd.DataFrame({"column": np.arange(width), "region": "brain", "hemisphere": ""})
        mask_path = Path(samples_dir) / f"mask_sub-{subject}.nii.gz"
        position = np.full((len(frame), 3), -1, dtype=np.int64)
        if mask_path.is_file():
            points = np.argwhere(np.asanyarray(nib.load(mask_path).dataobj) > 0)  # C order: the columns' order
            if len(points) == width:
                position = points[frame["column"].to_numpy()]
        try:
            ceiling = 100.0 * noise_ceiling_r(matrix.matrix, np.asarray(matrix.stimuli)) ** 2
        except ValueError:  # no image shown twice
            ceiling = np.full(width, np.nan)
        frames.append(frame.assign(subject=subject, voxel_x=position[:, 0], voxel_y=position[:, 1],
                                   voxel_z=position[:, 2], noise_ceiling=ceiling[frame["column"].to_numpy()]))
    return pd.concat(frames, ignore_index=True)


def _brainscore(params: SimpleNamespace, paths: SimpleNamespace, out: Path, stimuli: pd.DataFrame,
                trials: dict[str, StimulusMatrix]) -> dict:
    folder = out / "brainscore"
    folder.mkdir()
    voxels = _voxels(Path(paths.samples), trials)
    assembly = neural_assembly(trials, voxels, tuple(stimuli["image_name"]))
    write_assembly(assembly, folder / "assembly.nc")
    # the image paths are relative to the folder the CSV ends up in, not the temporary one
    write_stimulus_set(stimuli, Path(paths.raw), folder / "stimulus_set.csv", Path(paths.out) / "brainscore")
    regions = list(dict.fromkeys(voxels["region"]))
    write_plugin(Path(str(resources.files("neurolatent") / "resources" / "brainscore_plugin")), folder / "plugin",
                 params.export.identifier, regions)
    return {"export.brainscore.presentations": assembly.sizes["presentation"],
            "export.brainscore.neuroids": assembly.sizes["neuroid"]}


def _algonauts(params: SimpleNamespace, paths: SimpleNamespace, out: Path, stimuli: pd.DataFrame,
               trials: dict[str, StimulusMatrix]) -> dict:
    """Noise-normalised encoding accuracy per model and ROI (see the module's docstring)."""
    test_of = held_out_images(params.stitch, presentations(pd.read_parquet(paths.trials), stimuli), paths.raw)
    samples = fmri_samples(trials)
    labels = voxel_labels(paths.samples)
    regions = {subject: {UNION: np.arange(voxels.matrix.shape[1])}
               | ({} if labels is None else region_columns(labels, subject)) for subject, voxels in samples.items()}
    models = image_models(paths.images, stimuli) | planted_features(paths.truth)
    table, without = algonauts_scores(models, samples, trials, test_of, regions)
    if without:
        log.warning("export: %d of %d subjects saw no test image twice: their noise ceiling and Algonauts scores are NaN "
                    "(stitch.test: repeats with repeated images gives them)", len(without), len(samples))
    (out / "algonauts").mkdir()
    table.to_csv(out / "algonauts" / "scores.csv", index=False)
    return {f"export.algonauts.{row.model}.{row.roi}": float(row.score) for row in table.itertuples()}


def closing_line(metrics: dict) -> str:
    """What each frame got: Net2Brain's shared images, the assembly's size, Algonauts' best model."""
    parts = []
    if "export.net2brain.shared_images" in metrics:
        parts.append(f"net2brain over {metrics['export.net2brain.shared_images']} shared images")
    if "export.brainscore.presentations" in metrics:
        parts.append(f"brainscore assembly {metrics['export.brainscore.presentations']} presentations x "
                     f"{metrics['export.brainscore.neuroids']} neuroids")
    union = {key.split(".")[2]: value for key, value in metrics.items()
             if key.startswith("export.algonauts.") and key.endswith(f".{UNION}") and np.isfinite(value)}
    if any(key.startswith("export.algonauts.") for key in metrics):
        best = max(union, key=union.get) if union else None
        parts.append(f"algonauts best {best} {union[best]:.1f}% of the noise ceiling" if best else
                     "algonauts scores NaN (no noise ceiling)")
    return "export: " + "; ".join(parts)


def run(params: SimpleNamespace, paths: SimpleNamespace) -> dict:
    """The stage on its declared ``params`` and ``paths``; returns its metrics."""
    frames = params.export.frames
    stimuli = pd.read_parquet(paths.stimuli)
    metrics: dict = {}
    with atomic_dir(Path(paths.out)) as out:
        if "net2brain" in frames:
            metrics["export.net2brain.shared_images"] = _net2brain(paths, out, tuple(stimuli["image_name"]))
        if "brainscore" in frames or "algonauts" in frames:
            trials = fmri_trial_samples(paths.samples, paths.trials, params.preprocess.lag_s, params.preprocess.anchor,
                                        params.preprocess.rounding)
            if "brainscore" in frames:
                metrics |= _brainscore(params, paths, out, stimuli, trials)
            if "algonauts" in frames:
                metrics |= _algonauts(params, paths, out, stimuli, trials)
    return metrics
