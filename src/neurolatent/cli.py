"""The ``neurolatent`` command: one subcommand per pipeline stage, built from the stage registry.

dvc.yaml runs these; each can also be run alone (``neurolatent <stage> --help`` lists its files and
the params it reads). A run is: validate params.yaml, pin the process's numerics, open the stage's
MLflow run (logging the params it reads), run the stage, log its metrics, print one closing line.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path
from types import SimpleNamespace

from neurolatent import __version__
from neurolatent.errors import NeurolatentError
from neurolatent.stages.registry import STAGES, Stage, declared_values, select_params

log = logging.getLogger("neurolatent")


def _stage_parser(sub, stage: Stage) -> None:
    reads = ", ".join(stage.params) if stage.params else "none"
    parser = sub.add_parser(stage.name, help=stage.help, description=f"{stage.help} Params read: {reads}.",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file")
    for file in stage.files:
        role = {"in": "input", "work": "scratch"}.get(file.kind, "output")
        parser.add_argument(f"--{file.name.replace('_', '-')}", dest=file.name, type=Path, default=Path(file.path),
                            help=f"{role}: {file.help}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neurolatent",
        description="Stages of the neurolatent pipeline (BOLD5000 fMRI vs image-model latent spaces). "
        "`dvc repro` runs them in order; each can also be run alone.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")
    for stage in STAGES.values():
        _stage_parser(sub, stage)
    return parser


def run_stage(stage: Stage, args: argparse.Namespace) -> dict:
    """Validate the params, pin the numerics, run the stage in its MLflow run; return its metrics."""
    from neurolatent.config import load_params
    from neurolatent.runtime import pin_numerics

    params = load_params(args.params)
    # before the stage module loads numpy, numba or torch: their kernels are chosen on import
    pin_numerics(params.compute.threads, params.compute.portable)
    from neurolatent import tracking

    module = importlib.import_module(stage.module)
    paths = SimpleNamespace(**{file.name: getattr(args, file.name) for file in stage.files})
    with tracking.stage_run(stage.name, declared_values(params, stage.params)):
        metrics = module.run(select_params(params, stage.params), paths)
        tracking.log_metrics(metrics)
    return metrics


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    # the libraries' own INFO lines are not ours to show (MLflow's: see tracking.stage_run)
    for name in ("alembic", "urllib3", "numba", "matplotlib"):
        logging.getLogger(name).setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    try:
        metrics = run_stage(STAGES[args.stage], args)
    except NeurolatentError as exc:
        print(f"neurolatent {args.stage}: error: {exc}", file=sys.stderr)
        return 1
    shown = metrics if len(metrics) <= 12 else f"{len(metrics)} metrics (see the stage's metrics JSON)"
    print(f"{args.stage}: {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
