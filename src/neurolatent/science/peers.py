"""The statistics of the field's shared frames, as their own tools compute them.

- Net2Brain (cvai-roig-lab/Net2Brain, ``net2brain/evaluations/rsa.py`` and ``noiseceiling.py``,
  ``RSA(..., squared=False).evaluate(distance_metric="spearman")``): per subject, the Spearman r
  of the model RDM's and the subject's RDM's upper triangles; ``R`` their mean over subjects,
  ``Significance`` the one-sample t-test p of the subjects' r against 0, ``SEM`` their standard
  error (ddof 1), ``LNC`` the mean over subjects of r(subject, mean RDM of the others), ``UNC`` the
  mean over subjects of r(subject, mean RDM of all), ``%R = R / LNC x 100``.
- Algonauts 2023 (Gifford et al. 2023, its development kit): per voxel, the encoding model's
  Pearson r on test images with negative r set to 0, squared, over the noise ceiling (the
  explainable fraction of the variance), x 100, capped at 100; a ceiling of 0 is 1e-14 there, so a
  voxel without explainable variance scores 100 when r > 0 and 0 when r = 0. :func:`algonauts_scores`
  gives it per model and region from :mod:`neurolatent.science.prediction`'s ridge.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from neurolatent.science.prediction import held_out_ceiling_r, held_out_r
from neurolatent.science.stimuli import StimulusMatrix

#: Net2Brain's results.csv columns, in its order (RSA.evaluate with squared=False, without R_array)
NET2BRAIN_COLUMNS = ("ROI", "Layer", "Model", "R", "%R", "Significance", "SEM", "LNC", "UNC")
#: Algonauts' stand-in for a zero noise ceiling
ZERO_CEILING = 1e-14


def _upper(square: np.ndarray) -> np.ndarray:
    return square[np.triu_indices(square.shape[-1], 1)]


def _check_stack(brain: np.ndarray) -> None:
    if brain.ndim != 3 or brain.shape[1] != brain.shape[2]:
        raise ValueError(f"brain RDMs: shape {brain.shape}, expected (subjects, n, n)")
    if brain.shape[0] < 2 or brain.shape[1] < 3:
        raise ValueError(f"brain RDMs: {brain.shape[0]} subject(s) over {brain.shape[1]} image(s): Net2Brain's "
                         "statistics need 2 subjects and 3 images at least")


def rdm_ranks(square: np.ndarray) -> np.ndarray:
    """(n (n - 1) / 2,) float64: the ranks of an (n, n) RDM's upper triangle (scipy's ``rankdata``,
    ties averaged), what Net2Brain's Spearman r correlates; computed once where a subject's or a
    model's RDM meets several others (at ~3,000 images a ranking takes about a second)."""
    return stats.rankdata(_upper(square))


def _spearman(first: np.ndarray, second: np.ndarray) -> float:
    """``scipy.stats.spearmanr`` of two vectors from their :func:`rdm_ranks`, to the bit: spearmanr
    takes ``np.corrcoef`` of the ranked pair and returns its [1, 0] entry (the matrix is not
    symmetric to the last bit); NaN if one is constant, as there."""
    if first.min() == first.max() or second.min() == second.max():
        return float("nan")
    return float(np.corrcoef(np.vstack((first, second)))[1, 0])


def net2brain_noise_ceiling(brain: np.ndarray, ranks: list[np.ndarray] | None = None) -> tuple[float, float]:
    """(LNC, UNC) of subjects' RDMs ``brain`` (subjects, n, n) over the same images, Net2Brain's
    unsquared Spearman noise ceiling: leave one subject out against the mean of the others, and each
    subject against the mean of all. ``ranks`` : each subject's :func:`rdm_ranks`, if already made."""
    _check_stack(brain)
    ranks = [rdm_ranks(own) for own in brain] if ranks is None else ranks
    total = brain.sum(axis=0)
    subjects = brain.shape[0]
    lower = [_spearman(rank, rdm_ranks((total - own) / (subjects - 1))) for own, rank in zip(brain, ranks)]
    mean = rdm_ranks(total / subjects)
    upper = [_spearman(rank, mean) for rank in ranks]
    return float(np.mean(lower)), float(np.mean(upper))


def net2brain_row(model: np.ndarray, brain: np.ndarray, ceiling: tuple[float, float],
                  model_ranks: np.ndarray | None = None, brain_ranks: list[np.ndarray] | None = None) -> dict[str, float]:
    """Net2Brain's numbers for one model layer against one ROI.

    model : (n, n) the layer's RDM; brain : (subjects, n, n) over the same images, same order;
    ceiling : (LNC, UNC) of ``brain`` (:func:`net2brain_noise_ceiling`); model_ranks, brain_ranks :
    their :func:`rdm_ranks`, if already made (a table of every ROI and model ranks each RDM once).
    Returns {R, %R, Significance, SEM, LNC, UNC} (r unitless, %R in percent).
    """
    _check_stack(brain)
    if model.shape != brain.shape[1:]:
        raise ValueError(f"model RDM: shape {model.shape}, the brain RDMs are {brain.shape[1:]}")
    cells = rdm_ranks(model) if model_ranks is None else model_ranks
    brain_ranks = [rdm_ranks(own) for own in brain] if brain_ranks is None else brain_ranks
    r = np.array([_spearman(own, cells) for own in brain_ranks])
    mean = float(r.mean())
    lnc, unc = ceiling
    return {"R": mean, "%R": mean / lnc * 100.0, "Significance": float(stats.ttest_1samp(r, 0.0).pvalue),
            "SEM": float(stats.sem(r)), "LNC": lnc, "UNC": unc}


def noise_normalised_score(r: np.ndarray, ceiling_r: np.ndarray) -> np.ndarray:
    """Algonauts 2023's noise-normalised encoding accuracy per voxel, percent in [0, 100].

    Parameters
    ----------
    r : ndarray, shape (v,)
        Pearson r of predicted and measured responses on the test images (NaN: a constant voxel).
    ceiling_r : ndarray, shape (v,)
        The noise ceiling as the highest reachable r (the square root of the explainable fraction,
        :func:`neurolatent.science.voxelwise.noise_ceiling_r`); NaN where unknown.

    Returns
    -------
    ndarray, shape (v,), float64
        100 x max(r, 0)^2 / ceiling_r^2, capped at 100; NaN where r or the ceiling is.
    """
    r, ceiling_r = np.asarray(r, dtype=np.float64), np.asarray(ceiling_r, dtype=np.float64)
    if r.shape != ceiling_r.shape:
        raise ValueError(f"r has shape {r.shape}, the noise ceiling {ceiling_r.shape}")
    explainable = np.where(ceiling_r == 0, ZERO_CEILING, ceiling_r ** 2)
    return np.minimum(np.maximum(r, 0.0) ** 2 / explainable * 100.0, 100.0)


def _finite_median(values: np.ndarray) -> float:
    """The median of the finite values; NaN when there is none (a region without noise ceiling)."""
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else float("nan")


def roi_scores(r: np.ndarray, ceiling_r: np.ndarray, columns: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Algonauts' score per ROI: the median over the ROI's voxels of :func:`noise_normalised_score`.

    r, ceiling_r : (v,) as :func:`noise_normalised_score`'s; columns : {ROI: its voxels' columns}.
    Returns {ROI: percent}; a voxel whose score is NaN is left out, an ROI without a finite one is NaN.
    """
    score = noise_normalised_score(r, ceiling_r)
    return {roi: _finite_median(score[cols]) for roi, cols in columns.items()}


def algonauts_scores(models: Mapping[str, StimulusMatrix], samples: Mapping[str, StimulusMatrix],
                     trials: Mapping[str, StimulusMatrix], test_of: Mapping[str, list[str]],
                     regions: Mapping[str, Mapping[str, np.ndarray]]) -> tuple[pd.DataFrame, list[str]]:
    """Algonauts 2023's score of each model in each region, over subjects.

    models : {name: (n_images, n_features)}; samples : {subject: (n_images, n_voxels)} each image's
    response; trials : {subject: a row per presentation} for the noise ceiling of the test images'
    repeats; test_of : {subject: its test images}; regions : {subject: {region: voxel indices}}, in
    the order of the table's rows.

    Per subject, model and voxel the ridge of :func:`neurolatent.science.prediction.held_out_r`
    (fitted on the subject's other images) and :func:`noise_normalised_score`; per region the
    medians over its finite voxels of the score (percent), of r and of the noise ceiling (the
    explainable fraction, ceiling r squared). Returns (a row per (model, region) in first-seen
    order: ``model``, ``roi``, ``score``, ``median_r``, ``noise_ceiling``, each the mean over
    subjects; the subjects without a test image presented twice, whose ceilings and scores are NaN).
    """
    rows, without = [], []
    for subject, voxels in samples.items():
        test = test_of[subject]
        ceiling = held_out_ceiling_r(trials[subject], test)
        if ceiling is None:
            ceiling = np.full(voxels.matrix.shape[1], np.nan)
        if not np.isfinite(ceiling).any():
            without.append(subject)
        for model, features in models.items():
            r = held_out_r(features, voxels, test)
            scores = roi_scores(r, ceiling, regions[subject])
            rows += [{"model": model, "roi": region, "subject": subject, "score": scores[region],
                      "median_r": _finite_median(r[cols]), "noise_ceiling": _finite_median(ceiling[cols] ** 2)}
                     for region, cols in regions[subject].items()]
    table = (pd.DataFrame(rows).groupby(["model", "roi"], sort=False)[["score", "median_r", "noise_ceiling"]]
             .mean().reset_index())
    return table, without
