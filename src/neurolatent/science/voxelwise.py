"""An encoding model's score per voxel: Pearson r of its held-out predictions, and the noise
ceiling that bounds it (the r the repeat-averaged response allows)."""

from __future__ import annotations

import numpy as np
from sklearn.preprocessing import StandardScaler


def voxelwise_r(predicted: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """(v,) Pearson r over test stimuli per voxel (column); NaN for a constant column."""
    p = predicted - predicted.mean(axis=0)
    a = actual - actual.mean(axis=0)
    denominator = np.sqrt((p * p).sum(axis=0) * (a * a).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (p * a).sum(axis=0) / denominator, np.nan)


def noise_ceiling_r(responses: np.ndarray, image_of_trial: np.ndarray) -> np.ndarray:
    """Per voxel, the highest Pearson r a model can reach with the repeat-averaged response.

    The noise ceiling of Allen et al. 2022 (NSD): with each voxel z-scored over trials, sigma^2 =
    the mean over images of the variance across its repeats (ddof 1), ncsnr = sqrt(1 - sigma^2) /
    sigma, and the explainable fraction of the variance of the repeat-averaged responses is
    ncsnr^2 / (ncsnr^2 + mean_i(1 / n_i)), n_i the number of repeats of image i (NSD's form for
    images averaged over unequal numbers of trials, e.g. BOLD5000's CSI3 with 2 to 5). Its square
    root bounds r.

    responses : (n_trials, v); image_of_trial : (n_trials,) labels. Images shown once are ignored.
    Returns (v,) float64.
    """
    labels, counts = np.unique(image_of_trial, return_counts=True)
    repeated = labels[counts > 1]
    if len(repeated) == 0:
        raise ValueError("a noise ceiling needs images shown more than once")
    z = StandardScaler().fit_transform(responses)
    variances = [z[image_of_trial == label].var(axis=0, ddof=1) for label in repeated]
    sigma2 = np.mean(variances, axis=0)
    ncsnr = np.sqrt(np.clip(1.0 - sigma2, 0.0, None)) / np.sqrt(np.maximum(sigma2, 1e-12))
    mean_inverse_repeats = np.mean(1.0 / counts[counts > 1])
    return np.sqrt(ncsnr**2 / (ncsnr**2 + mean_inverse_repeats))
