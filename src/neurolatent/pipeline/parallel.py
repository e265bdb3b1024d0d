"""Where a stage's per-run work runs: local worker processes (joblib's loky) or a Dask cluster,
each computing exactly as this process would (the same kernels, library versions, code and
thread counts: :mod:`neurolatent.pipeline.numerics`)."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import sys
from pathlib import Path

from neurolatent.errors import NeurolatentError
from neurolatent.pipeline.numerics import KERNEL_VARIABLES, limit_blas_threads, portable_environment
from neurolatent.pipeline.progress import progress

log = logging.getLogger(__name__)


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
    package = Path(__file__).resolve().parent.parent  # the neurolatent package
    return {str(path): hashlib.sha1((package / path).read_bytes()).hexdigest() for path in paths}


@functools.cache
def _code_at_start() -> dict[str, str]:
    """On a Dask worker: the package's source as it was when this process first ran a task (the
    code it has loaded; a later edit on disk does not reach it)."""
    package = Path(__file__).resolve().parent.parent  # the neurolatent package
    return _code([path.relative_to(package) for path in sorted(package.rglob("*.py"))])


def _numerics(function) -> dict[str, str | None]:
    """What makes two processes compute ``function`` to the same bits: the kernel variables, the
    numeric libraries' versions, the source of the neurolatent code it runs."""
    found = {name: os.environ.get(name) for name in KERNEL_VARIABLES} | _versions()
    module = getattr(function, "func", function).__module__ or ""
    if module.startswith("neurolatent."):
        from neurolatent.pipeline.source import SOURCE_ROOT, import_closure

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
            "environment and checkout, with numerics.portable_environment's variables when compute.portable "
            "is true, and restart them after a code change (docs/gpu-dask.md, \"A Dask cluster\")")
    # a Dask worker started with other counts: what processes it starts see these
    os.environ.update({name: str(threads) for name in portable_environment(threads) if name.endswith("_THREADS")})
    return _with_threads(function, threads, item)


def _with_threads(function, threads: int, item):
    """``function(item)`` with ``threads`` threads for BLAS (whatever this worker's affinity: see
    :func:`limit_blas_threads`), OpenMP, numba and torch, in a local or Dask worker (or, with one
    job, in this process)."""
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
