"""Translating between an fMRI latent space and an image latent space, scored on held-out stimuli:
identification (fMRI -> image latents) and reconstruction (pictures decoded from predicted
latents). The mappings themselves are :mod:`neurolatent.science.mapping`'s estimators; this module
is where they meet data, so that no test stimulus ever reaches a fit (the other direction, image
latents -> each voxel, is :mod:`neurolatent.science.prediction`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator

from neurolatent.science.identification import Identification, identification, row_correlations
from neurolatent.science.mapping import RidgeMapping
from neurolatent.science.stats import named_rng, permutation_p
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
class Reconstruction:
    """Pictures reconstructed from each fMRI representation, scored against the originals.

    ``scores`` {fMRI kind: {score: the mean over subjects}} (:func:`picture_scores`' names);
    ``ceiling`` the same scores of the decoder's own reconstruction of the first subject's test
    images from their true latents (the best this route can do); ``shown`` (label, originals, the
    decoder's own, from fMRI) the first subject's first ``shown`` test pictures, each (k, 3, H, W).
    """

    scores: dict[str, dict[str, float]]
    ceiling: dict[str, float]
    shown: tuple[str, np.ndarray, np.ndarray, np.ndarray] | None


def reconstruct_held_out(fmri: dict[str, dict[str, StimulusMatrix]], target: StimulusMatrix,
                         originals: dict[str, np.ndarray], test_of: dict[str, list[str]],
                         decode: Callable[[np.ndarray], np.ndarray], permutations: int, seed: int,
                         shown: int = 8) -> Reconstruction:
    """Ridge (:class:`~neurolatent.science.mapping.RidgeMapping`) from each subject's fMRI
    representation to the image autoencoder's full latents ``target`` (n_images, C*h*w), fitted on
    the subject's images other than ``test_of[subject]``, its predictions of the test images
    decoded and scored (:func:`picture_scores`).

    fmri : {kind: {subject: (n_images, d)}}; originals : {subject: (n_test, 3, H, W) in [0, 1]} the
    test pictures in ``test_of``'s order; decode : flattened latents (n, C*h*w) -> pictures (n, 3,
    H, W) in [0, 1]; permutations : of the 2-way identification's null; seed : of its random
    streams, named ``reconstruct/<kind>/<subject>`` (``reconstruct/ceiling/<subject>``).
    """
    scores: dict[str, dict[str, float]] = {}
    ceiling: dict[str, float] = {}
    first = None
    for kind, per_subject in fmri.items():
        own_scores = []
        for subject, x in per_subject.items():
            test = test_of[subject]
            mapping = fit_on_training(RidgeMapping(), x, target, x.stimuli, test)
            decoded = decode(mapping.predict(x.rows(test)))
            own_scores.append(picture_scores(decoded, originals[subject], permutations,
                                             named_rng(seed, f"reconstruct/{kind}/{subject}")))
            if first is None:
                own = decode(target.rows(test))
                first = (f"{kind}, {subject}", originals[subject][:shown], own[:shown], decoded[:shown])
                ceiling = picture_scores(own, originals[subject], permutations,
                                         named_rng(seed, f"reconstruct/ceiling/{subject}"))
        scores[kind] = {field: float(np.mean([s[field] for s in own_scores])) for field in own_scores[0]}
    return Reconstruction(scores, ceiling, first)
