"""The per-run work on a Dask cluster (parallel.parallel_map, compute.scheduler): a stage's outputs
are the bytes the local processes write; DASK_SCHEDULER_ADDRESS selects the cluster; a worker that
would compute other bits, or that dies, is one NeurolatentError line."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from neurolatent.errors import NeurolatentError
from neurolatent.pipeline.parallel import parallel_map

from conftest import run_stage

distributed = pytest.importorskip("distributed")  # a runtime dependency: skipped only where it is missing

#: one subject, two runs, 4 mm: the dataset stage's per-run work, small
DATA = {"subjects": ["CSI1"], "sessions": [1], "runs": [1, 7],
        "synthetic": {"voxel_size_mm": 4, "image_size": 64, "jobs": 2}}


def _restore(saved: dict[str, str]) -> None:
    """Undo what a Nanny wrote into this process's environment (its workers' pre-spawn variables:
    OMP_NUM_THREADS=1 and others, set here before each worker starts)."""
    for name in set(os.environ) - set(saved):
        del os.environ[name]
    os.environ.update(saved)


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of two worker processes (one thread each) and a client of the test's own.
    allowed-failures 0: the first worker death fails the task (KilledWorker) instead of three retries."""
    import dask

    saved = dict(os.environ)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        local = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    _restore(saved)
    client = distributed.Client(local)
    yield local, client
    client.close()
    local.close()
    _restore(saved)


def _files(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def written(cluster, tmp_path_factory):
    """The dataset stage's outputs written by local processes (data.synthetic.jobs: 2, loky) and by
    the cluster (compute.scheduler: dask, its address as compute.dask_address), and trials."""
    local, _ = cluster
    root = tmp_path_factory.mktemp("dask")
    for where, compute in (("local", {"scheduler": "local"}),
                           ("dask", {"scheduler": "dask", "dask_address": local.scheduler_address})):
        run_stage("dataset", {"data": DATA, "compute": compute}, raw=root / where / "raw", truth=root / where / "truth")
    run_stage("trials", raw=root / "local" / "raw", trials=root / "trials.parquet", stimuli=root / "stimuli.parquet")
    return root


def test_the_dataset_stage_on_a_cluster_writes_the_local_bytes(written):
    local, remote = _files(written / "local"), _files(written / "dask")
    assert sum(name.endswith(("_bold.nii.gz", "_preproc.nii.gz")) for name in local) == 4  # 2 runs, raw and T1w
    assert local.keys() == remote.keys()
    assert [name for name in local if local[name] != remote[name]] == []


@pytest.mark.parametrize("method", ["betas", "rendered"])
def test_the_fmri_stage_on_the_cluster_named_by_the_environment_writes_the_local_bytes(
        cluster, written, tmp_path, monkeypatch, method):
    _, client = cluster
    paths = {"raw": written / "local" / "raw", "trials": written / "trials.parquet"}
    preprocess = {"method": method, "jobs": 1}  # local: in this process
    if method == "rendered":
        preprocess["render"] = {"engine": "fast", "size": 32}
    run_stage("fmri", {"preprocess": preprocess}, **paths, out=tmp_path / "local")
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", client.scheduler.address)
    with distributed.get_task_stream(client) as tasks:  # compute.scheduler: auto, the default
        run_stage("fmri", {"preprocess": preprocess}, **paths, out=tmp_path / "dask")
    assert sum("_on_worker" in task["key"] for task in tasks.data) >= 1, "no run went to the cluster"
    local, remote = _files(tmp_path / "local"), _files(tmp_path / "dask")
    assert local.keys() == remote.keys() and "samples.npy" in local
    assert [name for name in local if local[name] != remote[name]] == []


def _where_and_threads(item: int) -> tuple[int, int]:
    """This process's id and its BLAS threads (what parallel_map pinned)."""
    from threadpoolctl import threadpool_info

    return os.getpid(), max(info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas")


def test_the_environment_variable_selects_the_cluster_and_threads_are_pinned(cluster, monkeypatch):
    _, client = cluster
    workers = set(client.run(os.getpid).values())
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", client.scheduler.address)
    on_cluster = parallel_map(_where_and_threads, list(range(4)), 1, threads=2)
    assert {pid for pid, _ in on_cluster} <= workers
    # the workers started with OPENBLAS_NUM_THREADS=1 (Dask's default): compute.threads is set on them
    assert {threads for _, threads in on_cluster} == {2}
    assert parallel_map(_where_and_threads, [0], 1, threads=2, scheduler="local")[0][0] == os.getpid()
    with pytest.raises(NeurolatentError, match="compute.scheduler: dask needs a running scheduler"):
        monkeypatch.delenv("DASK_SCHEDULER_ADDRESS")
        parallel_map(abs, [-1], 1, scheduler="dask")


def test_a_worker_with_other_numerics_is_one_line(cluster, monkeypatch):
    _, client = cluster
    # a kernel choice the workers did not start with: their numpy would run other kernels
    theirs = set(client.run(lambda: os.environ.get("OPENBLAS_CORETYPE")).values())
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Sandybridge" if "Haswell" in theirs else "Haswell")
    with pytest.raises(NeurolatentError) as info:
        parallel_map(abs, [-1, -2], 1, desc="runs", scheduler="dask", address=client.scheduler.address)
    message = str(info.value)
    assert "would not compute the same bits" in message and "OPENBLAS_CORETYPE" in message and "\n" not in message


def test_no_scheduler_at_the_address_is_one_line(monkeypatch):
    monkeypatch.setattr("neurolatent.pipeline.parallel.DASK_CONNECT_S", 1)
    with pytest.raises(NeurolatentError, match=r"^runs: no Dask scheduler answers at tcp://127\.0\.0\.1:9 "):
        parallel_map(abs, [-1], 1, desc="runs", address="tcp://127.0.0.1:9")


def _die_on_three(item: int) -> int:
    if item == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return item


def test_a_worker_death_is_one_line(cluster):
    """Last: the nanny restarts the killed worker."""
    _, client = cluster
    with pytest.raises(NeurolatentError) as info:
        parallel_map(_die_on_three, list(range(6)), 2, desc="runs", unit="run", address=client.scheduler.address)
    message = str(info.value)
    assert message.startswith("runs: Dask workers died running a run after ") and "\n" not in message


@pytest.fixture(scope="module")
def embedded(written, tmp_path_factory):
    """The fmri stage's samples and the pixels model of the written dataset: the folder holding
    fmri/ and images/."""
    root = tmp_path_factory.mktemp("embedded")
    run_stage("fmri", {"preprocess": {"jobs": 1}}, raw=written / "local" / "raw", trials=written / "trials.parquet",
              out=root / "fmri")
    run_stage("embed_images", {"embed": {"image_models": ["pixels"]}}, stimuli=written / "stimuli.parquet",
              raw=written / "local" / "raw", out=root / "images")
    return root


def test_rsa_permutation_chunks_on_the_cluster_give_the_local_bytes(cluster, written, embedded, tmp_path):
    """compute.scheduler: dask sends rsa's permutation chunks to the workers (each comparison's
    prepared matrices scattered once); metrics, tables and RDMs are the local run's bytes."""
    local_cluster, client = cluster
    paths = {"raw": written / "local" / "raw", "trials": written / "trials.parquet"}
    rsa = {"fit_permutations": 300, "bootstrap": 50, "cka_permutations": 10, "fmri": ["samples"]}
    for where, compute in (("local", {"scheduler": "local"}),
                           ("dask", {"scheduler": "dask", "dask_address": local_cluster.scheduler_address})):
        with distributed.get_task_stream(client) as tasks:
            run_stage("rsa", {"rsa": rsa, "compute": compute}, samples=embedded / "fmri", trials=paths["trials"],
                      stimuli=written / "stimuli.parquet", images=embedded / "images", truth=written / "local" / "truth",
                      rdms=tmp_path / where / "rdms", metrics=tmp_path / where / "rsa.json",
                      plots=tmp_path / where / "plots")
        chunks = sum("_on_worker" in task["key"] for task in tasks.data)
        assert chunks == (0 if where == "local" else 3 * 6), chunks  # 3 chunks of 128 for 6 regions
    assert (tmp_path / "local" / "rsa.json").read_bytes() == (tmp_path / "dask" / "rsa.json").read_bytes()
    for folder in ("rdms", "plots"):
        local, remote = _files(tmp_path / "local" / folder), _files(tmp_path / "dask" / folder)
        names = [name for name in local if name.endswith((".csv", ".npz", ".npy", ".json"))]
        assert names and [name for name in names if local[name] != remote.get(name)] == []


def test_encode_fits_on_the_cluster_give_the_local_bytes(cluster, written, embedded, tmp_path):
    """compute.scheduler: dask sends encode's fits (one per subject and partition) to the workers;
    metrics, table and per-voxel arrays are the local run's bytes."""
    local_cluster, client = cluster
    for where, compute in (("local", {"scheduler": "local"}),
                           ("dask", {"scheduler": "dask", "dask_address": local_cluster.scheduler_address})):
        with distributed.get_task_stream(client) as tasks:
            run_stage("encode", {"encode": {"bootstrap": 50, "search": 3, "noise_features": 8}, "compute": compute},
                      samples=embedded / "fmri", trials=written / "trials.parquet", stimuli=written / "stimuli.parquet",
                      raw=written / "local" / "raw", images=embedded / "images", truth=written / "local" / "truth",
                      out=tmp_path / where / "encoding", metrics=tmp_path / where / "encode.json",
                      plots=tmp_path / where / "plots")
        fits = sum("_on_worker" in task["key"] for task in tasks.data)
        assert fits == (0 if where == "local" else 2), fits  # CSI1's models and planted partitions
    assert (tmp_path / "local" / "encode.json").read_bytes() == (tmp_path / "dask" / "encode.json").read_bytes()
    for folder in ("encoding", "plots"):
        local, remote = _files(tmp_path / "local" / folder), _files(tmp_path / "dask" / folder)
        names = [name for name in local if name.endswith((".csv", ".npz"))]
        assert names and [name for name in names if local[name] != remote.get(name)] == []
