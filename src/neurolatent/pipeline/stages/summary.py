"""Stage ``summary``: the run's headline, ``metrics/summary.json`` (:func:`neurolatent.pipeline.outputs.summaries.headline`),
the one metrics file ``dvc exp show`` reads, also logged on the pipeline's parent MLflow run. The stages' detailed metrics JSON files stay beside it.
Its keys are short (``ae.r``, ``2way``): DVC shows them as column headers."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from neurolatent.pipeline import tracking
from neurolatent.errors import NeurolatentError
from neurolatent.pipeline.outputs.summaries import headline
from neurolatent.io.files import write_metrics


def run(params: SimpleNamespace, paths: SimpleNamespace) -> dict:
    """The stage on its declared ``params`` and ``paths`` (the registry's files); returns its metrics."""
    details: dict = {}
    for path in (paths.fmri_ae, paths.image_ae, paths.rsa, paths.stitch):
        try:
            details.update(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as exc:
            raise NeurolatentError(f"{path}: cannot read the stage's metrics ({exc})") from None
    numbers = headline(details)
    # unprefixed in the file (they are dvc exp show's column headers); MLflow gets <stage>.<name>
    write_metrics(numbers, paths.metrics)
    tracking.log_pipeline_metrics(numbers)
    return {f"summary.{key}": value for key, value in numbers.items()}
