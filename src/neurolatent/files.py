"""Thin file I/O shared by stages: atomic outputs, deterministic gzip NIfTI, JSON."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import nibabel as nib
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


def write_nifti_gz(image: nib.Nifti1Image, path: Path, compresslevel: int = 1) -> None:
    """Write a ``.nii.gz`` whose bytes depend only on the image (gzip mtime 0, no file name)."""
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                                                compresslevel=compresslevel) as gz:
        image.to_file_map({"image": nib.FileHolder(fileobj=gz)})


def write_json(data: object, path: Path) -> None:
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def save_npy(array: np.ndarray, path: Path) -> None:
    with open(path, "wb") as handle:
        np.save(handle, array)
