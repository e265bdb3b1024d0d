"""Thin file I/O shared by stages: atomic outputs, JSON (metrics with NaN as null), .npy."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``final``; on success it replaces ``final``.

    On any error the temporary folder is removed and ``final`` (if it existed) is untouched,
    so a failed stage never leaves a half-written output.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; on success it is renamed onto ``final``."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.tmp-", dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(final)


def write_json(data: object, path: Path) -> None:
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def save_npy(array: np.ndarray, path: Path) -> None:
    with open(path, "wb") as handle:
        np.save(handle, array)


def write_csv(table, path: Path) -> None:
    """A pandas DataFrame as CSV without its index, written atomically."""
    with atomic_file(Path(path)) as temp:
        table.to_csv(temp, index=False)


def finite_or_none(value: Any) -> Any:
    """NaN and infinities become None (JSON's null; MLflow and DVC skip them); anything else as is."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_metrics(metrics: dict[str, Any], path: Path) -> None:
    """A stage's metrics JSON (flat keys, NaN as null), written atomically."""
    with atomic_file(Path(path)) as temp:
        write_json({key: finite_or_none(value) for key, value in metrics.items()}, temp)
