"""The ``neurolatent`` command: one subcommand per pipeline stage. dvc.yaml only wires these."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from neurolatent.errors import NeurolatentError


def _tracked(stage: str, sections: list[str], args: argparse.Namespace, work, uses_torch: bool = False) -> None:
    """Run ``work(params, device)`` as one MLflow run of ``stage`` logging the ``sections`` of
    params.yaml; numeric results become ``<stage>.<key>`` metrics."""
    from neurolatent.config import load_params
    from neurolatent.runtime import configure_torch, resolve_device
    from neurolatent.tracking import stage_run

    params = load_params(args.params)
    device = "cpu"
    if uses_torch:
        configure_torch(params.compute.threads)
        device = resolve_device(params.compute.device)
    with stage_run(stage, {name: getattr(params, name) for name in ["compute", *sections]}):
        import mlflow

        summary = work(params, device)
        if summary:
            mlflow.log_metrics({f"{stage}.{k}": float(v) for k, v in summary.items()
                                if isinstance(v, (int, float)) and not isinstance(v, bool) and v is not None})
    shown = summary if not summary or len(summary) <= 12 else f"{len(summary)} metrics (see the stage's metrics JSON)"
    print(f"{stage}: {shown}")


def _dataset(args: argparse.Namespace) -> None:
    from neurolatent.dataset import run_dataset

    _tracked("dataset", ["data"], args, lambda p, d: run_dataset(p.data, args.out, args.truth))


def _trials(args: argparse.Namespace) -> None:
    from neurolatent.trials import run_trials

    _tracked("trials", ["data"], args, lambda p, d: run_trials(args.raw, args.trials, args.stimuli))


def _fmri(args: argparse.Namespace) -> None:
    from neurolatent.fmri import run_fmri

    _tracked("fmri", ["preprocess"], args, lambda p, d: run_fmri(p.preprocess, args.raw, args.truth, args.trials, args.out))


def _fmri_ae(args: argparse.Namespace) -> None:
    from neurolatent.fmri_ae import run_fmri_ae

    _tracked("fmri_ae", ["fmri_ae"], args, lambda p, d: run_fmri_ae(
        p.fmri_ae, args.samples, args.model, args.metrics, args.plots, args.checkpoints, d), uses_torch=True)


def _embed_fmri(args: argparse.Namespace) -> None:
    from neurolatent.embed_fmri import run_embed_fmri

    _tracked("embed_fmri", ["embed", "preprocess"], args, lambda p, d: run_embed_fmri(
        p.embed, p.preprocess, args.samples, args.model, args.trials, args.stimuli, args.out, args.index, d),
        uses_torch=True)


def _image_ae(args: argparse.Namespace) -> None:
    from neurolatent.image_ae import run_image_ae

    _tracked("image_ae", ["image_ae"], args, lambda p, d: run_image_ae(
        p.image_ae, args.stimuli, args.raw, args.model, args.metrics, args.plots, args.checkpoints, d),
        uses_torch=True)


def _embed_images(args: argparse.Namespace) -> None:
    from neurolatent.embed_images import run_embed_images

    _tracked("embed_images", ["embed"], args, lambda p, d: run_embed_images(
        p.embed, args.stimuli, args.raw, args.image_ae, args.out, d), uses_torch=True)


def _rsa(args: argparse.Namespace) -> None:
    from neurolatent.rsa_stage import run_rsa

    _tracked("rsa", ["rsa", "preprocess"], args, lambda p, d: run_rsa(
        p.rsa, p.preprocess, args.fmri, args.fmri_index, args.samples, args.trials, args.stimuli, args.images,
        args.truth, args.rdms, args.metrics, args.plots, d), uses_torch=True)


def _stitch(args: argparse.Namespace) -> None:
    from neurolatent.stitch_stage import run_stitch

    _tracked("stitch", ["stitch", "preprocess"], args, lambda p, d: run_stitch(
        p.stitch, p.preprocess, args.fmri, args.fmri_index, args.samples, args.trials, args.stimuli,
        args.raw, args.images, args.truth, args.image_ae, args.metrics, args.plots, d), uses_torch=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neurolatent",
        description="Stages of the neurolatent pipeline (BOLD5000 fMRI vs image-model latent spaces). "
        "`dvc repro` runs them in order; each can also be run alone.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")

    def stage(name: str, help_text: str, func) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default: %(default)s)")
        p.set_defaults(func=func)
        return p

    p = stage("dataset", "Write data/raw/bold5000 in BOLD5000's layout: a synthetic copy with a planted "
              "signal (data.source: synthetic) or a linked subset of a real copy (data.source: bids).", _dataset)
    p.add_argument("--out", type=Path, default=Path("data/raw/bold5000"), help="BIDS folder to write")
    p.add_argument("--truth", type=Path, default=Path("data/raw/truth"), help="ground-truth folder (synthetic)")

    p = stage("trials", "Parse and validate every task-5000scenes events file into trials.parquet "
              "(one row per trial) and stimuli.parquet (one row per unique image).", _trials)
    p.add_argument("--raw", type=Path, default=Path("data/raw/bold5000"), help="BIDS folder to read")
    p.add_argument("--trials", type=Path, default=Path("data/interim/trials.parquet"))
    p.add_argument("--stimuli", type=Path, default=Path("data/interim/stimuli.parquet"))

    p = stage("fmri", "Write one fMRI sample per trial (or per TR) into data/processed/fmri/samples.npy "
              "by preprocess.method: rendered (the study's pictures), volume (masked volume at the "
              "haemodynamic lag) or betas (single-trial GLM estimates).", _fmri)
    p.add_argument("--raw", type=Path, default=Path("data/raw/bold5000"))
    p.add_argument("--truth", type=Path, default=Path("data/raw/truth"))
    p.add_argument("--trials", type=Path, default=Path("data/interim/trials.parquet"))
    p.add_argument("--out", type=Path, default=Path("data/processed/fmri"))

    p = stage("fmri_ae", "Train the autoencoder that fits the fMRI samples (the study's conv AE for rendered "
              "pictures, 3D for volume, MLP for betas): subject-wise split, early stopping on validation loss, "
              "resumable checkpoints.", _fmri_ae)
    p.add_argument("--samples", type=Path, default=Path("data/processed/fmri"))
    p.add_argument("--model", type=Path, default=Path("models/fmri_ae"))
    p.add_argument("--metrics", type=Path, default=Path("metrics/fmri_ae.json"))
    p.add_argument("--plots", type=Path, default=Path("plots/fmri_ae_loss.csv"))
    p.add_argument("--checkpoints", type=Path, default=Path(".checkpoints/fmri_ae"),
                   help="resume point of an interrupted training (default: %(default)s)")

    p = stage("embed_fmri", "Encode every trial's fMRI sample with the fMRI AE and average per (subject, image).",
              _embed_fmri)
    p.add_argument("--samples", type=Path, default=Path("data/processed/fmri"))
    p.add_argument("--model", type=Path, default=Path("models/fmri_ae"))
    p.add_argument("--trials", type=Path, default=Path("data/interim/trials.parquet"))
    p.add_argument("--stimuli", type=Path, default=Path("data/interim/stimuli.parquet"))
    p.add_argument("--out", type=Path, default=Path("data/embeddings/fmri.npy"))
    p.add_argument("--index", type=Path, default=Path("data/embeddings/fmri_index.parquet"))

    p = stage("image_ae", "Train a conv autoencoder on the stimulus images.", _image_ae)
    p.add_argument("--stimuli", type=Path, default=Path("data/interim/stimuli.parquet"))
    p.add_argument("--raw", type=Path, default=Path("data/raw/bold5000"))
    p.add_argument("--model", type=Path, default=Path("models/image_ae"))
    p.add_argument("--metrics", type=Path, default=Path("metrics/image_ae.json"))
    p.add_argument("--plots", type=Path, default=Path("plots/image_ae_loss.csv"))
    p.add_argument("--checkpoints", type=Path, default=Path(".checkpoints/image_ae"))

    p = stage("embed_images", "Embed every stimulus with each of embed.image_models (transformers checkpoints, "
              "untrained:<checkpoint>, pixels, image_ae).", _embed_images)
    p.add_argument("--stimuli", type=Path, default=Path("data/interim/stimuli.parquet"))
    p.add_argument("--raw", type=Path, default=Path("data/raw/bold5000"))
    p.add_argument("--image-ae", type=Path, default=Path("models/image_ae"))
    p.add_argument("--out", type=Path, default=Path("data/embeddings/images"))

    p = stage("rsa", "Compare every image model with every fMRI representation by RSA: reduced RDMs per subject, "
              "rank correlation, permutation p, bootstrap CI, noise ceiling, and the study's statistics.", _rsa)
    p.add_argument("--fmri", type=Path, default=Path("data/embeddings/fmri.npy"))
    p.add_argument("--fmri-index", type=Path, default=Path("data/embeddings/fmri_index.parquet"))
    p.add_argument("--samples", type=Path, default=Path("data/processed/fmri"))
    p.add_argument("--trials", type=Path, default=Path("data/interim/trials.parquet"))
    p.add_argument("--stimuli", type=Path, default=Path("data/interim/stimuli.parquet"))
    p.add_argument("--images", type=Path, default=Path("data/embeddings/images"))
    p.add_argument("--truth", type=Path, default=Path("data/raw/truth"))
    p.add_argument("--rdms", type=Path, default=Path("data/rdms"))
    p.add_argument("--metrics", type=Path, default=Path("metrics/rsa.json"))
    p.add_argument("--plots", type=Path, default=Path("plots/rsa"))

    p = stage("stitch", "Map fMRI latents onto image latents (ridge, Procrustes, relative representations), "
              "identify and reconstruct held-out stimuli, and predict each voxel from image latents.", _stitch)
    p.add_argument("--fmri", type=Path, default=Path("data/embeddings/fmri.npy"))
    p.add_argument("--fmri-index", type=Path, default=Path("data/embeddings/fmri_index.parquet"))
    p.add_argument("--samples", type=Path, default=Path("data/processed/fmri"))
    p.add_argument("--trials", type=Path, default=Path("data/interim/trials.parquet"))
    p.add_argument("--stimuli", type=Path, default=Path("data/interim/stimuli.parquet"))
    p.add_argument("--raw", type=Path, default=Path("data/raw/bold5000"))
    p.add_argument("--images", type=Path, default=Path("data/embeddings/images"))
    p.add_argument("--truth", type=Path, default=Path("data/raw/truth"))
    p.add_argument("--image-ae", type=Path, default=Path("models/image_ae"))
    p.add_argument("--metrics", type=Path, default=Path("metrics/stitch.json"))
    p.add_argument("--plots", type=Path, default=Path("plots/stitch"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(name)s: %(message)s")
    try:
        from neurolatent.config import load_params
        from neurolatent.runtime import pin_numerics

        # before any stage module loads numpy, numba or torch: their kernels are chosen on import
        compute = load_params(args.params).compute
        pin_numerics(compute.threads, compute.portable)
        args.func(args)
    except NeurolatentError as exc:
        print(f"neurolatent {args.stage}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
