"""A trial's response from a BOLD series: anchors, the volume at a lag (nearest or floor), a lag
window's interpolated mean, and the one-line errors of bad arguments."""

from __future__ import annotations

import numpy as np
import pytest

from neurolatent.science.sampling import anchor_times, lag_centre, masked_samples, volume_at_lag, volume_index


def test_anchor_times_onset_or_offset():
    onsets, durations = np.array([0.0, 10.0]), np.array([1.0, 2.0])
    assert anchor_times(onsets, durations, "onset").tolist() == [0.0, 10.0]
    assert anchor_times(onsets, durations, "offset").tolist() == [1.0, 12.0]


def test_volume_index_rounds_half_to_even_or_floors_and_clips():
    times = np.array([1.0, 3.0, 4.9, 100.0, -5.0])
    assert volume_index(times, 2.0, 10).tolist() == [0, 2, 2, 9, 0]  # 0.5 -> 0, 1.5 -> 2, 2.45 -> 2
    assert volume_index(times, 2.0, 10, "floor").tolist() == [0, 1, 2, 9, 0]
    assert lag_centre(5.0) == 5.0 and lag_centre((4.0, 6.0)) == 5.0


def test_volume_at_a_lag_and_a_window_on_a_ramp():
    series = np.arange(10.0)[:, None] * np.array([1.0, 2.0])  # volume k holds k (and 2k)
    times = np.array([0.0, 4.0])
    assert volume_at_lag(series, 2.0, times, 4.0).tolist() == [[2.0, 4.0], [4.0, 8.0]]
    # a ramp's mean over t + 4 .. t + 6 s is its value at t + 5 s: volume 2.5 and 4.5
    np.testing.assert_allclose(volume_at_lag(series, 2.0, times, (4.0, 6.0)), [[2.5, 5.0], [4.5, 9.0]])


def test_volume_samples_are_the_z_scored_run_at_the_lag():
    series = np.arange(8.0)[:, None].repeat(3, axis=1)
    samples = masked_samples(series, 2.0, np.array([0.0]), np.array([1.0]), "volume", lag_s=4.0)
    z = (series - series.mean(0)) / series.std(0)
    np.testing.assert_allclose(samples, z[[2]], rtol=1e-6)


@pytest.mark.parametrize("arguments, message", [
    ({"method": "trials"}, "method: Input should be 'volume' or 'betas' (got 'trials')"),
    ({"method": "volume", "anchor": "middle"}, "anchor: Input should be 'onset' or 'offset' (got 'middle')"),
    ({"method": "volume", "tr_s": 0.0}, "tr_s: Input should be greater than 0 (got 0.0)"),
])
def test_a_bad_argument_is_one_line_naming_it(arguments, message):
    with pytest.raises(ValueError) as info:
        masked_samples(np.zeros((8, 2)), **{"tr_s": 2.0, "onsets_s": np.zeros(1), "durations_s": np.ones(1),
                                           **arguments})
    assert str(info.value) == message
