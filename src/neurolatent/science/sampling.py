"""A trial's response from a BOLD series: anchor times, the volume at a haemodynamic lag, and the
per-run sample of each ``preprocess.method`` as a pure function on arrays.

Timing convention: volume k of a run was acquired at ``k * tr_s`` seconds; trial onsets and
durations are in seconds from the run's first volume (BOLD5000's events files).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from neurolatent.science.constraints import Count, Positive, checked
from neurolatent.science.glm import trial_betas
from neurolatent.science.stats import zscore


#: what a lag counts from: the stimulus onset, or its offset
Anchor = Literal["onset", "offset"]
#: how a time picks a volume: the nearest, or the last one begun
Rounding = Literal["nearest", "floor"]


@checked(anchor=Anchor)
def anchor_times(onsets_s: np.ndarray, durations_s: np.ndarray, anchor: str) -> np.ndarray:
    """Stimulus onset (``anchor="onset"``) or offset (``"offset"``) of each trial, seconds.

    onsets_s, durations_s : (n_trials,) seconds. Returns (n_trials,) seconds.
    """
    return onsets_s + (durations_s if anchor == "offset" else 0.0)


def lag_centre(lag_s: float | tuple[float, float]) -> float:
    """One number for a lag: itself, or a window's middle (seconds)."""
    return lag_s if not isinstance(lag_s, tuple) else sum(lag_s) / 2


@checked(tr_s=Positive, n_volumes=Count, rounding=Rounding)
def volume_index(times_s: np.ndarray, tr_s: float, n_volumes: int, rounding: str = "nearest") -> np.ndarray:
    """The volume of each time, clipped to the run: the nearest (``rounding="nearest"``, half to
    even) or the last one begun (``"floor"``, the study's ``int(StimOff / TR)``).

    times_s : (n,) seconds. Returns (n,) int.
    """
    index = np.asarray(times_s) / tr_s
    return np.clip((np.rint(index) if rounding == "nearest" else np.floor(index)).astype(int), 0, n_volumes - 1)


def volume_at_lag(series: np.ndarray, tr_s: float, times_s: np.ndarray,
                  lag_s: float | tuple[float, float], rounding: str = "nearest") -> np.ndarray:
    """The signal of each trial at ``time + lag``.

    Parameters
    ----------
    series : ndarray, shape (n_volumes, n_voxels); volume k was acquired at k * tr_s seconds
    times_s : ndarray, shape (n_trials,), anchor times in seconds
    lag_s : a number: the volume of time + lag (picked by ``rounding``, see :func:`volume_index`);
        a window (a, b): the mean of the linearly interpolated signal at time + a, time + a + 0.5 s,
        ..., time + b

    Returns
    -------
    ndarray, shape (n_trials, n_voxels), float32
    """
    last = series.shape[0] - 1
    if not isinstance(lag_s, tuple):
        return series[volume_index(times_s + lag_s, tr_s, series.shape[0], rounding)].astype(np.float32)
    offsets = np.arange(lag_s[0], lag_s[1] + 1e-9, 0.5)
    points = np.clip((times_s[:, None] + offsets[None, :]) / tr_s, 0, last)  # (n_trials, n_points)
    low = np.floor(points).astype(int)
    high = np.minimum(low + 1, last)
    weight = (points - low)[..., None].astype(np.float32)
    values = series[low] * (1 - weight) + series[high] * weight  # (n_trials, n_points, n_voxels)
    return values.mean(axis=1).astype(np.float32)


@checked(tr_s=Positive, method=Literal["volume", "betas"], anchor=Anchor, glm=Literal["lsa", "lss"],
         noise_model=Literal["ar1", "ols"], high_pass_hz=Positive, rounding=Rounding)
def masked_samples(series: np.ndarray, tr_s: float, onsets_s: np.ndarray, durations_s: np.ndarray,
                   method: str, lag_s: float | tuple[float, float] = (4.0, 6.0), anchor: str = "onset",
                   glm: str = "lsa", noise_model: str = "ar1", high_pass_hz: float = 1 / 128,
                   rounding: str = "nearest") -> np.ndarray:
    """The ``volume`` or ``betas`` sample of every trial of one run.

    Parameters
    ----------
    series : ndarray, shape (n_volumes, n_voxels), intensities of the voxels in the mask
    tr_s : repetition time, seconds
    onsets_s, durations_s : ndarray, shape (n_trials,), seconds
    method : ``volume`` (the run z-scored per voxel, sampled at anchor + lag) or ``betas``
        (single-trial GLM amplitudes, see :func:`neurolatent.science.glm.trial_betas`)

    Returns
    -------
    ndarray, shape (n_trials, n_voxels), float32
    """
    if method == "volume":
        return volume_at_lag(zscore(series), tr_s, anchor_times(onsets_s, durations_s, anchor), lag_s, rounding)
    return trial_betas(series, onsets_s, durations_s, tr_s, glm, noise_model, high_pass_hz)  # betas (checked)
