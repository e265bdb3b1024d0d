"""Voxelwise prediction from one feature space at a time: ridge from an image model's features to
every voxel (one penalty per voxel, :class:`~neurolatent.science.mapping.RidgeMapping`), scored by
Pearson r on held-out images, beside a control fitted on shuffled features and the noise ceiling of
the test images' repeats.

It answers how well each space predicts a voxel on its own, the question of the stitch stage's
encoding figures and of Algonauts 2023's score (:func:`neurolatent.science.peers.noise_normalised_score`).
What each space explains given the others is banded ridge's question
(:mod:`neurolatent.science.encoding`, the encode stage): several spaces fitted together, a penalty
per space and voxel, R^2 divided among them. With one space the two are different estimators
(leave-one-out over a fixed grid here, random search with k-fold there) and give different numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurolatent.science.mapping import RidgeMapping
from neurolatent.science.stimuli import StimulusMatrix
from neurolatent.science.stitching import fit_on_training
from neurolatent.science.voxelwise import noise_ceiling_r, voxelwise_r

#: the lowest noise ceiling (as r) a voxel needs for its r to be read over it
MIN_CEILING = 0.1


def held_out_ceiling_r(trials: StimulusMatrix, test_names: list[str]) -> np.ndarray | None:
    """(n_voxels,) the noise ceiling as a correlation (:func:`~neurolatent.science.voxelwise.noise_ceiling_r`)
    from ``trials`` (a row per presentation) of the images in ``test_names``; None when no test
    image was presented twice (there is no ceiling to read r over)."""
    in_test = np.isin(np.asarray(trials.stimuli), test_names)
    try:
        return noise_ceiling_r(trials.matrix[in_test], np.asarray(trials.stimuli)[in_test])
    except ValueError:  # no image shown twice
        return None


def held_out_r(features: StimulusMatrix, voxels: StimulusMatrix, test_names: list[str],
               fitted_on: StimulusMatrix | None = None) -> np.ndarray:
    """(n_voxels,) Pearson r on ``test_names`` of the ridge from ``features`` to ``voxels`` fitted on
    the subject's other images (one penalty per voxel); ``fitted_on``: the training images' features
    the fit sees instead of ``features``' own (the control's shuffled ones)."""
    fitted = fit_on_training(RidgeMapping(alpha_per_target=True), features if fitted_on is None else fitted_on,
                             voxels, voxels.stimuli, test_names)
    return voxelwise_r(*fitted.transform(features.rows(test_names), voxels.rows(test_names)))


@dataclass(frozen=True)
class VoxelPrediction:
    """One subject's held-out prediction scores: r (n_voxels,) voxelwise Pearson r on the test
    images; median_r; median_r_shuffled (the same fit with the training images' features shuffled
    among them: the control); median_r_normalised (median of r over the noise ceiling, among voxels
    whose ceiling reaches :data:`MIN_CEILING`; NaN without repeated test images). The medians are
    numpy scalars of r's dtype: a mean over subjects is then taken in that precision."""

    r: np.ndarray
    median_r: np.floating
    median_r_shuffled: np.floating
    median_r_normalised: np.floating | float


def predict_voxels(features: StimulusMatrix, voxels: StimulusMatrix, test_names: list[str],
                   random_state: np.random.Generator, trials: StimulusMatrix | None = None) -> VoxelPrediction:
    """:func:`held_out_r` and its shuffled-features control (the training rows' features permuted
    by ``random_state``); ``trials`` (each presentation's voxels) gives the noise ceiling from
    repeats of the test images (none when no test image was presented twice: NaN normalised r)."""
    r = held_out_r(features, voxels, test_names)
    train = [n for n in voxels.stimuli if n not in set(test_names)]
    shuffled = StimulusMatrix("shuffled", features.rows(train)[random_state.permutation(len(train))], tuple(train))
    null = np.nanmedian(held_out_r(features, voxels, test_names, fitted_on=shuffled))
    ceiling = None if trials is None else held_out_ceiling_r(trials, test_names)
    normalised = np.nan
    if ceiling is not None:
        usable = ceiling > MIN_CEILING
        normalised = np.nanmedian(r[usable] / ceiling[usable]) if usable.any() else np.nan
    return VoxelPrediction(r, np.nanmedian(r), null, normalised)


@dataclass(frozen=True)
class GroupPrediction:
    """One feature space's :class:`VoxelPrediction` of each subject and their means over subjects:
    ``subjects`` {subject: its prediction}; ``median_r``, ``median_r_shuffled`` and
    ``median_r_normalised`` (NaN without trials) the means of the subjects' medians; ``regions``
    {region: the mean over subjects of the median r over the region's voxels}."""

    subjects: dict[str, VoxelPrediction]
    median_r: float
    median_r_shuffled: float
    median_r_normalised: float
    regions: dict[str, float]


def group_prediction(features: StimulusMatrix, samples: dict[str, StimulusMatrix], test_of: dict[str, list[str]],
                     random_states: dict[str, np.random.Generator], trials: dict[str, StimulusMatrix] | None = None,
                     regions: dict[str, dict[str, np.ndarray]] | None = None) -> GroupPrediction:
    """:func:`predict_voxels` from ``features`` to each subject's ``samples`` {subject: (n_images,
    n_voxels)}, held out on ``test_of[subject]``, its control shuffled by ``random_states[subject]``;
    ``trials`` {subject: a row per presentation} gives the noise ceilings; ``regions`` {region:
    {subject: its voxel indices there}} the per-region medians."""
    scores = {subject: predict_voxels(features, voxels, test_of[subject], random_states[subject],
                                      None if trials is None else trials[subject])
              for subject, voxels in samples.items()}
    return GroupPrediction(
        scores, float(np.mean([s.median_r for s in scores.values()])),
        float(np.mean([s.median_r_shuffled for s in scores.values()])),
        float("nan") if trials is None else float(np.mean([s.median_r_normalised for s in scores.values()])),
        {region: float(np.mean([np.nanmedian(score.r[columns[subject]]) for subject, score in scores.items()]))
         for region, columns in (regions or {}).items()})
