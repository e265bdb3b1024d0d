"""Per-stimulus matrices: rows by name, repeats averaged, the study's pairing by position, and the
presentations of each image per subject."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neurolatent.errors import NeurolatentError
from neurolatent.science.stimuli import StimulusMatrix, average_repeats, paired_by_position, presentations


def _matrix() -> StimulusMatrix:
    return StimulusMatrix("s", np.array([[1.0], [2.0], [3.0], [5.0]], np.float32), ("b", "a", "b", "c"))


def test_rows_by_name_and_a_missing_one_named():
    matrix = StimulusMatrix("s", np.arange(3.0)[:, None], ("x", "y", "z"))
    assert matrix.rows(["z", "x"]).ravel().tolist() == [2.0, 0.0]
    with pytest.raises(NeurolatentError, match="s: no row for image 'w' \\(1 missing\\)"):
        matrix.rows(["w", "x"])


def test_average_repeats_one_row_per_image_sorted():
    average = average_repeats(_matrix(), "mean")
    assert average.stimuli == ("a", "b", "c") and average.name == "mean"
    assert average.matrix.ravel().tolist() == [2.0, 2.0, 5.0] and average.matrix.dtype == np.float32


def test_paired_by_position_labels_rows_with_the_models_order():
    sample = StimulusMatrix("s", np.array([[1.0], [2.0], [3.0]]), ("a", "b", "c"))
    paired = paired_by_position(sample, ["c", "a", "q"], ("a", "b", "c"))
    assert paired.stimuli == ("a", "b") and paired.matrix.ravel().tolist() == [3.0, 1.0]


def test_presentations_counts_trials_per_subject_and_image():
    trials = pd.DataFrame({"subject": ["S2", "S1", "S1", "S1"], "image_name": ["a", "b", "a", "b"]})
    stimuli = pd.DataFrame({"image_name": ["b", "a"]})
    table = presentations(trials, stimuli)
    assert table.to_dict("list") == {"subject": ["S1", "S1", "S2"], "stimulus_row": [0, 1, 1],
                                     "presentations": [2, 1, 1], "image_name": ["b", "a", "a"]}
