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
import psutil


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove_stale(final: Path) -> None:
    """Remove the temporary siblings of ``final`` left by a process that was killed (its pid is
    in their names and no longer runs): at full size a dead ``fmri`` leaves tens of GB."""
    for stale in final.parent.glob(f".{final.name}.tmp-*"):
        pid = stale.name.removeprefix(f".{final.name}.tmp-").split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        if _running(int(pid)):
            continue
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    """Whether process ``pid`` runs (any user's). A zombie does not: a killed stage's process stays
    one where its parent has exited and init never reaps (containers, CI VMs)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``final``; on success it replaces ``final``.

    On any error (or SIGINT / SIGTERM, which the CLI turns into KeyboardInterrupt) the temporary
    folder is removed and ``final`` (if it existed) is untouched, so a failed stage never leaves a
    half-written output; what a killed process left is removed by the next one. The folder gets
    the permissions of the user's umask (``mkdtemp`` would make it private).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-{os.getpid()}-", dir=final.parent))
    tmp.chmod(0o777 & ~_umask())
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = final.with_name(f".{final.name}.tmp-{os.getpid()}-old")
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; on success it is renamed onto ``final`` with the
    permissions of the user's umask (``mkstemp`` would make it private)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(final)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.tmp-{os.getpid()}-", dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.chmod(0o666 & ~_umask())
    tmp.replace(final)


def allocate_npy(path: Path, dtype: np.dtype, shape: tuple[int, ...]) -> None:
    """Create the ``.npy`` file ``path`` of zeros with its disk blocks allocated now: with a full
    disk this raises OSError 28 here, naming the file, where a memmap writing into the holes of a
    sparse file later would die of SIGBUS without a word."""
    try:
        np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape).flush()
        with open(path, "r+b") as handle:
            os.posix_fallocate(handle.fileno(), 0, os.fstat(handle.fileno()).st_size)
    except OSError as exc:  # numpy's and posix_fallocate's errors name no file
        raise OSError(exc.errno, exc.strerror, str(path)) from None


def write_json(data: object, path: Path) -> None:
    """``data`` as JSON at ``path``: keys sorted, indented, a final newline (the same bytes for the same data)."""
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def save_npy(array: np.ndarray, path: Path) -> None:
    """``array`` as a ``.npy`` file at ``path`` (numpy's format, no pickle)."""
    with open(path, "wb") as handle:
        np.save(handle, array)


def write_npz(arrays: dict[str, np.ndarray], path: Path) -> None:
    """Write ``arrays`` as a compressed ``.npz`` (``np.load`` reads it) whose bytes depend on the
    arrays only. numpy's ``savez_compressed`` streams each member with zip64 forced, and Python's
    zipfile writes those headers differently across patch releases (3.11.2 and 3.11.7 gave two
    files for one array: seen in ``neurolatent verify`` on a fresh clone); each member here is
    written whole, with a fixed time stamp and no zip64 (every member is far below 4 GB)."""
    import io
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, allowZip64=False) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asanyarray(array), allow_pickle=False)
            member = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = 0o600 << 16
            archive.writestr(member, buffer.getvalue())


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
