"""Shared fixtures: a small real synthetic BOLD5000 (4 mm grid) written once per session, and
:func:`run_stage`, which runs a stage as the CLI does (declared params only) on given paths."""

from __future__ import annotations

import importlib
import os
import shutil
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

if "PYTEST_XDIST_WORKER" in os.environ:
    # one worker a core (make test): a worker's BLAS, OpenMP and numba teams of one thread each, set
    # before any of them loads; two teams of two on two cores spin against each other
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ.setdefault(_name, "1")

from neurolatent.pipeline.params import validate_params
from neurolatent.pipeline.registry import STAGES, select_params

#: the real task-5000scenes events files of CSI1 and CSI2 (BOLD5000, OpenNeuro ds001499), byte-exact
#: (CRLF kept: .gitattributes marks them -text), plus the localizer events beside them
REAL_EVENTS = Path(__file__).resolve().parent / "data" / "bold5000" / "events"


def pytest_collection_modifyitems(items):
    """The modules with the most slow tests first (each module's tests in their own order): with
    --dist loadfile pytest-xdist deals the modules out to its workers in this order, so the long
    ones start at once instead of ending the run on one worker while the other waits."""
    slow = Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[item.path])


@pytest.fixture(scope="session", autouse=True)
def _mlflow_store(tmp_path_factory):
    """Stages log to a throwaway MLflow store, never to the user's project store."""
    store = tmp_path_factory.mktemp("mlflow")
    old = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{store}/mlflow.db"
    yield
    if old is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = old


@pytest.fixture(scope="session", autouse=True)
def _local_processes():
    """The suite's per-run work runs in local processes even where the shell names a Dask scheduler
    (tests/pipeline/test_parallel.py sets it where it wants a cluster)."""
    address = os.environ.pop("DASK_SCHEDULER_ADDRESS", None)
    yield
    if address is not None:
        os.environ["DASK_SCHEDULER_ADDRESS"] = address


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where tests keep what a person should look at (screenshots, figures): ``test-artifacts/`` in
    the repository (git-ignored), or ``$NEUROLATENT_TEST_ARTIFACTS``."""
    folder = Path(os.environ.get("NEUROLATENT_TEST_ARTIFACTS", Path(__file__).resolve().parent.parent / "test-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def small_data_params(**synthetic):
    """CSI1 and CSI4 (one real, one derived schedule), session 1, runs 1 and 7, on a 4 mm grid.

    CSI1 shows one image twice within these runs (COCO_train2014_000000488558.jpg).
    """
    return validate_params({"data": {
        "subjects": ["CSI1", "CSI4"], "sessions": [1], "runs": [1, 7],
        "synthetic": {"voxel_size_mm": 4, "image_size": 64, "jobs": 1, **synthetic},
    }}).data


def write_dataset(data, raw: Path, truth: Path) -> dict:
    """The dataset stage on ``data`` (a validated ``data`` section), writing ``raw`` and ``truth``,
    with the default compute params (local processes); returns its metrics."""
    from neurolatent.pipeline.stages import dataset

    return dataset.run(SimpleNamespace(data=data, compute=validate_params({}).compute),
                       SimpleNamespace(raw=raw, truth=truth))


def write_small(root: Path, **synthetic) -> tuple[Path, Path]:
    raw, truth = root / "bold5000", root / "truth"
    write_dataset(small_data_params(**synthetic), raw, truth)
    return raw, truth


def run_stage(name: str, params: dict | None = None, **paths: Path) -> dict:
    """Run stage ``name`` on ``params`` (sections as a dict, validated; defaults elsewhere) with the
    given paths (the registry's names; any not given keep their default), through the same
    declared-params view the CLI gives it. Returns the stage's metrics."""
    stage = STAGES[name]
    unknown = set(paths) - {f.name for f in stage.files}
    assert not unknown, f"{name} has no path {unknown}"
    files = SimpleNamespace(**{f.name: Path(paths.get(f.name, f.path)) for f in stage.files})
    module = importlib.import_module(stage.module)
    return module.run(select_params(validate_params(params or {}), stage.params), files)


def write_pixel_inputs(data, where: Path) -> tuple[Path, Path]:
    """The twin of ``data`` (a validated ``data`` section) through dataset, trials, fmri and
    embed_images (pixels alone) into ``where`` (raw, truth, trials.parquet, stimuli.parquet, fmri,
    images): what rsa, align and export read. Returns (raw, truth)."""
    raw, truth = where / "raw", where / "truth"
    write_dataset(data, raw, truth)
    write_stage_inputs(raw, where)
    return raw, truth


def write_stage_inputs(raw: Path, where: Path) -> Path:
    """trials, fmri (the default volume samples) and embed_images (pixels alone) on the twin in
    ``raw``, into ``where`` (trials.parquet, stimuli.parquet, fmri, images); returns ``where``."""
    run_stage("trials", raw=raw, trials=where / "trials.parquet", stimuli=where / "stimuli.parquet")
    run_stage("fmri", raw=raw, trials=where / "trials.parquet", out=where / "fmri")
    run_stage("embed_images", {"embed": {"image_models": ["pixels"]}}, stimuli=where / "stimuli.parquet", raw=raw,
              out=where / "images")
    return where


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory) -> tuple[Path, Path]:
    """(raw BIDS folder, truth folder) at SNR 4. Read-only: copy it before changing anything."""
    return write_small(tmp_path_factory.mktemp("small"), snr=4.0)


@pytest.fixture(scope="session")
def null_dataset(tmp_path_factory) -> tuple[Path, Path]:
    """The same design at SNR 0: no stimulus signal."""
    return write_small(tmp_path_factory.mktemp("null"), snr=0.0)


@pytest.fixture(scope="session")
def small_inputs(small_dataset, tmp_path_factory) -> tuple[Path, Path, Path]:
    """(raw, truth, folder of :func:`write_stage_inputs`' files) of the small dataset. Read-only."""
    raw, truth = small_dataset
    return raw, truth, write_stage_inputs(raw, tmp_path_factory.mktemp("small-inputs"))


@pytest.fixture
def dataset_copy(small_dataset, tmp_path) -> Path:
    """A private, writable copy of the small dataset's BIDS folder."""
    target = tmp_path / "bold5000"
    shutil.copytree(small_dataset[0], target)
    return target


@pytest.fixture(scope="session")
def tiny_vit(tmp_path_factory):
    """A tiny ViT with random weights, saved locally by save_pretrained: the real loading path."""
    import torch
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    folder = tmp_path_factory.mktemp("tiny-vit")
    torch.manual_seed(3)
    ViTModel(ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                       image_size=32, patch_size=8)).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return str(folder)
