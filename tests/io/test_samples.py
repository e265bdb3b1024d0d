"""The fmri stage's output opened read-only: missing files and a mismatched index named, betas read
as float32, and each trial's row, one per trial or the volume at its anchor + lag."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from neurolatent.errors import NeurolatentError
from neurolatent.io.samples import FmriSamples


def _folder(tmp_path, index: pd.DataFrame, method: str = "betas"):
    np.save(tmp_path / "samples.npy", np.arange(len(index) * 2, dtype=np.float64).reshape(len(index), 2))
    (tmp_path / "samples.json").write_text(json.dumps({"method": method}))
    index.to_parquet(tmp_path / "index.parquet")
    return tmp_path


def _trials(onsets) -> pd.DataFrame:
    return pd.DataFrame({"subject": "CSI1", "session": 1, "run": 1, "onset": onsets, "duration": 1.0,
                         "image_name": [f"i{k}" for k in range(len(onsets))]})


def test_one_sample_per_trial_is_read_by_row(tmp_path):
    trials = _trials([0.0, 10.0, 20.0])
    data = FmriSamples.open(_folder(tmp_path, trials[["image_name"]]))
    assert data.trial_rows(trials, 4.0, "onset").tolist() == [0, 1, 2]
    block = data.read(np.array([0, 2]))
    assert block.dtype == np.float32 and block.tolist() == [[0.0, 1.0], [4.0, 5.0]]
    with pytest.raises(NeurolatentError, match="rows do not match trials.parquet"):
        data.trial_rows(trials.iloc[::-1], 4.0, "onset")


def test_every_tr_samples_take_the_volume_at_anchor_plus_lag(tmp_path):
    index = pd.DataFrame({"subject": "CSI1", "session": 1, "run": 1, "volume": np.arange(10)})
    data = FmriSamples.open(_folder(tmp_path, index, "volume"))
    trials = _trials([0.0, 6.0, 30.0])
    # TR 2 s: onset + 4 s is volume 2 and 5; the last trial's is past the run, its last volume
    assert data.trial_rows(trials, 4.0, "onset").tolist() == [2, 5, 9]
    assert data.trial_rows(trials, (4.0, 6.0), "offset").tolist() == [3, 6, 9]  # offset + 5 s: 6 s and 12 s


def test_a_missing_file_and_a_short_index_are_named(tmp_path):
    with pytest.raises(NeurolatentError, match="samples.npy: missing"):
        FmriSamples.open(tmp_path)
    folder = _folder(tmp_path, pd.DataFrame({"image_name": ["a", "b"]}))
    pd.DataFrame({"image_name": ["a"]}).to_parquet(folder / "index.parquet")
    with pytest.raises(NeurolatentError, match="1 rows for 2 samples"):
        FmriSamples.open(folder)
