"""Stage ``dataset``: ``data/raw/bold5000`` in BOLD5000's layout, synthetic (with its planted truth in
``data/raw/truth``) or a linked subset of a real copy, by ``data.source``."""

from __future__ import annotations

from types import SimpleNamespace

from neurolatent.io.dataset import write_dataset


def run(params: SimpleNamespace, paths: SimpleNamespace) -> dict:
    counts = write_dataset(params.data, paths.raw, paths.truth, params.compute.scheduler, params.compute.dask_address)
    return {f"dataset.{name}": value for name, value in counts.items()}
