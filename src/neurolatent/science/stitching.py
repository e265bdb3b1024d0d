"""Translating between an fMRI latent space and an image latent space, scored on held-out stimuli:
identification (fMRI -> image latents), reconstruction scores (pictures decoded from predicted
latents), and encoding (image latents -> each voxel). The mappings themselves are
:mod:`neurolatent.science.mapping`'s estimators; this module is where they meet data, so that no
test stimulus ever reaches a fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator

from neurolatent.science.identification import Identification, identification, row_correlations
from neurolatent.science.mapping import RidgeMapping
from neurolatent.science.voxelwise import noise_ceiling_r, voxelwise_r
from neurolatent.science.stats import permutation_p
from neurolatent.science.stimuli import StimulusMatrix, average_repeats
from neurolatent.science.constraints import Count, RandomState, checked


def fit_on_training(mapping: BaseEstimator, x: StimulusMatrix, y: StimulusMatrix, names: tuple[str, ...],
                    test_names: list[str]) -> BaseEstimator:
    """Fit ``mapping`` from ``x`` to ``y`` on ``names`` less ``test_names`` (rows joined by name):
    the one place where a mapping meets data, so no test row can reach a fit."""
    test = set(test_names)
    train = [name for name in names if name not in test]
    return mapping.fit(x.rows(train), y.rows(train))


def identify_held_out(mapping: BaseEstimator, x: StimulusMatrix, y: StimulusMatrix, test_names: list[str],
                      permutations: int, random_state: np.random.Generator) -> Identification:
    """Fit ``mapping`` on x's images other than ``test_names``, then identify the test images among
    each other from their predicted latents (:func:`neurolatent.science.identification.identification`)."""
    fitted = fit_on_training(mapping, x, y, x.stimuli, test_names)
    predicted, targets = fitted.transform(x.rows(test_names), y.rows(test_names))
    return identification(predicted, targets, permutations, random_state)


@dataclass(frozen=True)
class GroupIdentification:
    """Identification averaged over subjects: two_way (mean 2-way accuracy), p (permutation p of that
    mean against the mean of the subjects' nulls), chance_high (the null's 97.5th percentile),
    top1 and top5 (mean retrieval accuracies)."""

    two_way: float
    p: float
    chance_high: float
    top1: float
    top5: float

    #: the statistics, named as tables and metrics name them
    STATISTICS = ("two_way", "p", "chance_high", "top1", "top5")

    @classmethod
    def of_subjects(cls, results: list[Identification]) -> "GroupIdentification":
        """The mean over subjects' :class:`~neurolatent.science.identification.Identification` results."""
        two_way = float(np.mean([r.two_way for r in results]))
        null = np.mean([r.null for r in results], axis=0)
        return cls(two_way, permutation_p(two_way, null), float(np.quantile(null, 0.975)),
                   float(np.mean([r.top1 for r in results])), float(np.mean([r.top5 for r in results])))

    @classmethod
    def of_one(cls, result: Identification) -> "GroupIdentification":
        """One mapping's identification (the pooled one) as a row of the same table."""
        return cls(result.two_way, result.p, result.null_high, result.top1, result.top5)

    def row(self) -> dict[str, float]:
        """{statistic: value} for every name of :data:`STATISTICS`."""
        return {name: getattr(self, name) for name in self.STATISTICS}


def pooled_latents(per_subject: dict[str, StimulusMatrix], test: set[str]) -> tuple[StimulusMatrix, StimulusMatrix]:
    """Every subject's training rows (images no subject has in its test set), and the test images'
    latents averaged over the subjects who saw them."""
    train_rows, train_names = [], []
    for sample in per_subject.values():
        keep = [name for name in sample.stimuli if name not in test]
        train_rows.append(sample.rows(keep))
        train_names += keep
    tests = StimulusMatrix("pooled/test", np.concatenate([s.rows([n for n in s.stimuli if n in test])
                                                          for s in per_subject.values()]),
                           tuple(n for s in per_subject.values() for n in s.stimuli if n in test))
    return (StimulusMatrix("pooled/train", np.concatenate(train_rows), tuple(train_names)),
            average_repeats(tests, "pooled/test"))


@checked(permutations=Count, random_state=RandomState)
def picture_scores(reconstructed: np.ndarray, originals: np.ndarray, permutations: int,
                   random_state: np.random.Generator) -> dict[str, float]:
    """How well reconstructed pictures match the originals, pictures (n, 3, H, W) in [0, 1]:
    ``pixel_r`` (mean pixel correlation with its own original), ``pixel_r_other_images`` (with the
    other test images: the chance level), ``ssim`` (mean structural similarity), ``two_way`` and
    ``two_way_p`` (2-way identification in pixel space)."""
    from skimage.metrics import structural_similarity

    flat_r, flat_o = reconstructed.reshape(len(reconstructed), -1), originals.reshape(len(originals), -1)
    similarity = row_correlations(flat_r, flat_o)
    pixel_r = np.diag(similarity)
    other = similarity[~np.eye(len(similarity), dtype=bool)]
    ssim = [structural_similarity(r, o, channel_axis=0, data_range=1.0) for r, o in zip(reconstructed, originals)]
    ident = identification(flat_r, flat_o, permutations, random_state)
    return {"pixel_r": float(pixel_r.mean()), "pixel_r_other_images": float(other.mean()),
            "ssim": float(np.mean(ssim)), "two_way": ident.two_way, "two_way_p": ident.p}


@dataclass(frozen=True)
class Encoding:
    """An encoding model's held-out scores for one subject: r (n_voxels,) voxelwise Pearson r on the
    test images; median_r; median_r_shuffled (the same fit with the training images' features
    shuffled among them: the control); median_r_normalised (median of r over the noise ceiling, among
    voxels whose ceiling exceeds 0.1; NaN without repeated test images). The medians are numpy
    scalars of r's dtype: a mean over subjects is then taken in that precision."""

    r: np.ndarray
    median_r: np.floating
    median_r_shuffled: np.floating
    median_r_normalised: np.floating | float


def encode_held_out(features: StimulusMatrix, voxels: StimulusMatrix, test_names: list[str],
                    random_state: np.random.Generator, trials: StimulusMatrix | None = None) -> Encoding:
    """Ridge from image features to every voxel (one penalty per voxel), fitted on the subject's
    other images, scored on ``test_names``; ``trials`` (each presentation's voxels) gives the
    noise ceiling from repeats of the test images."""
    fitted = fit_on_training(RidgeMapping(alpha_per_target=True), features, voxels, voxels.stimuli, test_names)
    r = voxelwise_r(*fitted.transform(features.rows(test_names), voxels.rows(test_names)))
    train = [n for n in voxels.stimuli if n not in set(test_names)]
    shuffled = StimulusMatrix("shuffled", features.rows(train)[random_state.permutation(len(train))], tuple(train))
    control = fit_on_training(RidgeMapping(alpha_per_target=True), shuffled, voxels, voxels.stimuli, test_names)
    null = np.nanmedian(voxelwise_r(*control.transform(features.rows(test_names), voxels.rows(test_names))))
    normalised = np.nan
    if trials is not None:
        in_test = np.isin(np.asarray(trials.stimuli), test_names)
        ceiling = noise_ceiling_r(trials.matrix[in_test], np.asarray(trials.stimuli)[in_test])
        usable = ceiling > 0.1
        normalised = np.nanmedian(r[usable] / ceiling[usable]) if usable.any() else np.nan
    return Encoding(r, np.nanmedian(r), null, normalised)
