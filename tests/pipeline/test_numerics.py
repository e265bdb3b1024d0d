"""Same params, same bits on another CPU: every kind of CPU computation, under every code path this
CPU lets the numeric libraries select.

Each run is a fresh process (tests/pipeline/numerics_probe.py) that plays a machine, then pins its numerics
as the ``neurolatent`` command does (``compute.portable: true``) and computes each operation the
stages run on the CPU (the autoencoders' training steps, the ViT's forward pass, rsa's and stitch's
BLAS and LAPACK work, the numba kernels) with its inputs at several offsets from alignment. The
machines are what the libraries can be made to see on this one CPU:

- this CPU as it is;
- an Intel CPU: MKL picks its code branch by vendor (it honours ``MKL_CBWR=AVX2`` on Intel CPUs
  only, and on AMD ones takes a dispatch of its own that differs between AMD generations). A
  library preloaded ahead of torch's MKL answers its vendor check with "Intel". That this plays a
  real Intel CPU was checked against a step-by-step recording of both autoencoders' training on an
  Intel Xeon (AVX-512, AMX): with the pins of that time, every one of the 198 fmri_ae steps and all
  image_ae steps matched it bit for bit here;
- an Intel Haswell with one core: MKL limited to AVX2, numba told the host has no AVX-512
  (llvmlite's host CPU name and features), torch and numpy as they choose without AVX-512, and the
  process confined to one core (OpenMP, MKL and OpenBLAS size their work by the cores they find), and
  OpenBLAS told of another L2 cache size (some of its kernels block by it).

Pinned, every operation gives the same bits on all three and at every alignment. Unpinned
(``compute.portable: false``) the autoencoders and the ViT part by vendor and the Mantel kernel by
the host's vector width, so the test would fail if the pins left a CPU-dependent path open.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from neurolatent.pipeline.numerics import NUMPY_ABOVE_AVX2

PROBE = Path(__file__).with_name("numerics_probe.py")
#: the functions MKL asks whether the CPU is an Intel one
FAKE_INTEL = "int mkl_serv_intel_cpu_true(void) { return 1; }\nint mkl_serv_intel_cpu(void) { return 1; }\n"


@pytest.fixture(scope="module")
def machines(tmp_path_factory) -> dict[str, tuple[dict, dict]]:
    """name -> (environment, probe settings) of each machine this CPU can play."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build the library that makes MKL see an Intel CPU")
    where = tmp_path_factory.mktemp("fake-intel")
    (where / "fake_intel.c").write_text(FAKE_INTEL)
    subprocess.run([compiler, "-shared", "-fPIC", "-o", str(where / "libfakeintel.so"), str(where / "fake_intel.c")],
                   check=True)
    intel = {"LD_PRELOAD": str(where / "libfakeintel.so")}
    return {
        "this CPU": ({}, {}),
        "an Intel CPU": (intel, {}),
        # OPENBLAS_THREAD_TIMEOUT: OpenBLAS's two threads then sleep soon instead of spinning on the
        # one core (10x faster here; it schedules, it does not compute)
        "an Intel Haswell, one core": (intel | {"MKL_ENABLE_INSTRUCTIONS": "AVX2", "ATEN_CPU_CAPABILITY": "avx2",
                                                "NPY_DISABLE_CPU_FEATURES": NUMPY_ABOVE_AVX2,
                                                "OPENBLAS_THREAD_TIMEOUT": "4", "OPENBLAS_L2_SIZE": "256"},
                                       {"numba_host": "haswell", "one_core": True}),
    }


def _probe(machine: tuple[dict, dict], portable: bool, cache: Path) -> dict:
    environment, settings = machine
    inherited = {key: value for key, value in os.environ.items()
                 if not key.startswith(("ATEN_", "MKL_", "OPENBLAS_", "OMP_", "NUMBA_", "NPY_", "LD_PRELOAD"))}
    cache.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([sys.executable, str(PROBE), json.dumps({"portable": portable, **settings})],
                            env=inherited | environment | {"NUMBA_CACHE_DIR": str(cache)},
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def digests(machines, tmp_path_factory) -> dict[tuple[str, bool], dict]:
    cache = tmp_path_factory.mktemp("numba-cache")
    here, _, haswell = machines
    # this CPU first, pinned and not: they compile the kernels the pinned machines then share (numba's
    # cache is keyed by the target, which the pins fix); the unpinned Intel adds nothing to the control
    runs = [(here, True), (here, False), *((name, True) for name in list(machines)[1:]), (haswell, False)]
    with ThreadPoolExecutor(2) as pool:
        found = pool.map(lambda run: _probe(machines[run[0]], run[1], cache / f"portable-{run[1]}"), runs)
        return dict(zip(runs, found))


@pytest.mark.slow
def test_pinned_every_operation_gives_the_same_bits_on_every_machine(machines, digests):
    pinned = {name: digests[name, True] for name in machines}
    first = next(iter(pinned.values()))
    assert len(first) > 10
    for name, found in pinned.items():
        assert found["alignment-dependent"] == [], name
        differ = [operation for operation in first if found[operation] != first[operation]]
        assert differ == [], f"{name}: {differ}"


def test_unpinned_the_machines_part_where_the_pins_act(machines, digests):
    """The negative control: without the pins the same runs differ, for each library the pins fix.
    (Compared with the Haswell, which any x86-64 CPU this runs on differs from: another vendor, or
    another ISA for MKL; the numba kernel only where this CPU has wider vectors than AVX2.)"""
    here, haswell = (digests[name, False] for name in (list(machines)[0], list(machines)[2]))
    for operation in ("mlp autoencoder: 3 Adam steps", "conv2d autoencoder: 3 Adam steps",
                      "vit forward, every hidden state"):
        assert here[operation] != haswell[operation], operation
    if "avx512f" in Path("/proc/cpuinfo").read_text():
        assert here["mantel kernel (numba, fastmath)"] != haswell["mantel kernel (numba, fastmath)"]
