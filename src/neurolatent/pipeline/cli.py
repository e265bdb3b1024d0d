"""The ``neurolatent`` command: one subcommand per pipeline stage, built from the stage registry.

dvc.yaml runs these; each can also be run alone (``neurolatent <stage> --help`` lists its files and
the params it reads). A run is: validate params.yaml, pin the process's numerics, open the stage's
MLflow run (logging the params it reads), run the stage, log its metrics, print one closing line.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

from neurolatent import __version__
from neurolatent.errors import NeurolatentError
from neurolatent.pipeline.params_docs import explain
from neurolatent.pipeline.process import handle_signals, interrupt_caught
from neurolatent.pipeline.registry import STAGES, Stage, declared_values, missing_inputs, select_params

log = logging.getLogger("neurolatent")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown; the epilog (the params a stage reads, one paragraph each) kept as written."""


def _stage_parser(sub, stage: Stage) -> None:
    reads = ", ".join(stage.params) if stage.params else "none"
    explained = "\n".join(textwrap.fill(line, 100, subsequent_indent="    ", break_on_hyphens=False) for line in explain(stage.params))
    parser = sub.add_parser(stage.name, help=stage.help, description=f"{stage.help} Params read: {reads}.",
                            formatter_class=_HelpFormatter,
                            epilog=f"params.yaml keys it reads (docs/params.md has them all):\n{explained}"
                            if explained else None)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file")
    for file in stage.files:
        role = {"in": "input", "work": "scratch"}.get(file.kind, "output")
        parser.add_argument(f"--{file.name.replace('_', '-')}", dest=file.name, type=Path, default=Path(file.path),
                            help=f"{role}: {file.help}")


def build_parser() -> argparse.ArgumentParser:
    """The ``neurolatent`` command's parser: a subcommand per stage (from the registry), ``sweep``,
    ``experiment``, ``verify``, ``show`` and ``report``."""
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
    sweep = sub.add_parser("sweep", help="Queue and run a sweep of configurations x planted SNR x seeds as DVC "
                           "experiments, then write its report.", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sweep.add_argument("--name", default="compare", help="the sweep's name: experiments are <name>-<config>-snr<s>-seed<k>")
    sweep.add_argument("--config", action="append", dest="configs", metavar="NAME=FILE[+FILE]", required=True,
                       help="a configuration and its params files (applied in order), e.g. study=configs/study.yaml")
    sweep.add_argument("--override", action="append", type=Path, default=[],
                       help="params files applied after each configuration (the sweep's scale)")
    sweep.add_argument("--snr", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0, 2.0])
    sweep.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    sweep.add_argument("--jobs", type=int, default=1, help="experiments run at once (dvc queue start -j)")
    sweep.add_argument("--out", type=Path, default=Path("reports/compare"), help="the report's folder")
    sweep.add_argument("--table-snr", type=float, default=1.0, help="the SNR of the report's table")
    experiment = sub.add_parser("experiment", help="Run one named DVC experiment from configuration files "
                                "(dvc exp run -n NAME -S ... for every key of the files, then the extra -S).")
    experiment.add_argument("name")
    experiment.add_argument("files", type=Path, nargs="+", help="configuration files, applied in order")
    experiment.add_argument("-S", "--set-param", dest="extra", action="append", default=[],
                            help="a further key=value, as dvc exp run -S")
    verify = sub.add_parser("verify", help="Check that the last run reproduced the committed outputs: the first "
                            "stage whose outputs differ from dvc.lock as committed with the same inputs, and by how "
                            "much (make repro and CI run it after dvc repro).",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    verify.add_argument("--against", default="HEAD", help="the git revision whose dvc.lock is the reference")
    show = sub.add_parser("show", help="Print a stage's metrics (metrics/<stage>.json) as tables: a row per "
                          "comparison, a column per statistic.", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    show.add_argument("name", metavar="STAGE", choices=[s.name for s in STAGES.values() if any(
        f.kind in ("detail", "metrics") for f in s.files)], help="the stage whose metrics to show")
    show.add_argument("--contains", help="only the metrics whose name contains this text (e.g. EarlyVis)")
    report = sub.add_parser("report", help="Write the comparison report of a sweep's experiments (from dvc exp show "
                            "and each experiment's metrics files) and log it to the sweep's MLflow run.",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    report.add_argument("--name", default="compare", help="the sweep's name")
    report.add_argument("--out", type=Path, default=Path("reports/compare"))
    report.add_argument("--table-snr", type=float, default=1.0, help="the SNR of the report's table (the embedded default's)")
    return parser


def _configs(specs: list[str]) -> dict[str, list[Path]]:
    configs = {}
    for spec in specs:
        name, _, files = spec.partition("=")
        if not name or not files:
            raise NeurolatentError(f"--config {spec!r}: expected NAME=FILE[+FILE]")
        configs[name] = [Path(f) for f in files.split("+")]
        missing = [f for f in configs[name] if not f.is_file()]
        if missing:
            raise NeurolatentError(f"{missing[0]}: no such configuration file")
    return configs


def run_report(args: argparse.Namespace) -> dict:
    """Collect the sweep's experiments, write the report, log it to the sweep's MLflow run."""
    from neurolatent.pipeline import tracking
    from neurolatent.pipeline.experiments.report import write_report
    from neurolatent.pipeline.experiments.sweep import experiments

    found = experiments(args.name)
    if not found:
        raise NeurolatentError(f"no experiment named {args.name}-* in `dvc exp show` (run `neurolatent sweep` first)")
    notes = []
    if any("untrained_" in key for exp in found for key in exp["metrics"]):
        notes.append("ViT-in21k's checkpoint is not cached on this machine: the untrained tiny ViT "
                     "(`untrained:resources/vit-tiny`) stands in for it.")
    try:
        path = write_report(found, args.out, args.name, args.table_snr, notes=notes)
    except ValueError as exc:
        raise NeurolatentError(f"sweep {args.name}: {exc}") from None
    run_id = tracking.log_sweep_report(args.name, args.out, tracking.tracking_uri(Path.cwd()))
    return {"report": str(path), "experiments": len(found), "mlflow_run": run_id}


def run_stage(stage: Stage, args: argparse.Namespace) -> dict:
    """Validate the params, pin the numerics, run the stage in its MLflow run; return its metrics."""
    from neurolatent.pipeline.params import load_params
    from neurolatent.pipeline.numerics import pin_numerics

    params = load_params(args.params)
    # before the stage module loads numpy, numba or torch: their kernels are chosen on import
    pin_numerics(params.compute.threads, params.compute.portable)
    from neurolatent.pipeline import tracking

    module = importlib.import_module(stage.module)
    paths = SimpleNamespace(**{file.name: getattr(args, file.name) for file in stage.files})
    missing = missing_inputs(stage, vars(paths))
    if missing is not None:
        raise NeurolatentError(f"{stage.name}: {missing}")
    inputs = [getattr(args, f.name) for f in stage.inputs()]
    outputs = [getattr(args, f.name) for f in stage.outputs()]
    with tracking.stage_run(stage.name, declared_values(params, stage.params), inputs, outputs):
        metrics = module.run(select_params(params, stage.params), paths)
        tracking.log_metrics(metrics)
    return metrics


def _closing_line(name: str, metrics: dict) -> str:
    """The one line a run ends with: the stage module's ``closing_line``, else its few numbers."""
    from neurolatent.pipeline.outputs.summaries import summary_line

    stage = STAGES.get(name)
    module = importlib.import_module(stage.module) if stage is not None else None
    return getattr(module, "closing_line", lambda found: summary_line(name, found))(metrics)


def _failure(exc: BaseException) -> tuple[str, int]:
    """The one line (and exit code) for a failure that is not a NeurolatentError."""
    if isinstance(exc, KeyboardInterrupt):
        return f"interrupted ({exc.args[0] if exc.args else 'SIGINT'}); temporary outputs removed", 130
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"error: {where}{exc.strerror or exc} (OSError {exc.errno}); temporary outputs removed", 1
    return "error: out of memory; temporary outputs removed (try fewer compute jobs or a smaller data selection)", 1


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: sys.argv); its exit status: 0, 1 for an error (one
    line on stderr), 130 when interrupted."""
    handle_signals()
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    # the libraries' own INFO lines are not ours to show (MLflow's: see tracking.stage_run)
    for name in ("alembic", "urllib3", "numba", "matplotlib"):
        logging.getLogger(name).setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    try:
        if args.stage == "sweep":
            from neurolatent.pipeline.experiments.sweep import run_sweep

            planned = run_sweep(args.name, _configs(args.configs), args.override, args.snr, args.seeds, args.jobs)
            print(f"sweep: {len(planned)} experiments ran")
            metrics = run_report(args)
        elif args.stage == "experiment":
            from neurolatent.pipeline.experiments.sweep import run_experiment

            return run_experiment(args.name, args.files, args.extra)
        elif args.stage == "report":
            metrics = run_report(args)
        elif args.stage == "show":
            from neurolatent.pipeline.outputs.summaries import metric_tables

            path = Path(next(f.path for f in STAGES[args.name].files if f.kind in ("detail", "metrics")))
            if not path.is_file():
                raise NeurolatentError(f"{path}: missing: the {args.name} stage makes it (run `dvc repro {args.name}`)")
            print(metric_tables(json.loads(path.read_text()), args.name, args.contains))
            return 0
        elif args.stage == "verify":
            from neurolatent.pipeline.reproduction import verify

            line, reproduced = verify(Path.cwd(), args.against)
            print(f"neurolatent verify: {line}", file=sys.stdout if reproduced else sys.stderr)
            return 0 if reproduced else 1
        else:
            metrics = run_stage(STAGES[args.stage], args)
    except NeurolatentError as exc:
        print(f"neurolatent {args.stage}: error: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, OSError, MemoryError) as exc:
        if isinstance(exc, KeyboardInterrupt):
            interrupt_caught(str(exc))
        if args.verbose:
            log.exception("the traceback, as asked for by --verbose")
        line, code = _failure(exc)
        print(f"neurolatent {args.stage}: {line}", file=sys.stderr)
        return code
    print(_closing_line(args.stage, metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
