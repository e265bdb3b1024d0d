"""The process's numerics: which CPU code paths and how many threads, and the one device resolver.

Why: the same params must give the same bits (the same ``dvc.lock``) on any x86-64 machine. Left
alone, every numeric library picks its kernels by the CPU it finds and splits work by the cores it
sees, and floating-point sums in another order give other bits (measured here: ATen's AVX2 vs
default kernels, oneDNN on vs off, OpenBLAS's Haswell vs Sandybridge kernels and 1 vs 2 threads
each change a trained autoencoder or an RDM). :func:`pin_numerics` fixes all of them to one
portable choice before numpy, numba or torch are imported:

- ATen (torch's CPU kernels): ``ATEN_CPU_CAPABILITY=avx2``; oneDNN off (its JIT kernels and
  blocking follow the CPU's ISA and cache sizes);
- MKL (torch's matrix products, so every Linear, convolution and attention): its conditional
  numerical reproducibility branch ``COMPATIBLE`` (SSE2 code without approximate reciprocals) and
  ``MKL_DYNAMIC=FALSE``. Not ``AVX2``: MKL honours that branch on Intel CPUs only, and on others
  keeps its own vendor dispatch (``MKL_VERBOSE`` prints ``CNR:AUTO`` there), which differs between
  Intel and AMD and between AMD generations. Measured: with ``AVX2`` the autoencoders' training
  parted from an Intel Xeon's at step 12 (fmri_ae) on an AMD EPYC, and an AMD EPYC made to pass
  MKL's vendor check reproduced that Xeon's every step bit for bit; ``COMPATIBLE`` costs 2.0x a
  large SGEMM and 1.5-1.8x an autoencoder training step (``benchmarks/bench_numerics.py``);
- OpenBLAS (numpy, scipy): ``OPENBLAS_CORETYPE=Haswell``; numpy's own SIMD dispatch capped at
  AVX2 (``NPY_DISABLE_CPU_FEATURES``);
- numba: compiles for ``haswell`` with haswell's own features (``NUMBA_CPU_FEATURES`` empty). The
  CPU name alone is not enough: numba adds the host's features to it, so on an AVX-512 CPU the
  fastmath kernels (the Mantel test's, the renderer's) were vectorised 16 floats wide and summed in
  another order than on an AVX2 CPU;
- threads: ``compute.threads`` for torch, MKL, OpenMP and OpenBLAS alike.

Every x86-64 CPU with AVX2 (Intel since Haswell, 2013; AMD since Zen, 2017) runs these code paths
identically (tests/pipeline/test_numerics.py: each operation under every code path this CPU lets the
libraries select). On a CPU without AVX2 nothing is forced and a warning says bits may differ. GPU
results are never bitwise across devices.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from neurolatent.errors import NeurolatentError

log = logging.getLogger(__name__)

#: numpy dispatch targets above AVX2 (numpy 2.x names; unknown names are ignored by numpy)
NUMPY_ABOVE_AVX2 = "X86_V4 AVX512_ICL AVX512_SPR AVX512F AVX512_SKX AVX512_CLX AVX512_CNL"

#: what a GPU that torch can use leaves on Linux: NVIDIA's kernel driver (CUDA), AMD's (ROCm)
GPU_DRIVERS = (Path("/proc/driver/nvidia"), Path("/dev/kfd"))


def cpu_has_avx2(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True when the CPU reports AVX2 and FMA (Linux); False when it does not or cannot be read."""
    try:
        flags = next((line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")), "")
    except OSError:
        return False
    words = set(flags.split())
    return {"avx2", "fma"} <= words


def portable_environment(threads: int) -> dict[str, str]:
    """The environment variables :func:`pin_numerics` sets (portable choice, ``threads`` threads)."""
    threads_text = str(threads)
    return {
        "ATEN_CPU_CAPABILITY": "avx2",
        "MKL_CBWR": "COMPATIBLE",
        "MKL_DYNAMIC": "FALSE",
        "OPENBLAS_CORETYPE": "Haswell",
        "NPY_DISABLE_CPU_FEATURES": NUMPY_ABOVE_AVX2,
        "NUMBA_CPU_NAME": "haswell",
        "NUMBA_CPU_FEATURES": "",
        "OMP_NUM_THREADS": threads_text,
        "MKL_NUM_THREADS": threads_text,
        "OPENBLAS_NUM_THREADS": threads_text,
        "NUMBA_NUM_THREADS": threads_text,
    }


def pin_numerics(threads: int, portable: bool = True) -> bool:
    """Fix the CPU code paths and thread counts of this process (and of the processes it starts).

    Works only before numpy, numba or torch are imported: their choices are made when they load.
    The ``neurolatent`` command calls it first thing; a Python caller that has already imported
    them (a notebook, the tests calling ``cli.main``) keeps its own numerics, and False is returned.
    With ``portable=False`` only the thread counts are fixed and each library picks the fastest
    kernels for this CPU (faster, not bitwise portable).
    """
    loaded = [name for name in ("numpy", "torch", "numba") if name in sys.modules]
    if loaded:
        log.debug("numerics not pinned: %s already imported by the caller", ", ".join(loaded))
        return False
    environment = portable_environment(threads)
    if not portable:
        environment = {key: value for key, value in environment.items() if key.endswith("_THREADS")}
    elif not cpu_has_avx2():
        log.warning("compute.portable: this CPU has no AVX2: its results will not be bitwise equal to other machines'")
        environment = {key: value for key, value in environment.items() if key.endswith("_THREADS")}
    os.environ.update(environment)
    os.environ["NEUROLATENT_PORTABLE"] = "1" if "ATEN_CPU_CAPABILITY" in environment else "0"
    limit_blas_threads(threads)
    return True


def limit_blas_threads(threads: int) -> None:
    """Give every OpenBLAS this process loads (numpy's and scipy's wheels each bring their own)
    exactly ``threads`` threads.

    ``OPENBLAS_NUM_THREADS`` is not enough: OpenBLAS caps its team at the cores the process may
    run on (its affinity), so on a one-core machine, container or batch job it computes with one
    thread, and its matrix products and eigendecompositions then split and round differently
    (measured: rsa's and stitch's outputs changed under ``taskset -c 0``). Loads numpy and
    scipy.linalg to reach their libraries.
    """
    import numpy  # noqa: F401  (loads numpy's OpenBLAS)
    import scipy.linalg  # noqa: F401  (loads scipy's)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads, user_api="blas")


def configure_torch(threads: int) -> None:
    """The torch settings that are not environment variables: thread count, oneDNN (off when the
    process is pinned), deterministic algorithms. Called by every stage that runs torch."""
    import torch

    torch.set_num_threads(threads)
    if os.environ.get("NEUROLATENT_PORTABLE") == "1":
        torch.backends.mkldnn.enabled = False
    torch.use_deterministic_algorithms(True, warn_only=True)


def torch_device(choice: str, threads: int) -> str:
    """What a stage that runs torch calls first: :func:`configure_torch`, then the device of
    ``compute.device`` (``cpu`` or ``cuda``)."""
    configure_torch(threads)
    return resolve_device(choice)


def kernel_device(choice: str, threads: int, drivers: tuple[Path, ...] = GPU_DRIVERS) -> str:
    """:func:`torch_device` for a stage whose CPU path runs no torch (rsa's numba permutation
    kernels): ``cpu`` without loading torch (~200 MB of the stage's memory) when ``compute.device``
    is ``cpu``, or ``auto`` on a machine without a GPU driver (``drivers``: none exists), where torch
    could see no device either."""
    if choice == "cpu" or (choice == "auto" and not any(path.exists() for path in drivers)):
        return "cpu"
    return torch_device(choice, threads)


def resolve_device(choice: str) -> str:
    """``cpu`` or ``cuda`` from a ``compute.device`` value (``auto``: CUDA when torch sees one)."""
    if choice == "cpu":
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if choice == "cuda":
        raise NeurolatentError("compute.device: cuda was asked for, but torch sees no CUDA device")
    return "cpu"


#: the variables that choose numeric kernels when a library loads (:func:`pin_numerics`)
KERNEL_VARIABLES = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "MKL_DYNAMIC", "OPENBLAS_CORETYPE", "NPY_DISABLE_CPU_FEATURES",
                    "NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES")
