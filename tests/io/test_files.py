"""neurolatent.io.files: outputs appear whole or not at all, with the user's permissions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest

from neurolatent.io.files import allocate_npy, atomic_dir, atomic_file, finite_or_none, write_metrics


def test_a_folder_replaces_the_old_one_only_when_written_whole(tmp_path):
    final = tmp_path / "out"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(final) as temp:
            (temp / "new.txt").write_text("half")
            raise RuntimeError("stopped")
    assert sorted(p.name for p in final.iterdir()) == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary sibling left
    with atomic_dir(final) as temp:
        (temp / "new.txt").write_text("whole")
    assert sorted(p.name for p in final.iterdir()) == ["new.txt"]


def test_a_file_gets_the_umask_permissions_and_a_killed_writers_leftover_goes(tmp_path):
    dead = tmp_path / ".metrics.json.tmp-999999999-x"  # a pid that does not run
    dead.write_text("{}")
    old = os.umask(0o027)
    try:
        with atomic_file(tmp_path / "metrics.json") as temp:
            temp.write_text("{}")
    finally:
        os.umask(old)
    assert oct((tmp_path / "metrics.json").stat().st_mode & 0o777) == oct(0o640)
    assert not dead.exists()


def test_a_zombie_writers_leftover_goes_and_a_live_writers_stays(tmp_path):
    """A killed writer whose parent never reaps it stays a zombie (init in containers and CI VMs):
    its pid still answers a signal 0, yet it writes nothing more."""
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    while psutil.Process(zombie.pid).status() != psutil.STATUS_ZOMBIE:
        time.sleep(0.05)
    left = tmp_path / f".metrics.json.tmp-{zombie.pid}-x"
    live = tmp_path / f".metrics.json.tmp-{os.getppid()}-x"  # pytest's parent: runs
    left.write_text("{}")
    live.write_text("{}")
    try:
        with atomic_file(tmp_path / "metrics.json") as temp:
            temp.write_text("{}")
    finally:
        zombie.wait()
    assert not left.exists() and live.exists()


def test_metrics_keep_every_digit_and_nan_becomes_null(tmp_path):
    write_metrics({"rsa.p": 1 / 10001, "rsa.nc": float("nan")}, tmp_path / "m.json")
    assert json.loads((tmp_path / "m.json").read_text()) == {"rsa.nc": None, "rsa.p": 1 / 10001}
    assert finite_or_none(float("inf")) is None and finite_or_none(3) == 3


def test_an_allocated_npy_is_zeros_of_its_shape(tmp_path):
    allocate_npy(tmp_path / "s.npy", np.float32, (4, 3))
    array = np.load(tmp_path / "s.npy")
    assert array.shape == (4, 3) and array.dtype == np.float32 and not array.any()


def test_write_npz_writes_bytes_no_python_release_changes(tmp_path):
    """Members written whole with a fixed time stamp and no zip64: Python 3.11.2 and 3.11.7 wrote
    numpy's savez_compressed (zip64 forced, streamed) with different headers for the same arrays."""
    import struct
    import zipfile

    import numpy as np

    from neurolatent.io.files import write_npz

    arrays = {"models/r2/pixels": np.arange(5, dtype=np.float32), "planted/penalty/a+b": np.eye(2)}
    write_npz(arrays, tmp_path / "a.npz")
    data = (tmp_path / "a.npz").read_bytes()
    # the first local header: signature, version needed 2.0 (no zip64), time stamp 1980-01-01 00:00
    signature, version, _, _, mod_time, mod_date = struct.unpack("<IHHHHH", data[:14])
    assert (signature, version, mod_time, mod_date) == (0x04034B50, 20, 0, (0 << 9) | (1 << 5) | 1)
    with zipfile.ZipFile(tmp_path / "a.npz") as archive:
        assert all(info.extra == b"" for info in archive.infolist())
    loaded = np.load(tmp_path / "a.npz")
    assert sorted(loaded.files) == sorted(arrays)
    assert all(np.array_equal(loaded[name], value) for name, value in arrays.items())
    write_npz(arrays, tmp_path / "b.npz")
    assert (tmp_path / "b.npz").read_bytes() == data
