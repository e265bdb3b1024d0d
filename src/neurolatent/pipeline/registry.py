"""Every stage declared once: the params it reads, the files it reads and writes, its help.

The ``neurolatent`` CLI builds its subcommands from :data:`STAGES`, MLflow logs exactly the
declared params, the stage receives only those (:func:`select_params`), and
``tests/test_layout.py`` checks that ``dvc.yaml`` and ``MLproject`` say the same (:func:`dvc_stage`,
:func:`mlproject_entry_points`) and that each stage's dvc.yaml deps cover its import closure
(:func:`neurolatent.pipeline.source.import_closure`). ``python -m neurolatent.pipeline.registry --write`` rewrites the ``stages:``
section of dvc.yaml and MLproject's entry points after a change here.

Standard library only: the CLI reads this before the process's numerics are pinned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

from neurolatent.pipeline.source import SOURCE_ROOT, import_closure

#: modules whose code runs in every stage: the params model, the pinned numerics, the error type
COMMON_MODULES = ("neurolatent.pipeline.params", "neurolatent.pipeline.numerics", "neurolatent.errors")


@dataclass(frozen=True)
class File:
    """A file or folder a stage reads or writes.

    name : the CLI option (``--fmri-index``) and the attribute of ``paths`` (``fmri_index``)
    path : its default, relative to the project root (what dvc.yaml uses)
    kind : ``in`` (a dependency), ``out`` (cached by DVC), ``metrics`` (the JSON ``dvc exp show``
        reads, in git: ``metrics/summary.json`` only, so the table stays narrow), ``detail`` (a
        stage's full metrics JSON, an uncached output in git: ``dvc metrics show <file>`` and the
        report read it), ``plots`` (tables and figures the top-level ``plots:`` of dvc.yaml draw, in
        git), ``work`` (scratch space outside DVC)
    optional : an input the stage runs without when it is absent (the planted truth of real data;
        the align stage's shared space, read only where a stage's fmri lists align)
    """

    name: str
    path: str
    help: str
    kind: Literal["in", "out", "metrics", "detail", "plots", "work"] = "in"
    optional: bool = False


@dataclass(frozen=True)
class Stage:
    """A stage: its name (the CLI subcommand and dvc.yaml key), its help, the params.yaml keys it
    reads, its files, and the package data it reads."""

    name: str
    help: str
    #: params.yaml keys the stage reads: whole sections (``rsa``) or dotted keys (``preprocess.lag_s``)
    params: tuple[str, ...]
    files: tuple[File, ...]
    #: package data the stage reads, relative to the package (``resources/vit-tiny``)
    resources: tuple[str, ...] = field(default_factory=tuple)

    @property
    def module(self) -> str:
        """The stage's module, ``neurolatent.pipeline.stages.<name>``."""
        return f"neurolatent.pipeline.stages.{self.name}"

    def inputs(self) -> list[File]:
        """The files it reads (its dvc.yaml deps)."""
        return [f for f in self.files if f.kind == "in"]

    def outputs(self) -> list[File]:
        """The files it writes that DVC tracks (outs, metrics, plots)."""
        return [f for f in self.files if f.kind in ("out", "metrics", "detail", "plots")]


def _in(name: str, path: str, help_text: str, optional: bool = False) -> File:
    return File(name, path, help_text, "in", optional)


RAW = _in("raw", "data/raw/bold5000", "the BOLD5000-layout folder")
TRUTH = _in("truth", "data/raw/truth", "the synthetic data's planted truth (truth.json only for real data)", True)
TRIALS = _in("trials", "data/interim/trials.parquet", "one row per trial")
STIMULI = _in("stimuli", "data/interim/stimuli.parquet", "one row per image, the row order of every per-stimulus matrix")
SAMPLES = _in("samples", "data/processed/fmri", "the fmri stage's samples")
FMRI = _in("fmri", "data/embeddings/fmri.npy", "fMRI AE latents per (subject, image)")
FMRI_INDEX = _in("fmri_index", "data/embeddings/fmri_index.parquet", "rows of fmri.npy")
IMAGES = _in("images", "data/embeddings/images", "one matrix per image model")
ALIGNED = _in("align", "data/align", "the align stage's shared space per subject and image", True)
IMAGE_AE = _in("image_ae", "models/image_ae", "the image autoencoder")
COMPUTE = ("compute",)
#: each stage's full metrics, the summary stage's inputs
DETAIL = {stage: _in(stage, f"metrics/{stage}.json", f"the {stage} stage's metrics")
          for stage in ("fmri_ae", "image_ae", "rsa", "stitch")}
CPU_NUMERICS = ("compute.threads", "compute.portable")
#: where parallel.parallel_map runs a stage's per-run work (local processes or a Dask scheduler)
SCHEDULER = ("compute.scheduler", "compute.dask_address")

STAGES: dict[str, Stage] = {stage.name: stage for stage in (
    Stage("dataset", "Write data/raw/bold5000 in BOLD5000's layout: a synthetic copy with a planted signal "
          "(data.source: synthetic) or a linked subset of a real copy (data.source: bids).",
          ("data", *CPU_NUMERICS, *SCHEDULER),
          (File("raw", RAW.path, "BIDS folder to write", "out"),
           File("truth", TRUTH.path, "ground-truth folder (synthetic data)", "out")),
          ("resources/bold5000_schedule.tsv.gz",)),
    Stage("trials", "Parse and validate every task-5000scenes events file into trials.parquet (one row per "
          "trial, with the run the configuration reads) and stimuli.parquet (one row per unique image).",
          ("preprocess.space", "preprocess.method"),
          (RAW, File("trials", TRIALS.path, TRIALS.help, "out"), File("stimuli", STIMULI.path, STIMULI.help, "out"))),
    Stage("fmri", "Write one fMRI sample per trial (or per TR) into data/processed/fmri/samples.npy by "
          "preprocess.method: rendered (the study's pictures), volume (masked volume at the haemodynamic lag) "
          "or betas (single-trial GLM estimates).",
          ("preprocess", *CPU_NUMERICS, *SCHEDULER),
          (RAW, TRIALS, File("out", SAMPLES.path, "folder to write the samples into", "out"))),
    Stage("fmri_ae", "Train the autoencoder that fits the fMRI samples (the study's conv AE for rendered pictures, "
          "3D for volume, MLP for betas): subject-wise split, early stopping on validation loss, resumable "
          "checkpoints.",
          ("fmri_ae", *COMPUTE),
          (SAMPLES, File("model", "models/fmri_ae", "the trained model (safetensors + config.json)", "out"),
           File("metrics", DETAIL["fmri_ae"].path, "losses and split sizes", "detail"),
           File("plots", "plots/fmri_ae_loss.csv", "loss per epoch", "plots"),
           File("checkpoints", ".checkpoints/fmri_ae", "resume point of an interrupted training", "work"))),
    Stage("embed_fmri", "Encode every trial's fMRI sample with the fMRI AE and average per (subject, image).",
          ("embed.pooling", "embed.batch_size", "preprocess.lag_s", "preprocess.anchor", "preprocess.rounding", *COMPUTE),
          (SAMPLES, File("model", "models/fmri_ae", "the fMRI autoencoder"), TRIALS, STIMULI,
           File("out", FMRI.path, FMRI.help, "out"), File("index", FMRI_INDEX.path, FMRI_INDEX.help, "out"))),
    Stage("image_ae", "Train a conv autoencoder on the stimulus images.",
          ("image_ae", *COMPUTE),
          (STIMULI, RAW, File("model", IMAGE_AE.path, IMAGE_AE.help, "out"),
           File("metrics", DETAIL["image_ae"].path, "losses and split sizes", "detail"),
           File("plots", "plots/image_ae_loss.csv", "loss per epoch", "plots"),
           File("checkpoints", ".checkpoints/image_ae", "resume point of an interrupted training", "work"))),
    Stage("embed_images", "Embed every stimulus with each of embed.image_models (transformers checkpoints, "
          "untrained:<checkpoint>, pixels, image_ae).",
          ("embed", *COMPUTE),
          (STIMULI, RAW, IMAGE_AE, File("out", IMAGES.path, IMAGES.help, "out")),
          ("resources/vit-tiny",)),
    Stage("rsa", "Compare every image model with every fMRI representation by RSA: reduced RDMs per subject, "
          "rank correlation, permutation p, bootstrap CI, noise ceiling, and the study's statistics.",
          ("rsa", "preprocess.lag_s", "preprocess.anchor", "preprocess.rounding", *COMPUTE),
          (FMRI, FMRI_INDEX, SAMPLES, TRIALS, STIMULI, IMAGES, TRUTH, ALIGNED,
           File("rdms", "data/rdms", "every RDM (rsatoolbox-ready)", "out"),
           File("metrics", DETAIL["rsa"].path, "RSA r, p, CI, noise ceiling per comparison", "detail"),
           File("plots", "plots/rsa", "tables and figures", "plots"))),
    Stage("stitch", "Map fMRI latents onto image latents (ridge, Procrustes, relative representations), identify "
          "and reconstruct held-out stimuli, and predict each voxel from image latents.",
          ("stitch", "preprocess.method", "preprocess.lag_s", "preprocess.anchor", "preprocess.rounding", *COMPUTE),
          (FMRI, FMRI_INDEX, SAMPLES, TRIALS, STIMULI, RAW, IMAGES, TRUTH, IMAGE_AE, ALIGNED,
           File("metrics", DETAIL["stitch"].path, "identification, reconstruction, encoding", "detail"),
           File("plots", "plots/stitch", "tables and figures", "plots"))),
    Stage("encode", "Fit the image models (and, on synthetic data, the planted families) together to every voxel "
          "by banded ridge, one fit per subject and partition, and divide the held-out variance among the bands "
          "(each band's share, or with encode.partition: subsets each band's unique part and the shared ones), "
          "per ROI, with bootstrap intervals over test images.",
          ("encode", "stitch.test", "stitch.test_fraction", "stitch.min_test", "stitch.seed", "preprocess.method",
           "preprocess.lag_s", "preprocess.anchor", "preprocess.rounding", "compute.device", *CPU_NUMERICS,
           *SCHEDULER),
          (SAMPLES, TRIALS, STIMULI, RAW, IMAGES, TRUTH,
           File("out", "data/encoding", "per subject and voxel: held-out R^2, penalties and each band's part", "out"),
           File("metrics", "metrics/encode.json", "each band's part of the variance per partition and ROI", "detail"),
           File("plots", "plots/encode", "partition table and figures", "plots"))),
    Stage("align", "Align every subject into one shared space (SRM, Procrustes template, MindEye2-style adapter) and "
          "read a held-out subject from few of its images: few-shot identification against scratch, between-subject "
          "identification, and on synthetic data how well each shared space spans the planted features.",
          ("align", "preprocess.lag_s", "preprocess.anchor", "preprocess.rounding"),
          (SAMPLES, TRIALS, STIMULI, IMAGES, TRUTH, FMRI, FMRI_INDEX,
           File("out", ALIGNED.path, "align.method's shared space per subject and image (shared.npy, index.parquet)",
                "out"),
           File("metrics", "metrics/align.json", "few-shot and between-subject identification, planted spans",
                "detail"),
           File("plots", "plots/align", "fewshot.csv, planted.csv, fewshot.png", "plots"))),
    Stage("export", "Write the run's results in the files of the field's tools (export.frames): Net2Brain's brain and "
          "model RDMs and results.csv, a Brain-Score neural assembly (netCDF) with its stimulus set and a benchmark "
          "plugin skeleton, and Algonauts-style noise-normalised encoding scores, under exports/.",
          ("export", "stitch.test", "stitch.test_fraction", "stitch.min_test", "stitch.seed", "preprocess.lag_s",
           "preprocess.anchor", "preprocess.rounding", *CPU_NUMERICS),
          (_in("rdms", "data/rdms", "the rsa stage's RDMs"), SAMPLES, TRIALS, STIMULI, RAW, IMAGES, TRUTH,
           File("out", "exports", "net2brain/, brainscore/, algonauts/", "out")),
          ("resources/brainscore_plugin",)),
    Stage("summary", "Write metrics/summary.json: the run's headline (at most 15 numbers), the one metrics file "
          "dvc exp show reads.", (),
          (*DETAIL.values(), File("metrics", "metrics/summary.json", "the headline numbers", "metrics"))),
    Stage("page", "Write the run's offline page, reports/run/index.html: the headline, the loss, RSA and "
          "identification charts drawn locally, every figure; nothing fetched from the network.", (),
          (_in("summary", "metrics/summary.json", "the headline numbers"),
           _in("fmri_ae_loss", "plots/fmri_ae_loss.csv", "the fMRI AE's loss per epoch"),
           _in("image_ae_loss", "plots/image_ae_loss.csv", "the image AE's loss per epoch"),
           _in("rsa_plots", "plots/rsa", "rsa's tables and figures"),
           _in("stitch_plots", "plots/stitch", "stitch's tables and figures"),
           _in("encode_plots", "plots/encode", "encode's tables and figures"),
           File("out", "reports/run", "the page (index.html)", "plots"))),
)}


def producer(stage: Stage, name: str) -> str | None:
    """The stage whose output is ``stage``'s input ``name`` (its declared path), None if none is."""
    path = next(f.path for f in stage.files if f.name == name)
    return next((other.name for other in STAGES.values() for f in other.outputs() if f.kind != "work"
                 and f.path == path and other.name != stage.name), None)


def missing_inputs(stage: Stage, paths: dict[str, str]) -> str | None:
    """One line naming the first of ``stage``'s inputs (``paths``: {file name: the path given})
    that does not exist and the stage that makes it; None when every input exists. An optional
    input may be absent (the truth folder with real data)."""
    for file in stage.inputs():
        given = Path(paths[file.name])
        if given.exists() or file.optional:
            continue
        made_by = producer(stage, file.name)
        if made_by is None:
            return f"{given}: missing ({file.help})"
        return (f"{given}: missing: the {made_by} stage makes it (run `dvc repro {made_by}`, or `dvc repro` for "
                "the whole pipeline)")
    return None


# ----------------------------------------------------------------------------- params a stage sees


def select_params(params: Any, keys: tuple[str, ...]) -> SimpleNamespace:
    """Only the declared params: ``select_params(p, ("rsa", "preprocess.lag_s")).rsa`` is the
    rsa section, ``.preprocess.lag_s`` the lag, and ``.preprocess.method`` an AttributeError.

    So a stage cannot read a key its registry entry does not declare, and what MLflow logs (the
    declared keys) is what the stage read.
    """
    tree: dict[str, Any] = {}
    for key in keys:
        *parents, last = key.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = True

    def build(source: Any, node: dict[str, Any]) -> SimpleNamespace:
        return SimpleNamespace(**{name: getattr(source, name) if child is True else build(getattr(source, name), child)
                                  for name, child in node.items()})

    return build(params, tree)


def declared_values(params: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    """{declared key: its value (a section stays a pydantic model)} for logging."""
    out = {}
    for key in keys:
        value = params
        for part in key.split("."):
            value = getattr(value, part)
        out[key] = value
    return out


# ----------------------------------------------------------------------------- dvc.yaml and MLproject


def cmd(stage: Stage) -> str:
    """The stage's dvc.yaml command: ``neurolatent <stage>`` with every path given explicitly."""
    options = [f"--{f.name.replace('_', '-')} {f.path}" for f in stage.files if f.kind != "work"]
    return " ".join(["neurolatent", stage.name, *options])


def dvc_stage(stage: Stage) -> dict[str, Any]:
    """The stage's entry under ``stages:`` in dvc.yaml: cmd, deps (code closure, package data,
    inputs), params, outs (cached; plots files uncached, drawn by the top-level ``plots:`` only,
    so no plot is defined twice) and metrics (uncached).

    Every output is ``persist: true``: DVC would otherwise delete a stage's outputs before running
    it, so a stage that then stops (on a bad param, a missing input, Ctrl-C) would leave nothing,
    and an uncached output (metrics, plots) could not even be checked out again. Each stage writes
    its outputs to a temporary path and renames them over the old ones when it succeeds
    (:func:`neurolatent.io.files.atomic_dir`), so what DVC no longer deletes is replaced whole."""
    code = sorted({str(p) for module in (stage.module, *COMMON_MODULES) for p in import_closure(module)})
    entry: dict[str, Any] = {"cmd": cmd(stage),
                             "deps": code + [str(SOURCE_ROOT / r) for r in stage.resources] + [f.path for f in stage.inputs()]}
    if stage.params:
        entry["params"] = list(stage.params)
    outs = [{f.path: {"persist": True}} for f in stage.files if f.kind == "out"] + [
        {f.path: {"cache": False, "persist": True}} for f in stage.files if f.kind in ("detail", "plots")]
    if outs:
        entry["outs"] = outs
    metrics = [{f.path: {"cache": False, "persist": True}} for f in stage.files if f.kind == "metrics"]
    if metrics:
        entry["metrics"] = metrics
    return entry


def mlproject_entry_points() -> dict[str, dict[str, str]]:
    """MLproject's entry points: ``main`` runs the pipeline, one per stage with its default paths."""
    return {"main": {"command": "dvc repro"}, **{name: {"command": f"neurolatent {name}"} for name in STAGES}}


def write_declarations(root: Path) -> None:
    """Rewrite the ``stages:`` section of ``root/dvc.yaml`` (the hand-written top-level ``plots:``
    above it is kept) and ``root/MLproject``'s entry points from the registry."""
    import yaml

    def dump(data: dict) -> str:
        return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=200)

    dvc_yaml = root / "dvc.yaml"
    text = dvc_yaml.read_text()
    lines: list[str] = []
    for line in dump({"stages": {name: dvc_stage(stage) for name, stage in STAGES.items()}}).splitlines():
        if line.startswith("  ") and not line.startswith("   ") and lines[-1] != "stages:":
            lines.append("")  # a blank line between stages
        lines.append(line)
    dvc_yaml.write_text(text[:text.index("stages:")] + "\n".join(lines) + "\n")
    mlproject = root / "MLproject"
    text = mlproject.read_text()
    mlproject.write_text(text[:text.index("name: neurolatent")]
                         + dump({"name": "neurolatent", "entry_points": mlproject_entry_points()}))


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description="Print (or --write) dvc.yaml's stages from the registry.")
    parser.add_argument("--write", action="store_true", help="rewrite dvc.yaml's stages and MLproject in the cwd")
    if parser.parse_args().write:
        write_declarations(Path.cwd())
    else:
        print(json.dumps({name: dvc_stage(stage) for name, stage in STAGES.items()}, indent=2))
