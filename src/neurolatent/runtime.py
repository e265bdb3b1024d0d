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
identically (tests/test_determinism.py: each operation under every code path this CPU lets the
libraries select). On a CPU without AVX2 nothing is forced and a warning says bits may differ. GPU
results are never bitwise across devices.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import sys
from pathlib import Path

from tqdm import tqdm  # imports no numeric library: safe before pin_numerics

from neurolatent.errors import NeurolatentError

log = logging.getLogger(__name__)

#: numpy dispatch targets above AVX2 (numpy 2.x names; unknown names are ignored by numpy)
NUMPY_ABOVE_AVX2 = "X86_V4 AVX512_ICL AVX512_SPR AVX512F AVX512_SKX AVX512_CLX AVX512_CNL"


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


class _Discard:
    """A stream that keeps nothing: where tqdm's own ``\\r`` and newlines go in a log file."""

    def write(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass


class _LogLines(tqdm):
    """tqdm that writes a log line where it would redraw its bar (so at most every ``mininterval``),
    and one at the end of a bar that is left (``leave``)."""

    def display(self, msg=None, pos=None):
        if self.n and (self.leave or self.n < (self.total or 0)):
            log.info("%s", self.format_meter(**{**self.format_dict, "ncols": 0}))
        return True


def progress(iterable=None, *, total: int | None = None, desc: str = "", unit: str = "it", leave: bool = True) -> tqdm:
    """A progress bar over ``iterable`` (or ``total`` manual updates) that reads well wherever
    stderr goes: tqdm's bar on a terminal (redrawn at most every 2 s); in a log file or under DVC's
    captured output, one time-stamped log line per 30 s and one at the end, with no ``\\r``."""
    if sys.stderr.isatty():
        return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, mininterval=2)
    # miniters=1 and maxinterval=mininterval: tqdm would otherwise print whenever its adaptive
    # step count is reached or its monitor thread wakes (every 10 s), not at most every 30 s
    return _LogLines(iterable, total=total, desc=desc, unit=unit, leave=leave, mininterval=30, maxinterval=30,
                     miniters=1, file=_Discard())


#: the variables that choose numeric kernels when a library loads (:func:`pin_numerics`)
KERNEL_VARIABLES = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "MKL_DYNAMIC", "OPENBLAS_CORETYPE", "NPY_DISABLE_CPU_FEATURES",
                    "NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES")
#: the libraries whose version changes the bits of the per-run work
NUMERIC_LIBRARIES = ("numpy", "scipy", "numba", "torch", "nibabel", "nilearn")
#: seconds to wait for a Dask scheduler to answer, and for its first worker to join (a batch queue)
DASK_CONNECT_S, DASK_WORKERS_S = 30, 600


def scheduler_address(scheduler: str = "auto", address: str | None = None) -> str | None:
    """The Dask scheduler :func:`parallel_map` sends work to, or None for local processes.

    ``compute.scheduler``: ``local``, always local processes; ``dask``, the scheduler at
    ``compute.dask_address`` or else ``DASK_SCHEDULER_ADDRESS`` (Dask's own variable), one of which
    must be set; ``auto``, the same when one is set, local processes when neither is.
    """
    if scheduler == "local":
        return None
    address = address or os.environ.get("DASK_SCHEDULER_ADDRESS") or None
    if scheduler == "dask" and address is None:
        raise NeurolatentError("compute.scheduler: dask needs a running scheduler: set DASK_SCHEDULER_ADDRESS "
                               "(or compute.dask_address) to its address, e.g. tcp://host:8786")
    return address


@functools.cache
def _versions() -> dict[str, str | None]:
    from importlib import metadata

    found: dict[str, str | None] = {}
    for name in NUMERIC_LIBRARIES:
        try:
            found[name] = metadata.version(name).split("+")[0]  # torch's +cpu / +cu126 build: same CPU kernels
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def _code(paths: list[Path]) -> dict[str, str]:
    """SHA-1 of each neurolatent source file (paths relative to the package's folder)."""
    package = Path(__file__).resolve().parent
    return {str(path): hashlib.sha1((package / path).read_bytes()).hexdigest() for path in paths}


@functools.cache
def _code_at_start() -> dict[str, str]:
    """On a Dask worker: the package's source as it was when this process first ran a task (the
    code it has loaded; a later edit on disk does not reach it)."""
    package = Path(__file__).resolve().parent
    return _code([path.relative_to(package) for path in sorted(package.rglob("*.py"))])


def _numerics(function) -> dict[str, str | None]:
    """What makes two processes compute ``function`` to the same bits: the kernel variables, the
    numeric libraries' versions, the source of the neurolatent code it runs."""
    found = {name: os.environ.get(name) for name in KERNEL_VARIABLES} | _versions()
    module = getattr(function, "func", function).__module__ or ""
    if module.startswith("neurolatent."):
        from neurolatent.source import SOURCE_ROOT, import_closure

        found |= _code([path.relative_to(SOURCE_ROOT) for path in import_closure(module)])
    return found


def _on_worker(function, threads: int, numerics: dict[str, str | None], item):
    """``function(item)`` on a Dask worker, as a local worker process would run it: the same
    kernels, library versions and code as the process that sent it (else a NeurolatentError),
    and ``threads`` threads for BLAS, OpenMP, numba and torch."""
    own = {name: os.environ.get(name) for name in KERNEL_VARIABLES} | _versions() | _code_at_start()
    differ = [name for name, value in numerics.items() if own.get(name) != value]
    if differ:
        import socket

        shown = ", ".join(f"its {name} is not this one" if name.endswith(".py")
                          else f"{name}: {own.get(name)!r} there, {numerics[name]!r} here" for name in differ[:3])
        raise NeurolatentError(
            f"the Dask worker on {socket.gethostname()} would not compute the same bits ({shown}"
            f"{f' and {len(differ) - 3} more' if len(differ) > 3 else ''}): start the workers from this "
            "environment and checkout, with runtime.portable_environment's variables when compute.portable "
            "is true, and restart them after a code change (README, \"A Dask cluster\")")
    return _with_threads(function, threads, item)


def _with_threads(function, threads: int, item):
    """``function(item)`` with ``threads`` threads for BLAS (whatever this worker's affinity: see
    :func:`limit_blas_threads`), OpenMP, numba and torch, in a local or Dask worker."""
    os.environ.update({name: str(threads) for name in portable_environment(threads) if name.endswith("_THREADS")})
    from threadpoolctl import threadpool_limits

    limit_blas_threads(threads)
    threadpool_limits(limits=threads)  # kept, not restored: a worker's concurrent tasks all want the same
    if "numba" in sys.modules:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))  # this thread's
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    return function(item)


def parallel_map(function, items: list, jobs: int, threads: int | None = None, desc: str = "",
                 unit: str = "item", scheduler: str = "auto", address: str | None = None) -> list:
    """``[function(item) for item in items]`` on ``jobs`` worker processes (joblib's loky backend),
    or on a Dask cluster, in order, with a progress bar.

    joblib caps each worker's BLAS and OpenMP threads at cores // jobs unless told otherwise, which
    would make results depend on the machine's core count; ``threads`` (default: this process's
    ``OPENBLAS_NUM_THREADS``, i.e. ``compute.threads``) fixes it. ``jobs=1`` runs in this process.

    ``scheduler`` and ``address`` (``compute.scheduler``, ``compute.dask_address``) or
    ``DASK_SCHEDULER_ADDRESS`` send the items to a running Dask scheduler instead
    (:func:`scheduler_address`; :func:`_dask_map`), one task per item over all its workers' threads
    (``jobs`` is ignored): the same bits as local processes, which each task checks first
    (:func:`_on_worker`). The workers must see the paths in ``items`` (a shared file system: pass
    absolute paths).
    """
    from joblib import Parallel, delayed, parallel_config
    from joblib.externals.loky.process_executor import BrokenProcessPool

    if threads is None:
        threads = int(os.environ.get("OPENBLAS_NUM_THREADS", "1"))
    where = scheduler_address(scheduler, address)
    what = desc or "parallel work"
    bar = progress(total=len(items), desc=desc, unit=unit)
    if where is not None:
        results = _dask_map(function, items, threads, where, what, unit, bar)
        bar.close()
        return results
    jobs = max(1, min(jobs, len(items)))
    with parallel_config(backend="loky", n_jobs=jobs, inner_max_num_threads=threads):
        results = []
        try:
            for result in Parallel(return_as="generator")(delayed(_with_threads)(function, threads, item)
                                                          for item in items):
                results.append(result)
                bar.update()
        except BrokenProcessPool as exc:  # loky's TerminatedWorkerError among them: a worker was killed
            cause = str(exc).split("\n")[0]
            raise NeurolatentError(f"{what}: a worker process died after {len(results)} of "
                                   f"{len(items)} {unit}s ({cause}); out of memory? try fewer compute jobs") from None
    bar.close()
    return results


#: the advice that ends each message about dead Dask workers
_GIVE_MEMORY = "out of memory? give the workers more memory each"


def _dask_map(function, items: list, threads: int, address: str, what: str, unit: str, bar) -> list:
    """:func:`parallel_map` on the Dask scheduler at ``address``: ``function`` (with the data bound
    to it) scattered to every worker once, then one task per item, at most two per worker thread
    in flight (a cluster that grows gets more).

    Dask's distributed directly, not joblib's dask backend: joblib 1.6 waits forever when a worker
    dies (the scheduler's KilledWorker reaches a future that Parallel never reads).
    """
    from concurrent.futures import CancelledError

    from distributed import Client, KilledWorker, as_completed
    from distributed.comm import CommClosedError

    numerics = _numerics(function)
    try:
        client = Client(address, timeout=DASK_CONNECT_S, set_as_default=False)
    except (OSError, ValueError) as exc:
        cause = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise NeurolatentError(f"{what}: no Dask scheduler answers at {address} ({cause})") from None
    results: list = [None] * len(items)
    done = 0
    try:
        try:
            client.wait_for_workers(1, timeout=DASK_WORKERS_S)
        except TimeoutError:
            raise NeurolatentError(f"{what}: no worker joined the Dask scheduler at {address} in "
                                   f"{DASK_WORKERS_S} s") from None
        log.info("%s: on the Dask scheduler at %s (%d workers)", what, address, len(client.nthreads()))
        shared = client.scatter(function, broadcast=True, hash=False)
        todo = iter(enumerate(items))
        index_of: dict[str, int] = {}
        running = as_completed(loop=client.loop)

        def submit() -> bool:
            index, item = next(todo, (None, None))
            if index is None:
                return False
            future = client.submit(_on_worker, shared, threads, numerics, item, pure=False)
            index_of[future.key] = index
            running.add(future)
            return True

        while len(index_of) < 2 * max(1, sum(client.nthreads().values())) and submit():
            pass
        for future in running:
            results[index_of.pop(future.key)] = future.result()  # the task's own error is raised here
            done += 1
            bar.update()
            while len(index_of) < 2 * max(1, sum(client.nthreads().values())) and submit():
                pass
    except KilledWorker as exc:  # the scheduler saw allowed-failures + 1 workers die running one task
        raise NeurolatentError(f"{what}: Dask workers died running a {unit} after {done} of {len(items)} {unit}s "
                               f"(the last: {exc.last_worker.address}; see its log); {_GIVE_MEMORY}") from None
    except (CommClosedError, CancelledError) as exc:
        reason = getattr(exc, "reason", "scheduler-connection-lost")
        if reason != "scheduler-connection-lost":
            # a worker died holding a finished task's result or the scattered function, and the
            # scheduler dropped the task ("lost dependencies", "already forgotten"): a death too
            raise NeurolatentError(f"{what}: Dask workers died running a {unit} after {done} of {len(items)} {unit}s "
                                   f"(the scheduler dropped a {unit}: {reason}; see the workers' logs); "
                                   f"{_GIVE_MEMORY}") from None
        raise NeurolatentError(f"{what}: lost the Dask scheduler at {address} after {done} of {len(items)} {unit}s "
                               f"({type(exc).__name__})") from None
    finally:
        client.close()
    return results


#: what DVC runs a stage's command through (``$SHELL -c``, or /bin/sh), which may not exec it
SHELLS = {"sh", "bash", "dash", "zsh", "fish", "ksh"}


def process_stat(pid: int) -> tuple[str, int, str, int]:
    """(state, parent pid, command name, start time in clock ticks since boot) of a Linux process,
    from /proc/<pid>/stat; OSError when it is gone."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    name = stat[stat.index("(") + 1: stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), name, int(fields[19])


def launcher_pid() -> int:
    """The nearest ancestor that is not a shell: under DVC, the dvc process that runs this stage."""
    pid = os.getppid()
    while True:
        _, parent, name, _ = process_stat(pid)
        if name not in SHELLS or parent <= 1:
            return pid
        pid = parent
