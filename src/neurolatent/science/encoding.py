"""Encoding models over several feature spaces at once: banded ridge and the share of variance
each space explains.

Predicting each voxel from one feature space at a time says how well each space predicts, not
what each explains given the others. Here the spaces ("bands") are fitted together by banded ridge
(:mod:`neurolatent.science.banded`), one penalty per band and voxel chosen by cross-validation on
the training images. Two ways to divide the held-out R^2 among the bands:

- :func:`band_split`, one fit of all bands, each band's share by the product measure (Dupre la
  Tour et al. 2022, himalaya's ``r2_score_split``): the shares sum to the joint R^2; one fit
  whatever the number of bands.
- :func:`variance_partition`, every non-empty subset of the bands fitted the same way, the
  subsets' held-out R^2 partitioned into each band's unique part and the parts sets of bands
  share (de Heer et al. 2017; Lescroart, Stansbury & Gallant 2015): 2^k - 1 fits, for a few bands.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import ClassVar

import numpy as np

from neurolatent.science._docs import fill_doc
from neurolatent.science.banded import ALPHAS, BACKENDS, Backend, BandedRidgeCV
from neurolatent.science.constraints import Count, CrossValidation, Grid, Seed, checked
from neurolatent.science.peers import roi_scores
from neurolatent.science.voxelwise import voxelwise_r

__all__ = ["ALPHAS", "BACKENDS", "BandSplit", "BandedRidgeCV", "RegionParts", "VariancePartition", "band_split",
           "bootstrap_parts", "explainable_fraction", "group_parts", "held_out_r2", "partition_parts", "region_parts",
           "variance_partition", "winning_band"]


def _as_index(selection: np.ndarray, n: int, name: str) -> np.ndarray:
    """Row indices from a boolean mask over n rows or an index array."""
    selection = np.asarray(selection)
    if selection.dtype == bool:
        if selection.shape != (n,):
            raise ValueError(f"{name}: a boolean mask needs {n} entries, got shape {selection.shape}")
        return np.flatnonzero(selection)
    if selection.ndim != 1 or not np.issubdtype(selection.dtype, np.integer):
        raise ValueError(f"{name}: a boolean mask or an integer index array, got {selection.dtype}")
    if len(selection) and (selection.min() < 0 or selection.max() >= n):
        raise ValueError(f"{name}: indices outside 0..{n - 1}")
    return selection


def held_out_r2(predicted: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Per-column coefficient of determination, 1 - SSE/SST, of ``predicted`` for ``actual`` (both
    (n_images, n_voxels)); SST about ``actual``'s own mean. Negative when a prediction does worse
    than that mean; NaN for a constant column."""
    actual = np.asarray(actual, dtype=np.float64)
    sse = ((actual - predicted) ** 2).sum(axis=0)
    sst = ((actual - actual.mean(axis=0)) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sst > 0, 1.0 - sse / sst, np.nan)


@dataclass(frozen=True)
class VariancePartition:
    """Held-out R^2 of every non-empty subset of the bands, per voxel, and its partition.

    ``bands`` the band names in the order given; ``r2`` {subset (a tuple of names in that order):
    (n_voxels,) held-out R^2 of the banded ridge fitted on that subset}; ``penalties`` {subset:
    (len(subset), n_voxels) per-band penalties of that fit}; ``predictions`` {subset: (n_test,
    n_voxels) its predictions of the test images}; ``test_responses`` (n_test, n_voxels).
    """

    #: what a single band's part is called
    PART: ClassVar[str] = "unique"

    bands: tuple[str, ...]
    r2: dict[tuple[str, ...], np.ndarray]
    penalties: dict[tuple[str, ...], np.ndarray]
    predictions: dict[tuple[str, ...], np.ndarray]
    test_responses: np.ndarray

    @property
    def full(self) -> np.ndarray:
        """(n_voxels,) held-out R^2 of all bands together."""
        return self.r2[self.bands]

    @property
    def r(self) -> np.ndarray:
        """(n_voxels,) Pearson r of all bands' prediction and the test responses (Algonauts' accuracy)."""
        return voxelwise_r(self.predictions[self.bands], self.test_responses)

    @property
    def unique(self) -> dict[str, np.ndarray]:
        """{band: (n_voxels,) R^2 of all bands minus R^2 of all bands but this one}."""
        return {band: self.parts[(band,)] for band in self.bands}

    @property
    def shared(self) -> dict[tuple[str, ...], np.ndarray]:
        """{subset of two or more bands: (n_voxels,) the variance those bands all explain and no
        other band does}."""
        return {subset: part for subset, part in self.parts.items() if len(subset) > 1}

    @property
    def parts(self) -> dict[tuple[str, ...], np.ndarray]:
        """Every region of the bands' Venn diagram: {subset S: (n_voxels,) the variance explained
        by every band of S and by no band outside S}, by inclusion-exclusion over the subsets'
        R^2. The parts sum to :attr:`full`; a single band's part is its unique variance."""
        return partition_parts(self.bands, self.r2)

    @property
    def band_penalties(self) -> np.ndarray:
        """(n_bands, n_voxels) each band's penalty in the fit of all bands."""
        return self.penalties[self.bands]

    def resampled_parts(self, counts: np.ndarray) -> dict:
        """:attr:`parts` and ``"full"`` on bootstrap draws over test images (``counts`` as in
        :meth:`resampled_r2`): {part: (n_draws, n_voxels)}."""
        r2 = self.resampled_r2(counts)
        return partition_parts(self.bands, r2) | {"full": r2[self.bands]}

    def resampled_r2(self, counts: np.ndarray) -> dict[tuple[str, ...], np.ndarray]:
        """Bootstrap over test images without refitting: ``counts`` (n_draws, n_test) how many
        times each test image is in each draw; returns {subset: (n_draws, n_voxels) held-out R^2
        of that subset's fit on each draw} (:func:`partition_parts` turns them into parts)."""
        counts = _checked_counts(counts, len(self.test_responses))
        # each draw's squared errors over the whole test set's SST (scaled to the draw's size): R^2
        # is then linear in the counts and its draws centre on the estimate; a draw's own SST (a
        # ratio of two resampled sums) skews them (measured: with 10 test images, the percentile
        # interval of the full model's R^2 missed its estimate)
        sst = counts.sum(axis=1, keepdims=True) / len(self.test_responses) * (
            (self.test_responses - self.test_responses.mean(axis=0)) ** 2).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return {subset: np.where(sst > 0, 1.0 - counts @ (self.test_responses - predicted) ** 2 / sst, np.nan)
                    for subset, predicted in self.predictions.items()}


def _checked_counts(counts: np.ndarray, n_test: int) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[1] != n_test:
        raise ValueError(f"counts must be (n_draws, {n_test}), got {counts.shape}")
    return counts


@dataclass(frozen=True)
class BandSplit:
    """One banded-ridge fit of all the bands, and each band's share of its held-out R^2 by the
    product measure (himalaya's ``r2_score_split``; Dupre la Tour et al. 2022, NeuroImage 264).

    The joint prediction is the sum of the bands' terms ``X_k b_k``; band k's share is
    ``sum_i (2 y_i p_ki - p_ki sum_j p_ji) / sum_i y_i^2`` over test images i (responses ``y`` and
    terms ``p`` centred on the test images), and the shares sum to the joint R^2. A share credits a
    band with what its term predicts, counting its overlap with the other terms half to each: it
    is not the unique variance of :func:`variance_partition` (which needs a fit per subset of
    bands), and a band that only fits noise gets a share near or below zero. Its
    ``r2_score_split`` scores data centred on the test images, so the shares sum to the joint
    R^2 of the centred prediction, :attr:`full` plus the prediction's squared mean error.

    ``bands`` the names in the order given; ``penalties`` (n_bands, n_voxels) each band's penalty;
    ``band_predictions`` (n_bands, n_test, n_voxels) each band's term on the test images, centred
    on them; ``test_responses`` (n_test, n_voxels) centred on the test images; ``residuals``
    (n_test, n_voxels) the responses less the joint prediction, uncentred.
    """

    #: what a single band's part is called
    PART: ClassVar[str] = "share"

    bands: tuple[str, ...]
    penalties: np.ndarray
    band_predictions: np.ndarray
    test_responses: np.ndarray
    residuals: np.ndarray

    @property
    def shares(self) -> dict[str, np.ndarray]:
        """{band: (n_voxels,) its share of the held-out R^2}; NaN for a constant voxel."""
        return dict(zip(self.bands, self.resampled_shares(np.ones((1, len(self.test_responses))))[:, 0]))

    @property
    def full(self) -> np.ndarray:
        """(n_voxels,) held-out R^2 of all bands' prediction, as :func:`held_out_r2` and
        :attr:`VariancePartition.full`. The shares sum to it plus the squared mean error of the
        prediction over the test images' sum of squares (r2_score_split scores centred data): a
        little more where the test images' mean differs from the training images'."""
        return self.resampled_parts(np.ones((1, len(self.test_responses))))["full"][0]

    @property
    def r(self) -> np.ndarray:
        """(n_voxels,) Pearson r of the joint prediction and the test responses (Algonauts' accuracy)."""
        return voxelwise_r(self.band_predictions.sum(axis=0), self.test_responses)

    @property
    def parts(self) -> dict[tuple[str, ...], np.ndarray]:
        """{(band,): its share}: the parts, as :attr:`VariancePartition.parts` names them."""
        return {(band,): share for band, share in self.shares.items()}

    @property
    def band_penalties(self) -> np.ndarray:
        """(n_bands, n_voxels) each band's penalty."""
        return self.penalties

    def resampled_shares(self, counts: np.ndarray) -> np.ndarray:
        """(n_bands, n_draws, n_voxels) the shares on bootstrap draws over test images, without
        refitting (``counts`` (n_draws, n_test) how often each test image is in each draw); as
        :meth:`VariancePartition.resampled_r2`, over the whole test set's sum of squares scaled to
        the draw's size, so that the shares are linear in the counts and centre on the estimate."""
        counts = _checked_counts(counts, len(self.test_responses))
        y, terms = self.test_responses, self.band_predictions
        sst = counts.sum(axis=1, keepdims=True) / len(y) * (y ** 2).sum(axis=0)
        joint = terms.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.stack([np.where(sst > 0, counts @ (2 * y * term - term * joint) / sst, np.nan)
                             for term in terms])

    def resampled_parts(self, counts: np.ndarray) -> dict:
        """{(band,): (n_draws, n_voxels) its share, "full": the R^2 of all bands} on bootstrap draws."""
        shares = self.resampled_shares(counts)
        counts = _checked_counts(counts, len(self.test_responses))
        sst = counts.sum(axis=1, keepdims=True) / len(counts[0]) * (self.test_responses ** 2).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            full = np.where(sst > 0, 1.0 - counts @ self.residuals ** 2 / sst, np.nan)
        return {(band,): share for band, share in zip(self.bands, shares)} | {"full": full}


@checked(alphas=Grid, n_iter=Count, cv=CrossValidation, backend=Backend, random_state=Seed)
@fill_doc
def band_split(bands: Mapping[str, np.ndarray], responses: np.ndarray, *, train, test, alphas: Sequence[float] = ALPHAS,
               n_iter: int = 20, cv=5, backend: str = "numpy", random_state: int = 0,
               progress: Callable[[int], object] | None = None) -> BandSplit:
    """Fit banded ridge once on all ``bands`` and split its held-out R^2 among them (:class:`BandSplit`):
    one fit instead of one per subset of bands (:func:`variance_partition`), so it scales to many bands.

    Parameters
    ----------
    %(bands)s
    %(alphas)s
    %(n_iter)s
    %(cv)s
    %(backend)s
    %(banded_random_state)s
    %(fit_progress)s
    """
    names, responses, train, test = _checked(bands, responses, train, test, "band_split")
    model = BandedRidgeCV(alphas, n_iter, cv, backend, random_state, progress).fit(
        [np.asarray(bands[b])[train] for b in names], responses[train])
    terms = model.predict_bands([np.asarray(bands[b])[test] for b in names])
    actual = responses[test]
    return BandSplit(names, model.penalties_, terms - terms.mean(axis=1, keepdims=True),
                     actual - actual.mean(axis=0), actual - terms.sum(axis=0) - model.intercept_)


def partition_parts(bands: tuple[str, ...], r2: Mapping[tuple[str, ...], np.ndarray]) -> dict[tuple[str, ...], np.ndarray]:
    """The Venn regions of :attr:`VariancePartition.parts` from the subsets' R^2 ``r2`` (every
    non-empty subset of ``bands`` as a tuple in ``bands``' order, each (n_voxels,))."""
    def union(subset: set[str]) -> np.ndarray | float:
        return r2[tuple(b for b in bands if b in subset)] if subset else 0.0

    out = {}
    for size in range(1, len(bands) + 1):
        for subset in combinations(bands, size):
            others = set(bands) - set(subset)
            base = union(others)
            part = 0.0
            for k in range(1, size + 1):
                for chosen in combinations(subset, k):
                    part = part + (-1) ** (k + 1) * (union(others | set(chosen)) - base)
            out[subset] = part
    return out


def _checked(bands: Mapping[str, np.ndarray], responses: np.ndarray, train, test,
             who: str) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray]:
    """(band names, responses as float64, train and test as index arrays), or ValueError naming ``who``."""
    names = tuple(bands)
    if not names:
        raise ValueError(f"{who}: no band given")
    responses = np.asarray(responses, dtype=np.float64)
    n = len(responses)
    for name, band in bands.items():
        if np.shape(band)[0] != n:
            raise ValueError(f"{who}: band {name!r} has {np.shape(band)[0]} rows, responses {n}")
    train, test = _as_index(train, n, "train"), _as_index(test, n, "test")
    if np.intersect1d(train, test).size:
        raise ValueError(f"{who}: train and test share images")
    if len(test) < 2:
        raise ValueError(f"{who}: at least 2 test images are needed for R^2")
    return names, responses, train, test


@checked(alphas=Grid, n_iter=Count, cv=CrossValidation, backend=Backend, random_state=Seed)
@fill_doc
def variance_partition(bands: Mapping[str, np.ndarray], responses: np.ndarray, *, train, test,
                       alphas: Sequence[float] = ALPHAS, n_iter: int = 20, cv=5, backend: str = "numpy",
                       random_state: int = 0, progress: Callable[[int], object] | None = None) -> VariancePartition:
    """Fit banded ridge on every non-empty subset of ``bands`` and score each on ``test``.

    Parameters
    ----------
    %(bands)s
    %(alphas)s
    %(n_iter)s
    %(cv)s
    %(backend)s
    %(banded_random_state)s
    %(fit_progress)s

    Returns
    -------
    VariancePartition
        ``r2`` per subset, ``unique`` per band, ``shared`` and ``parts`` per set of bands.

    Notes
    -----
    Held-out R^2 is ``1 - SSE/SST`` per voxel on the test images. It is left as measured: a
    voxel that no model predicts gets R^2 around or below zero, and differences of R^2 (the
    unique and shared parts) can be negative by noise or when a band only adds variance to the
    fit (overfitting the training images). Clipping them at zero per voxel would bias every
    average over voxels upward, which is what a null band must not show; so negative values are
    kept and averaged, and a part is read against its bootstrap interval over test images
    (:meth:`VariancePartition.resampled_r2`), not voxel by voxel.
    """
    names, responses, train, test = _checked(bands, responses, train, test, "variance_partition")
    r2, penalties, predictions = {}, {}, {}
    for size in range(1, len(names) + 1):
        for subset in combinations(names, size):
            model = BandedRidgeCV(alphas, n_iter, cv, backend, random_state, progress).fit(
                [np.asarray(bands[b])[train] for b in subset], responses[train])
            predicted = model.predict([np.asarray(bands[b])[test] for b in subset])
            r2[subset] = held_out_r2(predicted, responses[test])
            penalties[subset] = model.penalties_
            predictions[subset] = predicted
    return VariancePartition(names, r2, penalties, predictions, responses[test])


def explainable_fraction(r2: np.ndarray, ceiling_r: np.ndarray, min_ceiling: float = 0.1) -> np.ndarray:
    """R^2 over the explainable variance: ``r2 / ceiling_r**2`` per voxel, where ``ceiling_r``
    (n_voxels,) is the noise ceiling as a correlation (:func:`neurolatent.science.voxelwise.noise_ceiling_r`,
    from repeated images); NaN where the ceiling is below ``min_ceiling`` (dividing by a ceiling
    near zero only amplifies noise)."""
    ceiling_r = np.asarray(ceiling_r, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ceiling_r >= min_ceiling, np.asarray(r2) / ceiling_r ** 2, np.nan)


def winning_band(partition: VariancePartition | BandSplit, min_r2: float = 0.0) -> np.ndarray:
    """(n_voxels,) index into ``partition.bands`` of the band with the largest part per voxel (its
    unique R^2, or its share); -1 where all bands together do not exceed ``min_r2``."""
    unique = np.vstack([partition.parts[(b,)] for b in partition.bands])
    winner = np.argmax(np.nan_to_num(unique, nan=-np.inf), axis=0)
    return np.where(np.nan_to_num(partition.full, nan=-np.inf) > min_r2, winner, -1)


def bootstrap_parts(fit: VariancePartition | BandSplit, columns: Mapping[str, np.ndarray], draws: int,
                    random_state: np.random.Generator, chunk: int = 100) -> dict[str, dict]:
    """Each part's mean over a region's voxels on ``draws`` bootstrap draws over the test images.

    ``columns`` {region: (n_region,) voxel indices}; ``chunk`` draws per matrix product (bounds
    memory: chunk x n_voxels x 8 bytes per part). Returns {region: {part (a tuple of bands, or
    ``"full"``): (draws,) the nanmean over the region's voxels of the part on each draw}}.
    """
    out: dict[str, dict] = {region: {} for region in columns}
    n_test = len(fit.test_responses)
    for start in range(0, draws, chunk):
        size = min(chunk, draws - start)
        picks = random_state.integers(0, n_test, (size, n_test))
        counts = np.zeros((size, n_test))
        np.add.at(counts, (np.repeat(np.arange(size), n_test), picks.ravel()), 1.0)
        parts = fit.resampled_parts(counts)
        for region, cols in columns.items():
            for part, values in parts.items():
                out[region].setdefault(part, []).append(np.nanmean(values[:, cols], axis=1))
    return {region: {part: np.concatenate(chunks) for part, chunks in parts.items()} for region, parts in out.items()}


@dataclass(frozen=True)
class RegionParts:
    """One subject's fit summarised over the voxels of each region.

    ``bands`` the fit's band names; ``kind`` what a single band's part is (``"share"`` or
    ``"unique"``); ``values`` {region: {part: the nanmean over its voxels of the part's R^2}}, parts
    as :attr:`VariancePartition.parts` names them and ``"full"``; ``penalties`` {region: {band: the
    median over its voxels of log10 of the band's penalty}}; ``explainable`` {region: {band: the
    nanmean over its voxels of the band's part over the explainable variance}}, or None without a
    noise ceiling; ``draws`` {region: {part: (n_draws,) the part's region mean on each bootstrap
    draw}} (:func:`bootstrap_parts`); ``algonauts`` {region: Algonauts 2023's score of the fit of all
    bands, percent (:func:`neurolatent.science.peers.roi_scores`)}, or None without a noise ceiling.
    """

    bands: tuple[str, ...]
    kind: str
    values: dict[str, dict]
    penalties: dict[str, dict[str, float]]
    explainable: dict[str, dict[str, float]] | None
    draws: dict[str, dict]
    algonauts: dict[str, float] | None = None


def region_parts(fit: VariancePartition | BandSplit, columns: Mapping[str, np.ndarray], draws: int,
                 random_state: np.random.Generator, ceiling_r: np.ndarray | None = None) -> RegionParts:
    """:class:`RegionParts` of ``fit`` over ``columns`` {region: voxel indices}, with ``draws``
    bootstrap draws over test images from ``random_state``; ``ceiling_r`` (n_voxels,) the noise
    ceiling as a correlation gives each band's explainable fraction (:func:`explainable_fraction`)."""
    parts = fit.parts | {"full": fit.full}
    return RegionParts(
        fit.bands, fit.PART,
        {region: {part: float(np.nanmean(v[cols])) for part, v in parts.items()} for region, cols in columns.items()},
        {region: {band: float(np.median(np.log10(fit.band_penalties[k][cols]))) for k, band in enumerate(fit.bands)}
         for region, cols in columns.items()},
        None if ceiling_r is None else {
            region: {band: float(np.nanmean(explainable_fraction(fit.parts[(band,)], ceiling_r)[cols]))
                     for band in fit.bands} for region, cols in columns.items()},
        bootstrap_parts(fit, columns, draws, random_state),
        None if ceiling_r is None else roi_scores(fit.r, ceiling_r, columns))


def group_parts(subjects: list[RegionParts], quantiles: tuple[float, float] = (0.025, 0.975)) -> list[dict]:
    """The subjects' :class:`RegionParts` (same bands and regions) averaged, a row per region and part.

    Each row: ``roi``, ``part`` (the bands joined by ``+``, or ``full``), ``kind`` (``full``, the
    single band's ``share`` or ``unique``, or ``shared``), ``r2`` (the mean over subjects),
    ``ci_low`` and ``ci_high`` (the ``quantiles`` of the subjects' mean bootstrap draws: a
    percentile interval); a single band's row also ``log10_penalty`` and, where every subject has a
    noise ceiling, ``explainable`` (means over subjects), and the ``full`` row there ``algonauts``
    (its mean over subjects). A region with shared parts ends with a row
    of kind ``shared_total``: the mean over subjects of their sum (no interval).
    """
    first = subjects[0]
    rows = []
    for region, values in first.values.items():
        for part in values:
            draws = np.mean([s.draws[region][part] for s in subjects], axis=0)
            low, high = (float(q) for q in np.nanquantile(draws, quantiles))
            kind = "full" if part == "full" else first.kind if len(part) == 1 else "shared"
            row = {"roi": region, "part": part if isinstance(part, str) else "+".join(part), "kind": kind,
                   "r2": float(np.mean([s.values[region][part] for s in subjects])), "ci_low": low, "ci_high": high}
            if kind == first.kind:
                row["log10_penalty"] = float(np.mean([s.penalties[region][part[0]] for s in subjects]))
                if all(s.explainable is not None for s in subjects):
                    row["explainable"] = float(np.mean([s.explainable[region][part[0]] for s in subjects]))
            elif kind == "full" and all(s.algonauts is not None for s in subjects):
                row["algonauts"] = float(np.mean([s.algonauts[region] for s in subjects]))
            rows.append(row)
        shared = [part for part in values if part != "full" and len(part) > 1]
        if shared:
            rows.append({"roi": region, "part": "shared", "kind": "shared_total",
                         "r2": float(np.mean([sum(s.values[region][p] for p in shared) for s in subjects]))})
    return rows
