"""Encoding models over several feature spaces at once: banded ridge and variance partitioning.

Predicting each voxel from one feature space at a time says how well each space predicts, not
what each explains that the others do not. Here the spaces ("bands") are fitted together by
banded ridge (Nunez-Elizalde, Huth & Gallant 2019), one penalty per band and voxel chosen by
cross-validation on the training images, with himalaya's random search over band weights (so the
largest band cannot drown the rest by sheer number of features); every non-empty subset of the
bands is fitted the same way, and the held-out R^2 of the subsets partitions each voxel's explained
variance into what each band explains alone (its unique part) and what sets of bands share
(de Heer et al. 2017; Lescroart, Stansbury & Gallant 2015).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.model_selection import KFold
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

#: the ridge penalties tried for each band (on z-scored features): 1e-2 .. 1e7, two a decade
ALPHAS = tuple(float(a) for a in np.logspace(-2, 7, 19))
#: himalaya's array backends: numpy on the CPU, torch_cuda on a GPU
BACKENDS = ("numpy", "torch_cuda")


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


class BandedRidgeCV(RegressorMixin, BaseEstimator):
    """Banded ridge regression from several feature spaces to many targets (voxels).

    Each band's features are z-scored on the training rows; the fit minimises
    ``||sum_k X_k b_k - Y||^2 + sum_k lambda_k ||b_k||^2`` per voxel, with the penalties
    ``lambda_k`` chosen per voxel by ``cv``-fold cross-validation (squared error) among
    ``n_iter`` band weightings drawn on the simplex (himalaya's random search, on the features or, with
    fewer images than features, on the bands' linear kernels)
    times the ``alphas`` grid. With one band this is ridge with one penalty per voxel chosen from
    ``alphas``: scikit-learn's ``RidgeCV(alpha_per_target=True)`` when ``cv`` is leave-one-out.

    Parameters
    ----------
    alphas : sequence of float
        Overall ridge penalties tried (on z-scored features).
    n_iter : int
        Band weightings tried (the first is equal weights); ignored with one band.
    cv : int or scikit-learn splitter
        Folds of the training rows for choosing penalties; an int is a KFold shuffled with
        ``random_state``.
    backend : {"numpy", "torch_cuda"}
        himalaya's array backend; results come back as numpy arrays either way.
    random_state : int
        Seed of the band weightings and of the folds.

    Attributes
    ----------
    penalties_ : ndarray (n_bands, n_voxels)
        Each band's ridge penalty per voxel (on z-scored features); larger means the band was
        shrunk more for that voxel.
    cv_scores_ : ndarray (n_voxels,)
        The chosen hyperparameters' cross-validated score (minus the mean squared error).
    """

    def __init__(self, alphas: Sequence[float] = ALPHAS, n_iter: int = 20, cv=5, backend: str = "numpy",
                 random_state: int = 0):
        self.alphas = alphas
        self.n_iter = n_iter
        self.cv = cv
        self.backend = backend
        self.random_state = random_state

    def _check_bands(self, bands: Sequence[np.ndarray], n_rows: int | None = None) -> list[np.ndarray]:
        if not len(bands):
            raise ValueError("BandedRidgeCV: no band given")
        bands = [np.asarray(band, dtype=np.float64) for band in bands]
        for k, band in enumerate(bands):
            if band.ndim != 2 or band.shape[1] == 0:
                raise ValueError(f"BandedRidgeCV: band {k} must be (n_images, n_features>0), got {band.shape}")
            if not np.isfinite(band).all():
                raise ValueError(f"BandedRidgeCV: band {k} holds NaN or inf")
        if len({band.shape[0] for band in bands} | ({n_rows} if n_rows is not None else set())) != 1:
            raise ValueError(f"BandedRidgeCV: the bands and responses disagree on the number of images: "
                             f"{[band.shape[0] for band in bands]}")
        return bands

    def fit(self, bands: Sequence[np.ndarray], responses: np.ndarray) -> "BandedRidgeCV":
        """Learn penalties and weights from ``bands`` (each (n_images, n_features_k)) to
        ``responses`` (n_images, n_voxels)."""
        from himalaya.backend import get_backend, set_backend
        from himalaya.kernel_ridge import primal_weights_weighted_kernel_ridge, solve_multiple_kernel_ridge_random_search
        from himalaya.ridge import solve_group_ridge_random_search

        if self.backend not in BACKENDS:
            raise ValueError(f"BandedRidgeCV: backend must be one of {BACKENDS}, got {self.backend!r}")
        responses = np.asarray(responses, dtype=np.float64)
        if responses.ndim != 2:
            raise ValueError(f"BandedRidgeCV: responses must be (n_images, n_voxels), got {responses.shape}")
        bands = self._check_bands(bands, len(responses))
        self.scalers_ = [StandardScaler().fit(band) for band in bands]
        scaled = [scaler.transform(band) for scaler, band in zip(self.scalers_, bands)]
        cv = KFold(self.cv, shuffle=True, random_state=self.random_state) if isinstance(self.cv, int) else self.cv
        search = {"alphas": np.asarray(self.alphas, dtype=np.float64), "cv": cv, "random_state": self.random_state,
                  "progress_bar": False,
                  # one band: its weighting is 1, and the search is over alphas only
                  "n_iter": np.ones((1, 1)) if len(bands) == 1 else self.n_iter}
        previous = get_backend()
        backend = set_backend(self.backend, on_error="raise")
        try:
            if len(responses) > sum(band.shape[1] for band in bands):
                # more images than features: the primal solver, centred within each fold (exact)
                deltas, coef, scores, intercept = solve_group_ridge_random_search(
                    [backend.asarray(x) for x in scaled], backend.asarray(responses), fit_intercept=True,
                    return_weights=True, warn=False, **search)
                self.coef_, self.intercept_ = backend.to_numpy(coef), backend.to_numpy(intercept)
            else:
                # fewer images than features: the same search on the bands' linear kernels (n_images x
                # n_images each: 6x faster at the default's 89 images and 928 features, measured), with
                # features and responses centred on all training images once rather than per fold
                offset = responses.mean(axis=0)
                kernels = backend.asarray(np.stack([x @ x.T for x in scaled]))
                deltas, dual, scores = solve_multiple_kernel_ridge_random_search(
                    kernels, backend.asarray(responses - offset), return_weights="dual", **search)
                self.coef_ = np.vstack([backend.to_numpy(w) for w in primal_weights_weighted_kernel_ridge(
                    dual, deltas, [backend.asarray(x) for x in scaled])])
                self.intercept_ = offset
            self.penalties_ = np.exp(-backend.to_numpy(deltas))
            self.cv_scores_ = backend.to_numpy(scores).max(axis=0)
        finally:
            set_backend(previous)
        self.n_bands_ = len(bands)
        return self

    def predict(self, bands: Sequence[np.ndarray]) -> np.ndarray:
        """Predicted responses (n_images, n_voxels) from ``bands`` as given to :meth:`fit`."""
        check_is_fitted(self)
        bands = self._check_bands(bands)
        if len(bands) != self.n_bands_:
            raise ValueError(f"BandedRidgeCV: fitted on {self.n_bands_} bands, given {len(bands)}")
        scaled = np.hstack([scaler.transform(band) for scaler, band in zip(self.scalers_, bands)])
        return scaled @ self.coef_ + self.intercept_


@dataclass(frozen=True)
class VariancePartition:
    """Held-out R^2 of every non-empty subset of the bands, per voxel, and its partition.

    ``bands`` the band names in the order given; ``r2`` {subset (a tuple of names in that order):
    (n_voxels,) held-out R^2 of the banded ridge fitted on that subset}; ``penalties`` {subset:
    (len(subset), n_voxels) per-band penalties of that fit}; ``predictions`` {subset: (n_test,
    n_voxels) its predictions of the test images}; ``test_responses`` (n_test, n_voxels).
    """

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

    def resampled_r2(self, counts: np.ndarray) -> dict[tuple[str, ...], np.ndarray]:
        """Bootstrap over test images without refitting: ``counts`` (n_draws, n_test) how many
        times each test image is in each draw; returns {subset: (n_draws, n_voxels) held-out R^2
        of that subset's fit on each draw} (:func:`partition_parts` turns them into parts)."""
        counts = np.asarray(counts, dtype=np.float64)
        if counts.ndim != 2 or counts.shape[1] != len(self.test_responses):
            raise ValueError(f"counts must be (n_draws, {len(self.test_responses)}), got {counts.shape}")
        # each draw's squared errors over the whole test set's SST (scaled to the draw's size): R^2
        # is then linear in the counts and its draws centre on the estimate; a draw's own SST (a
        # ratio of two resampled sums) skews them (measured: with 10 test images, the percentile
        # interval of the full model's R^2 missed its estimate)
        sst = counts.sum(axis=1, keepdims=True) / len(self.test_responses) * (
            (self.test_responses - self.test_responses.mean(axis=0)) ** 2).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return {subset: np.where(sst > 0, 1.0 - counts @ (self.test_responses - predicted) ** 2 / sst, np.nan)
                    for subset, predicted in self.predictions.items()}


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


def variance_partition(bands: Mapping[str, np.ndarray], responses: np.ndarray, *, train, test,
                       random_state: int = 0, **banded) -> VariancePartition:
    """Fit banded ridge on every non-empty subset of ``bands`` and score each on ``test``.

    Parameters
    ----------
    bands : mapping of name -> ndarray (n_images, n_features_k)
        The feature spaces, in the order the results name them.
    responses : ndarray (n_images, n_voxels)
        Each image's response per voxel (betas, or samples, in any unit).
    train, test : boolean mask (n_images,) or index array
        The images fitted on and those scored; they must not overlap.
    random_state : int
        Seed of :class:`BandedRidgeCV`'s search and folds (the same for every subset, so every
        subset is searched on the same folds).
    **banded
        Further :class:`BandedRidgeCV` arguments (``alphas``, ``n_iter``, ``cv``, ``backend``).

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
    names = tuple(bands)
    if not names:
        raise ValueError("variance_partition: no band given")
    responses = np.asarray(responses, dtype=np.float64)
    n = len(responses)
    for name, band in bands.items():
        if np.shape(band)[0] != n:
            raise ValueError(f"variance_partition: band {name!r} has {np.shape(band)[0]} rows, responses {n}")
    train, test = _as_index(train, n, "train"), _as_index(test, n, "test")
    if np.intersect1d(train, test).size:
        raise ValueError("variance_partition: train and test share images")
    if len(test) < 2:
        raise ValueError("variance_partition: at least 2 test images are needed for R^2")
    r2, penalties, predictions = {}, {}, {}
    for size in range(1, len(names) + 1):
        for subset in combinations(names, size):
            model = BandedRidgeCV(random_state=random_state, **banded).fit(
                [np.asarray(bands[b])[train] for b in subset], responses[train])
            predicted = model.predict([np.asarray(bands[b])[test] for b in subset])
            r2[subset] = held_out_r2(predicted, responses[test])
            penalties[subset] = model.penalties_
            predictions[subset] = predicted
    return VariancePartition(names, r2, penalties, predictions, responses[test])


def explainable_fraction(r2: np.ndarray, ceiling_r: np.ndarray, min_ceiling: float = 0.1) -> np.ndarray:
    """R^2 over the explainable variance: ``r2 / ceiling_r**2`` per voxel, where ``ceiling_r``
    (n_voxels,) is the noise ceiling as a correlation (:func:`neurolatent.science.mapping.noise_ceiling_r`,
    from repeated images); NaN where the ceiling is below ``min_ceiling`` (dividing by a ceiling
    near zero only amplifies noise)."""
    ceiling_r = np.asarray(ceiling_r, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ceiling_r >= min_ceiling, np.asarray(r2) / ceiling_r ** 2, np.nan)


def winning_band(partition: VariancePartition, min_r2: float = 0.0) -> np.ndarray:
    """(n_voxels,) index into ``partition.bands`` of the band with the largest unique R^2 per
    voxel; -1 where all bands together do not exceed ``min_r2``."""
    unique = np.vstack([partition.unique[b] for b in partition.bands])
    winner = np.argmax(np.nan_to_num(unique, nan=-np.inf), axis=0)
    return np.where(np.nan_to_num(partition.full, nan=-np.inf) > min_r2, winner, -1)
