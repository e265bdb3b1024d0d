"""Stage ``trials``: every task-5000scenes events file, parsed and checked, as two tables.

``trials.parquet`` has one row per trial, with the run the configuration reads (``preprocess.space``;
none for ``preprocess.method: glmsingle``); ``stimuli.parquet`` one row per unique image in the
canonical order (sorted image name) that every per-stimulus matrix downstream follows. Both are
written only after every check passed (:func:`neurolatent.io.events.build_tables`).
"""

from __future__ import annotations

from types import SimpleNamespace

from neurolatent.io.events import build_tables
from neurolatent.io.files import atomic_file
from neurolatent.pipeline.progress import progress


def run(params: SimpleNamespace, paths: SimpleNamespace) -> dict:
    """The stage on its declared ``params`` and ``paths`` (the registry's files); returns its metrics."""
    trials, stimuli = build_tables(paths.raw, params.preprocess.space, params.preprocess.method, progress)
    with atomic_file(paths.trials) as tmp_trials, atomic_file(paths.stimuli) as tmp_stimuli:
        trials.to_parquet(tmp_trials, index=False)
        stimuli.to_parquet(tmp_stimuli, index=False)
    return {"trials.trials": len(trials), "trials.images": len(stimuli),
            "trials.subjects": int(trials["subject"].nunique()),
            "trials.runs": int(trials.groupby(["subject", "session", "run"]).ngroups)}
