"""Single-trial response amplitudes from a BOLD series with nilearn's GLM (LSA or LSS)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from nilearn.glm.first_level import make_first_level_design_matrix, run_glm

from neurolatent.science.constraints import Positive, checked


def trial_design(onsets_s: np.ndarray, durations_s: np.ndarray, n_volumes: int, tr_s: float,
                 high_pass_hz: float, target: int | None = None) -> np.ndarray:
    """nilearn design matrix of single-trial regressors (Glover HRF) plus cosine drift and constant.

    ``target=None`` gives LSA: one regressor per trial, in trial order, first. ``target=i`` gives
    the LSS model of trial i: its own regressor first, then one regressor for all other trials.

    Returns
    -------
    ndarray, shape (n_volumes, n_regressors)
    """
    if target is None:
        names = [f"trial{i:03d}" for i in range(len(onsets_s))]
    else:
        names = ["other"] * len(onsets_s)
        names[target] = "target"
    events = pd.DataFrame({"onset": onsets_s, "duration": durations_s, "trial_type": names})
    design = make_first_level_design_matrix(np.arange(n_volumes) * tr_s, events, hrf_model="glover",
                                            drift_model="cosine", high_pass=high_pass_hz)
    first = ["target"] if target is not None else [f"trial{i:03d}" for i in range(len(onsets_s))]
    rest = [c for c in design.columns if c not in first]
    return design[first + rest].to_numpy()


@checked(tr_s=Positive, glm=Literal["lsa", "lss"], noise_model=Literal["ar1", "ols"], high_pass_hz=Positive)
def trial_betas(series: np.ndarray, onsets_s: np.ndarray, durations_s: np.ndarray, tr_s: float,
                glm: str = "lsa", noise_model: str = "ar1", high_pass_hz: float = 1 / 128) -> np.ndarray:
    """Single-trial response amplitudes of one run with nilearn's GLM.

    Parameters
    ----------
    series : ndarray, shape (n_volumes, n_voxels), raw intensities
    onsets_s, durations_s : ndarray, shape (n_trials,), seconds
    glm : "lsa" (one model, all trials) or "lss" (one model per trial: the trial vs all others)
    noise_model : "ar1" or "ols" (nilearn's run_glm)
    high_pass_hz : cosine drift cut-off, Hz

    Returns
    -------
    ndarray, shape (n_trials, n_voxels), float32, percent signal change per unit peak response
    """
    mean = series.mean(axis=0)
    psc = 100.0 * (series / np.where(mean > 0, mean, 1.0) - 1.0)
    n_volumes, n_trials = series.shape[0], len(onsets_s)

    def fit(design: np.ndarray, n_keep: int) -> np.ndarray:
        labels, results = run_glm(psc, design, noise_model=noise_model)
        betas = np.empty((design.shape[1], psc.shape[1]))
        for label, result in results.items():
            betas[:, labels == label] = result.theta
        return betas[:n_keep]

    if glm == "lsa":
        return fit(trial_design(onsets_s, durations_s, n_volumes, tr_s, high_pass_hz), n_trials).astype(np.float32)
    out = np.empty((n_trials, psc.shape[1]), dtype=np.float32)
    for i in range(n_trials):
        out[i] = fit(trial_design(onsets_s, durations_s, n_volumes, tr_s, high_pass_hz, target=i), 1)[0]
    return out
