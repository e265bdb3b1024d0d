"""Same params, same bits on another machine: image AE training and embeddings under two simulated CPUs.

One machine can still play two: each run below is the real CLI in a fresh process whose environment
asks torch, MKL, OpenBLAS and OpenMP for other kernels and another thread count, as a machine with
other instruction sets and cores would give them. ``compute.portable`` pins them (see
``neurolatent.runtime``), so both runs must write identical files; without it the same two runs
differ, which shows the test can fail.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import run_stage

BIN = Path(sys.executable).parent

#: two machines as the numeric libraries see them
MACHINES = {
    "avx2, 2 cores": {"ATEN_CPU_CAPABILITY": "avx2", "OMP_NUM_THREADS": "2", "OPENBLAS_CORETYPE": "Haswell"},
    "no avx2 kernels, 1 core": {"ATEN_CPU_CAPABILITY": "default", "OMP_NUM_THREADS": "1",
                                "OPENBLAS_CORETYPE": "Sandybridge", "MKL_CBWR": "COMPATIBLE",
                                "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
}


@pytest.fixture(scope="module")
def tables(small_dataset, tmp_path_factory):
    where = tmp_path_factory.mktemp("det-tables")
    run_stage("trials", raw=small_dataset[0], trials=where / "trials.parquet", stimuli=where / "stimuli.parquet")
    return small_dataset[0], where / "stimuli.parquet"


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix in (".safetensors", ".npy", ".json")}


def _train_and_embed(raw: Path, stimuli: Path, out: Path, machine: dict[str, str], portable: bool) -> dict[str, str]:
    out.mkdir(parents=True)
    params = {"compute": {"threads": 2, "portable": portable, "device": "cpu"},
              "image_ae": {"size": 32, "channels": [3, 8, 16], "train": {"epochs": 3, "batch_size": 8}},
              "embed": {"image_models": ["untrained:resources/vit-tiny", "image_ae"], "tokens": "mean"}}
    (out / "params.yaml").write_text(yaml.safe_dump(params))
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("ATEN_", "MKL_", "OPENBLAS_", "OMP_", "NUMBA_", "NPY_"))} | machine
    common = ["--params", str(out / "params.yaml")]
    for command in (["image_ae", "--stimuli", str(stimuli), "--raw", str(raw), "--model", str(out / "image_ae"),
                     "--metrics", str(out / "image_ae.json"), "--plots", str(out / "loss.csv"),
                     "--checkpoints", str(out / "ckpt")],
                    ["embed_images", "--stimuli", str(stimuli), "--raw", str(raw), "--image-ae", str(out / "image_ae"),
                     "--out", str(out / "images")]):
        result = subprocess.run([str(BIN / "neurolatent"), command[0], *common, *command[1:]], env=env,
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-3000:]
    return _digests(out / "image_ae") | _digests(out / "images") | {"metrics": _digests(out)["image_ae.json"]}


def test_portable_numerics_give_the_same_bits_on_two_machines(tables, tmp_path):
    raw, stimuli = tables
    runs = {name: _train_and_embed(raw, stimuli, tmp_path / f"portable{i}", machine, portable=True)
            for i, (name, machine) in enumerate(MACHINES.items())}
    first, second = runs.values()
    assert {"model.safetensors", "untrained_resources_vit-tiny.npy", "image_ae.npy"} <= {Path(k).name for k in first}
    assert first == second


def test_without_pinning_the_two_machines_differ(tables, tmp_path):
    """The negative control: the same runs with ``compute.portable: false`` disagree, so the test
    above would fail if pinning did nothing."""
    raw, stimuli = tables
    first, second = (_train_and_embed(raw, stimuli, tmp_path / f"native{i}", machine, portable=False)
                     for i, machine in enumerate(MACHINES.values()))
    assert first["model.safetensors"] != second["model.safetensors"]
    assert first["untrained_resources_vit-tiny.npy"] != second["untrained_resources_vit-tiny.npy"]
