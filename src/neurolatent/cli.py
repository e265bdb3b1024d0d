"""The ``neurolatent`` command: one subcommand per pipeline stage. dvc.yaml only wires these."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from neurolatent.errors import NeurolatentError


def _dataset(args: argparse.Namespace) -> None:
    from neurolatent.config import load_params
    from neurolatent.dataset import run_dataset
    from neurolatent.tracking import stage_run

    params = load_params(args.params)
    with stage_run("dataset", {"data": params.data}) as _:
        import mlflow

        summary = run_dataset(params.data, args.out, args.truth)
        mlflow.log_metrics({f"dataset.{k}": v for k, v in summary.items()})
    print(f"dataset: {summary}")


def _trials(args: argparse.Namespace) -> None:
    from neurolatent.config import load_params
    from neurolatent.tracking import stage_run
    from neurolatent.trials import run_trials

    params = load_params(args.params)
    with stage_run("trials", {"data": params.data}) as _:
        import mlflow

        summary = run_trials(args.raw, args.trials, args.stimuli)
        mlflow.log_metrics({f"trials.{k}": v for k, v in summary.items()})
    print(f"trials: {summary}")


def _fmri(args: argparse.Namespace) -> None:
    from neurolatent.config import load_params
    from neurolatent.fmri import run_fmri
    from neurolatent.tracking import stage_run

    params = load_params(args.params)
    with stage_run("fmri", {"preprocess": params.preprocess}) as _:
        import mlflow

        summary = run_fmri(params.preprocess, args.raw, args.truth, args.trials, args.out)
        mlflow.log_metrics({f"fmri.{k}": v for k, v in summary.items()})
    print(f"fmri: {summary}")


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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(name)s: %(message)s")
    try:
        args.func(args)
    except NeurolatentError as exc:
        print(f"neurolatent {args.stage}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
