"""One fMRI representation against every model, as the rsa stage reports it: :func:`compare_models`
runs the group Mantel test (shared relabellings for all models), a group bootstrap per model
(shared resamples), the study's Pearson r and the noise ceiling, and returns a
:class:`RepresentationComparison` whose rows name every statistic once
(:data:`ModelComparison.STATISTICS`); :func:`compare_regions` does it for every ROI of the
representation at once. :func:`model_difference` and :func:`interaction` compare models within a
ROI and across ROIs on the same resamples of images and subjects, as rsatoolbox's pairwise model
tests do.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from neurolatent.science._docs import fill_doc
from neurolatent.science.constraints import Count, Fraction, Seed, checked
from neurolatent.science.rsa.accelerated import Inference
from neurolatent.science.rsa.compare import Comparison, Triangle, compare, naive_p
from neurolatent.science.rsa.family import group_family
from neurolatent.science.rsa.inference import (GroupBootstrapResult, GroupPermutationResult, group_bootstrap,
                                               group_mantel_models, noise_ceiling)
from neurolatent.science.rsa.rdm import RDM, union_vectors
from neurolatent.science.stats import named_rng


@dataclass(frozen=True)
class ModelComparison:
    """One fMRI representation against one model: the group (mean over subjects) and each subject.

    test : the group Mantel test (:func:`group_mantel_models`); boot : the group bootstrap
    (:func:`group_bootstrap`); r_pearson : (n_subjects,) the study's Pearson r per subject; cells :
    (n_subjects,) RDM cells compared per subject; stimuli : (n_subjects,) images per subject; ci : the
    confidence level of the intervals.
    """

    model: str
    subjects: tuple[str, ...]
    stimuli: np.ndarray
    test: GroupPermutationResult
    boot: GroupBootstrapResult
    r_pearson: np.ndarray
    cells: np.ndarray
    ci: float

    #: the statistics of every row, group and subject, in the order tables list them:
    #: r (the comparison), p (permutation) and how it was made (p_method: permutation, gpd, gamma or
    #: bound, :data:`neurolatent.science.rsa.accelerated.METHODS`), the CI, the study's Pearson r and
    #: its naive p (cells counted as independent: the study's wrong degrees of freedom)
    STATISTICS = ("r", "p", "p_method", "ci_low", "ci_high", "r_pearson", "p_naive_wrong_df")

    def _interval(self, replicates: np.ndarray) -> tuple[float, float]:
        tail = (1 - self.ci) / 2
        return float(np.quantile(replicates, tail)), float(np.quantile(replicates, 1 - tail))

    def group_row(self) -> dict[str, float | str]:
        """The group's statistics (:data:`STATISTICS`): r and p of the mean over subjects, its
        bootstrap CI, the mean Pearson r and its naive p over every subject's cells."""
        low, high = self._interval(self.boot.replicates)
        pearson = float(np.mean(self.r_pearson))
        return {"model": self.model, "r": self.test.statistic, "p": self.test.p, "p_method": self.test.p_method,
                "ci_low": low, "ci_high": high,
                "r_pearson": pearson, "p_naive_wrong_df": naive_p(pearson, int(self.cells.sum()))}

    def subject_rows(self) -> list[dict[str, float | str]]:
        """Each subject's statistics (:data:`STATISTICS`, from its part of the shared permutations and
        resamples), with its subject, stimuli and cells."""
        rows = []
        for s, subject in enumerate(self.subjects):
            low, high = self._interval(self.boot.subject_replicates[s])
            rows.append({"model": self.model, "subject": subject, "stimuli": int(self.stimuli[s]),
                         "r": float(self.test.subject_statistics[s]), "p": float(self.test.subject_p[s]),
                         "p_method": self.test.subject_p_method[s],
                         "ci_low": low, "ci_high": high, "r_pearson": float(self.r_pearson[s]),
                         "p_naive_wrong_df": naive_p(float(self.r_pearson[s]), int(self.cells[s])),
                         "cells": int(self.cells[s])})
        return rows


@dataclass(frozen=True)
class RepresentationComparison:
    """Every model against one fMRI representation's subject RDMs, with its noise ceiling.

    models : {model name: :class:`ModelComparison`}, in the order given; ceiling : (lower, upper)
    noise ceiling of the representation (NaN with one subject).
    """

    models: dict[str, ModelComparison]
    ceiling: tuple[float, float]

    def group_rows(self, extra: dict[str, dict[str, GroupPermutationResult]] | None = None) -> list[dict]:
        """One row per model: its group statistics, the noise ceiling, and for each ``extra`` test
        (``{"cka": {model: result}}``) columns ``<name>`` and ``<name>_p``."""
        rows = []
        for model, comparison in self.models.items():
            row = comparison.group_row()
            for name, results in (extra or {}).items():
                row |= {name: results[model].statistic, f"{name}_p": results[model].p,
                        f"{name}_p_method": results[model].p_method}
            rows.append(row | {"noise_ceiling_lower": self.ceiling[0], "noise_ceiling_upper": self.ceiling[1]})
        return rows

    def subject_rows(self, extra: dict[str, dict[str, GroupPermutationResult]] | None = None) -> list[dict]:
        """One row per model and subject (:meth:`ModelComparison.subject_rows`), with ``extra``
        tests' subject statistics as in :meth:`group_rows`."""
        rows = []
        for model, comparison in self.models.items():
            for s, row in enumerate(comparison.subject_rows()):
                cells = row.pop("cells")
                for name, results in (extra or {}).items():
                    row |= {name: float(results[model].subject_statistics[s]),
                            f"{name}_p": float(results[model].subject_p[s]),
                            f"{name}_p_method": results[model].subject_p_method[s]}
                rows.append(row | {"cells": cells})
        return rows


@checked(method=Comparison, permutations=Count, bootstrap=Count, ci=Fraction, seed=Seed, triangle=Triangle,
         inference=Inference)
@fill_doc
def compare_models(fmri_rdms: list[RDM], model_rdms: dict[str, RDM], *, method: Comparison, permutations: int,
                   bootstrap: int, ci: float, seed: int, name: str, triangle: Triangle = "upper",
                   device: str = "cpu", progress: Callable[[int], object] | None = None,
                   map_chunks: Callable[[Callable, list], list] | None = None,
                   inference: Inference = "exact") -> RepresentationComparison:
    """Every model against the subjects' RDMs of one fMRI representation: the group Mantel test of
    all models under shared relabellings (:func:`group_mantel_models`), a group bootstrap per
    model (:func:`group_bootstrap`), the study's Pearson r per subject, and the noise ceiling on the
    image pairs the subjects share.

    Parameters
    ----------
    fmri_rdms : one RDM per subject (``meta["subject"]`` names it), over the images it saw
    model_rdms : {name: RDM over (at least) the union of those images}, all in one image order
    %(method_comparison)s
    %(permutations)s
    %(bootstrap)s
    ci : the confidence level of the intervals, in (0, 1)
    seed, name : the random streams: the permutations draw from ``named_rng(seed, name)``, the
        bootstrap from ``named_rng(seed, name, "bootstrap")``, the same resamples for every model (and
        for every call with this name on the same subjects' images: every ROI of a representation),
        so that differences between models and ROIs are paired (:func:`model_difference`)
    %(triangle)s
    %(device)s
    progress : called with the number of replicates done (permutations, then each model's resamples)
    map_chunks : where the permutation chunks are computed (:func:`group_mantel_models`)
    inference : how the p's are made from the nulls (:func:`neurolatent.science.rsa.accelerated.p_values`:
        exact, the permutation p; tail or gamma, a fit to the null)
    """
    return compare_regions({"": fmri_rdms}, model_rdms, method=method, permutations=permutations,
                           bootstrap=bootstrap, ci=ci, seed=seed, name=name, triangle=triangle, device=device,
                           progress=progress, map_chunks=map_chunks, inference=inference)[""]


@checked(method=Comparison, permutations=Count, bootstrap=Count, ci=Fraction, seed=Seed, triangle=Triangle,
         inference=Inference)
def compare_regions(region_rdms: dict[str, list[RDM]], model_rdms: dict[str, RDM], *, method: Comparison,
                    permutations: int, bootstrap: int, ci: float, seed: int, name: str, triangle: Triangle = "upper",
                    device: str = "cpu", progress: Callable[[int], object] | None = None,
                    map_chunks: Callable[[Callable, list], list] | None = None,
                    inference: Inference = "exact") -> dict[str, RepresentationComparison]:
    """:func:`compare_models` of every region of one representation (its ROIs: RDMs of each subject
    over the same images), under the same relabellings and resamples (``name``): the results of one
    :func:`compare_models` call per region, with the work the regions share done once
    (:func:`~neurolatent.science.rsa.family.group_family`; Kendall's tau-a and the full square
    take the per-region functions). Returns {region: RepresentationComparison} in the given order."""
    regions = list(region_rdms)
    first_model = next(iter(model_rdms.values()))
    ceilings = {}
    for region, fmri_rdms in region_rdms.items():
        if len(fmri_rdms) >= 2:
            seen = {stimulus for rdm in fmri_rdms for stimulus in rdm.stimuli}
            ceilings[region] = noise_ceiling(union_vectors(fmri_rdms, [s for s in first_model.stimuli if s in seen]),
                                             method)
        else:
            ceilings[region] = (float("nan"), float("nan"))
    if triangle == "upper" and method != "kendall_tau_a":
        family = group_family(region_rdms, model_rdms, method, permutations, bootstrap, named_rng(seed, name),
                              named_rng(seed, name, "bootstrap"), device=device, progress=progress,
                              map_chunks=map_chunks)
        tests, boots, pearson = family.tests, family.boots, family.pearson
    else:
        tests, boots, pearson = {}, {}, {}
        for region, fmri_rdms in region_rdms.items():
            tests[region] = group_mantel_models(fmri_rdms, model_rdms, method, permutations, named_rng(seed, name),
                                                device=device, triangle=triangle, progress=progress,
                                                map_chunks=map_chunks)
            boots[region], pearson[region] = {}, {}
            for model, model_rdm in model_rdms.items():
                boots[region][model] = group_bootstrap(fmri_rdms, model_rdm, method, bootstrap,
                                                       named_rng(seed, name, "bootstrap"), triangle=triangle)
                pearson[region][model] = np.array([compare(model_rdm.subset(rdm.stimuli).upper, rdm.upper, "pearson",
                                                           triangle) for rdm in fmri_rdms])
                if progress is not None:
                    progress(bootstrap)
    if inference != "exact":
        tests = {region: {model: test.with_p_values(inference) for model, test in found.items()}
                 for region, found in tests.items()}
    out = {}
    for region in regions:
        fmri_rdms = region_rdms[region]
        subjects = tuple(str(rdm.meta.get("subject", rdm.name)) for rdm in fmri_rdms)
        stimuli = np.array([rdm.n for rdm in fmri_rdms])
        cells = np.array([rdm.n ** 2 if triangle == "full" else rdm.n * (rdm.n - 1) // 2 for rdm in fmri_rdms])
        out[region] = RepresentationComparison(
            {model: ModelComparison(model, subjects, stimuli, tests[region][model], boots[region][model],
                                    pearson[region][model], cells, ci) for model in model_rdms},
            ceilings[region])
    return out


@dataclass(frozen=True)
class Difference:
    """A difference of comparisons with its bootstrap interval: estimate (the observed difference of
    group r), ci_low and ci_high (percentile interval at the comparisons' level), p (two-sided: twice
    the share of replicates on the other side of 0, with the observed one counted)."""

    estimate: float
    ci_low: float
    ci_high: float
    p: float

    def row(self) -> dict[str, float]:
        """{estimate, ci_low, ci_high, p}."""
        return {"estimate": self.estimate, "ci_low": self.ci_low, "ci_high": self.ci_high, "p": self.p}


def subject_draws(n_subjects: int, count: int, random_state: int | np.random.Generator) -> np.ndarray:
    """(count, n_subjects) int: each row a resample of the subjects with replacement."""
    return np.random.default_rng(random_state).integers(0, n_subjects, size=(count, n_subjects))


def _difference(observed: float, per_subject: np.ndarray, draws: np.ndarray, ci: float) -> Difference:
    """per_subject : (n_subjects, n_bootstrap) the difference on each image resample per subject;
    draws : (n_bootstrap, n_subjects) the subjects each replicate averages."""
    if draws.shape != per_subject.T.shape:
        raise ValueError(f"subject draws of shape {draws.shape} for replicates of shape {per_subject.shape}")
    replicates = per_subject[draws.T, np.arange(per_subject.shape[1])].mean(axis=0)
    tail = (1 - ci) / 2
    other_side = min(int((replicates <= 0).sum()), int((replicates >= 0).sum()))
    return Difference(float(observed), float(np.quantile(replicates, tail)), float(np.quantile(replicates, 1 - tail)),
                      min(1.0, 2 * (1 + other_side) / (1 + len(replicates))))


def model_difference(first: ModelComparison, second: ModelComparison, draws: np.ndarray) -> Difference:
    """Is ``first`` closer to the fMRI representation than ``second``? r of first minus r of second,
    with a bootstrap over images and subjects: each replicate resamples the images (the resamples
    both comparisons share, :func:`compare_models`) and the subjects (``draws``:
    :func:`subject_draws`)."""
    return _difference(first.test.statistic - second.test.statistic,
                       first.boot.subject_replicates - second.boot.subject_replicates, draws, first.ci)


def interaction(first_a: ModelComparison, first_b: ModelComparison, second_a: ModelComparison,
                second_b: ModelComparison, draws: np.ndarray) -> Difference:
    """The ROI x model interaction a double dissociation needs: (model a minus model b in the first
    ROI) minus (a minus b in the second ROI), each ROI's comparisons on the same resamples of images
    and subjects (:func:`model_difference`)."""
    observed = ((first_a.test.statistic - first_b.test.statistic)
                - (second_a.test.statistic - second_b.test.statistic))
    per_subject = ((first_a.boot.subject_replicates - first_b.boot.subject_replicates)
                   - (second_a.boot.subject_replicates - second_b.boot.subject_replicates))
    return _difference(observed, per_subject, draws, first_a.ci)


@dataclass(frozen=True)
class Tables:
    """One fMRI representation's results as the tables the rsa stage writes, each a list of rows:
    group (a row per model over the whole region: :meth:`RepresentationComparison.group_rows` with
    its family-wise p), subjects (a row per model and subject), rois (a row per region and model),
    pairs (every two models within a region: :func:`model_difference`) and interactions (every two
    models in every two regions other than the whole: :func:`interaction`)."""

    group: list[dict]
    subjects: list[dict]
    rois: list[dict]
    pairs: list[dict]
    interactions: list[dict]


def representation_tables(fmri: str, comparisons: dict[str, RepresentationComparison],
                          fwe: dict[tuple[str, str], tuple[float, str]], draws: np.ndarray, whole: str,
                          extra: dict[str, dict[str, GroupPermutationResult]] | None = None) -> Tables:
    """The :class:`Tables` of one representation named ``fmri`` (every row carries it as ``fmri``).

    Parameters
    ----------
    comparisons : {region: RepresentationComparison} (:func:`compare_regions`), ``whole`` among them
    fwe : {(region, model): (p_fwe, how it was made)} (:func:`~neurolatent.science.rsa.inference.familywise_p`)
    draws : (n_bootstrap, n_subjects) the subjects each replicate of a difference averages
        (:func:`subject_draws`)
    whole : the region of the group and subject tables (every ROI together); it has no interactions
    extra : tests of the whole region reported beside RSA's, as in :meth:`RepresentationComparison.group_rows`
    """
    overall = comparisons[whole]
    group = [row | {"p_fwe": fwe[whole, row["model"]][0], "p_fwe_method": fwe[whole, row["model"]][1]}
             for row in overall.group_rows(extra)]
    rois, pairs, interactions = [], [], []
    for region, comparison in comparisons.items():
        for model, found in comparison.models.items():
            row = found.group_row()
            rois.append({"roi": region, "fmri": fmri, "model": model, "r": row["r"], "ci_low": row["ci_low"],
                         "ci_high": row["ci_high"], "p": row["p"], "p_method": row["p_method"],
                         "p_fwe": fwe[region, model][0], "p_fwe_method": fwe[region, model][1],
                         "ceiling_low": comparison.ceiling[0], "ceiling_high": comparison.ceiling[1]})
        for first, second in itertools.combinations(comparison.models, 2):
            difference = model_difference(comparison.models[first], comparison.models[second], draws)
            pairs.append({"roi": region, "fmri": fmri, "model_a": first, "model_b": second, **difference.row()})
    areas = [region for region in comparisons if region != whole]
    for roi_a, roi_b in itertools.combinations(areas, 2):
        first, second = comparisons[roi_a].models, comparisons[roi_b].models
        for model_a, model_b in itertools.combinations(first, 2):
            found = interaction(first[model_a], first[model_b], second[model_a], second[model_b], draws)
            interactions.append({"fmri": fmri, "roi_a": roi_a, "roi_b": roi_b, "model_a": model_a,
                                 "model_b": model_b, **found.row()})
    return Tables([{"comparison": f"{fmri}: {row['model']}", "fmri": fmri, **row} for row in group],
                  [{"fmri": fmri, **row} for row in overall.subject_rows(extra)], rois, pairs, interactions)
