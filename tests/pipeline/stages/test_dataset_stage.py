"""The dataset stage: the synthetic twin of one subject's run written in BOLD5000's layout (what
its metrics count is on disk), the same params giving the same bytes, and the bids source linking
a copy of it; a failed write leaves neither folder."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest

from neurolatent.errors import NeurolatentError
from neurolatent.io import bids

from conftest import run_stage

#: one subject, one run, a coarse grid and small pictures: seconds
DATA = {"subjects": ["CSI2"], "sessions": [1], "runs": [3], "forms": ["raw", "T1w"],
        "synthetic": {"voxel_size_mm": 6, "image_size": 32, "jobs": 1}}


def _digest(folder) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    where = tmp_path_factory.mktemp("dataset")
    metrics = run_stage("dataset", {"data": DATA}, raw=where / "bold5000", truth=where / "truth")
    return where, metrics


def test_the_twin_is_bold5000s_layout_and_its_metrics_count_it(twin):
    where, metrics = twin
    raw = where / "bold5000"
    assert list(bids.find_runs(raw, "bold.nii.gz")) == [("CSI2", 1, 3)]
    assert list(bids.find_space_runs(raw, "T1w")) == [("CSI2", 1, 3)]
    events = pd.read_csv(raw / bids.events_path("CSI2", 1, 3), sep="\t")
    assert metrics["dataset.runs"] == 1 and metrics["dataset.trials"] == len(events) == bids.TRIALS_PER_RUN
    pictures = [p for p in (raw / bids.STIMULI_DIR).rglob("*") if p.is_file()]
    assert metrics["dataset.images"] == len(pictures) == events["ImgName"].nunique()
    assert len((raw / bids.REPEATED_LIST).read_text().split()) == 113
    truth = json.loads((where / "truth" / "truth.json").read_text())
    assert truth and (where / "truth" / "stimuli.tsv").is_file()
    assert metrics["dataset.region_voxels"] > 0


def test_the_same_params_write_the_same_bytes(twin, tmp_path):
    where, _ = twin
    run_stage("dataset", {"data": DATA}, raw=tmp_path / "bold5000", truth=tmp_path / "truth")
    assert _digest(tmp_path / "bold5000") == _digest(where / "bold5000")
    assert _digest(tmp_path / "truth") == _digest(where / "truth")


def test_the_bids_source_links_a_copy_and_a_missing_one_leaves_nothing(twin, tmp_path):
    where, _ = twin
    raw = where / "bold5000"
    data = {"source": "bids", "bids_root": str(raw), "stimuli_root": str(raw / "BOLD5000_Stimuli"),
            "subjects": ["CSI2"], "sessions": [1], "runs": [3], "forms": ["raw"]}
    metrics = run_stage("dataset", {"data": data}, raw=tmp_path / "linked", truth=tmp_path / "truth")
    assert list(bids.find_runs(tmp_path / "linked", "bold.nii.gz")) == [("CSI2", 1, 3)]
    assert metrics["dataset.runs"] == 1
    with pytest.raises(NeurolatentError):
        run_stage("dataset", {"data": {**data, "bids_root": str(tmp_path / "absent")}}, raw=tmp_path / "none",
                  truth=tmp_path / "none-truth")
    assert not (tmp_path / "none").exists() and not (tmp_path / "none-truth").exists()
