"""neurolatent.io.glmsingle on a release laid out as release 2.0's: rows joined to trials and checked."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neurolatent.errors import NeurolatentError
from neurolatent.io import bids
from neurolatent.io.glmsingle import read_presentation_list, release_rows, roi_betas, write_glmsingle_schedule


@pytest.fixture
def release(tmp_path):
    """CSI1's release folder with 4 trials (the third a repeated showing) and ROI betas row = trial."""
    trials = pd.DataFrame({"session": [1, 1, 1, 1], "run": [1, 1, 2, 2], "trial": [1, 2, 1, 2],
                           "image_name": ["a.jpg", "b.jpg", "a.jpg", "c.jpg"]})
    (tmp_path / "CSI1").mkdir()
    (tmp_path / "CSI1" / "CSI1_imgnames.txt").write_text("a.jpg\nb.jpg\nrep_a.jpg\nc.jpg\n")
    write_glmsingle_schedule(trials, tmp_path / "CSI1" / "CSI1_schedule.tsv")
    (tmp_path / bids.GLMSINGLE_ROI_DIR).mkdir(parents=True)
    for k, hemisphere in enumerate(bids.HEMISPHERES):
        betas = np.arange(4, dtype=np.float32)[:, None] + np.array([[10.0 * k, 10.0 * k + 1]], dtype=np.float32)
        np.save(tmp_path / bids.GLMSINGLE_ROI_DIR / bids.glmsingle_roi_name("CSI1", hemisphere, "LOC"), betas)
    return tmp_path, trials


def test_rows_follow_the_schedule_and_the_repeat_prefix_is_dropped(release):
    folder, trials = release
    assert read_presentation_list(folder / "CSI1" / "CSI1_imgnames.txt") == ["a.jpg", "b.jpg", "a.jpg", "c.jpg"]
    rows = release_rows(folder, "CSI1", trials.iloc[[3, 0]])
    np.testing.assert_array_equal(rows, [3, 0])
    betas, labels = roi_betas(folder, "CSI1", ["LOC"], rows)  # LH's two voxels, then RH's
    np.testing.assert_array_equal(betas, [[3, 4, 13, 14], [0, 1, 10, 11]])
    assert labels == [("LH", "LOC"), ("LH", "LOC"), ("RH", "LOC"), ("RH", "LOC")]


def test_a_shifted_presentation_list_names_the_first_trial_that_differs(release):
    folder, trials = release
    (folder / "CSI1" / "CSI1_imgnames.txt").write_text("b.jpg\na.jpg\nrep_a.jpg\nc.jpg\n")
    with pytest.raises(NeurolatentError, match="presentation 1 .ses-01 run-01 trial 1. is 'b.jpg' in the list but "
                                               "'a.jpg' in the events files"):
        release_rows(folder, "CSI1", trials)


def test_a_missing_roi_file_says_how_to_get_it(release):
    folder, _ = release
    with pytest.raises(NeurolatentError, match="missing from the GLMsingle release"):
        roi_betas(folder, "CSI1", ["PPA"], np.array([0]))
