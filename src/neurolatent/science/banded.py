"""Banded ridge regression: several feature spaces ("bands") fitted together to many targets, one
penalty per band and target chosen by cross-validation over himalaya's random search.

The search (Nunez-Elizalde, Huth & Gallant 2019; Dupre la Tour et al. 2022) tries ``n_iter``
band weightings ``gamma`` on the simplex times a grid of overall penalties ``alpha``; each target
keeps the pair with the best cross-validated squared error. himalaya's primal solver
(``solve_group_ridge_random_search``) does this by forming, for every weighting and fold, the dense
(n_alphas, n_features, n_train) hat matrices and their products with the test rows and responses:
~490 GFLOP a weighting and fold at BOLD5000's shape (3,932 training images, 1,248 features, 2,000
voxels, 19 alphas), 596 s a fit. Here the same search (the same folds, weightings, scores and
choice, tested against himalaya to 1e-8) works in each fold's eigenbasis instead: the fold's Gram
matrix ``X'X`` and ``X'Y`` once per fold; per weighting, one eigendecomposition of the weighted
Gram matrix (p x p) and the test predictions ``A diag(1 / (lambda + alpha)) B`` for each alpha,
where ``A`` is the test rows in that basis and ``B`` the rotated ``X'Y``; the refit once per
weighting some target chose, not once per weighting that improved any target (~100 GFLOP a
weighting and fold, most of it the alphas' test predictions; 279 s against himalaya's 627 s,
measured). With fewer images than features the bands' linear kernels (n x n) are smaller than
the Gram matrix, and himalaya's kernel solver is used as is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.model_selection import KFold
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from neurolatent.science._docs import fill_doc
from neurolatent.science.constraints import Count, CrossValidation, Grid, Seed, check_values

#: the ridge penalties tried for each band (on z-scored features): 1e-2 .. 1e7, two a decade
ALPHAS = tuple(float(a) for a in np.logspace(-2, 7, 19))
#: himalaya's array backends: numpy, torch on the CPU (the GPU code path, testable anywhere), torch_cuda
BACKENDS = ("numpy", "torch", "torch_cuda")
Backend = Literal[BACKENDS]


@fill_doc
class BandedRidgeCV(RegressorMixin, BaseEstimator):
    """Banded ridge regression from several feature spaces to many targets (voxels).

    Each band's features are z-scored on the training rows; the fit minimises
    ``||sum_k X_k b_k - Y||^2 + sum_k lambda_k ||b_k||^2`` per voxel, with the penalties
    ``lambda_k`` chosen per voxel by ``cv``-fold cross-validation (squared error, features and
    responses centred on each fold's training rows) among ``n_iter`` band weightings drawn on the
    simplex (himalaya's random search; the first is equal weights) times the ``alphas`` grid. With
    one band this is ridge with one penalty per voxel chosen from ``alphas``: scikit-learn's
    ``RidgeCV(alpha_per_target=True)`` when ``cv`` is leave-one-out.

    Parameters
    ----------
    %(alphas)s
    %(n_iter)s
    %(cv)s
    %(backend)s
    random_state : int >= 0
        Seed of the band weightings and of the folds.
    %(fit_progress)s

    Attributes
    ----------
    coef_ : ndarray (n_features, n_voxels)
        Weights on the z-scored features of every band, stacked in band order.
    intercept_ : ndarray (n_voxels,)
    penalties_ : ndarray (n_bands, n_voxels)
        Each band's ridge penalty per voxel (on z-scored features); larger means the band was
        shrunk more for that voxel.
    cv_scores_ : ndarray (n_voxels,)
        The chosen hyperparameters' cross-validated score (minus the squared error summed over a
        fold's rows, averaged over folds).
    """

    def __init__(self, alphas: Sequence[float] = ALPHAS, n_iter: int = 20, cv=5, backend: str = "numpy",
                 random_state: int = 0, progress: Callable[[int], object] | None = None):
        self.alphas = alphas
        self.n_iter = n_iter
        self.cv = cv
        self.backend = backend
        self.random_state = random_state
        self.progress = progress

    def _folds(self):
        return KFold(self.cv, shuffle=True, random_state=self.random_state) if isinstance(self.cv, int) else self.cv

    def steps(self, n_bands: int) -> int:
        """Progress steps of a fit on ``n_bands`` bands: one per weighting and fold, and the refit."""
        return (1 if n_bands == 1 else self.n_iter) * self._folds().get_n_splits() + 1

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
        from himalaya.kernel_ridge import generate_dirichlet_samples

        check_values(alphas=(tuple(self.alphas), Grid), n_iter=(self.n_iter, Count), cv=(self.cv, CrossValidation),
                     backend=(self.backend, Backend), random_state=(self.random_state, Seed))
        responses = np.asarray(responses, dtype=np.float64)
        if responses.ndim != 2:
            raise ValueError(f"BandedRidgeCV: responses must be (n_images, n_voxels), got {responses.shape}")
        bands = self._check_bands(bands, len(responses))
        self.scalers_ = [StandardScaler().fit(band) for band in bands]
        scaled = [scaler.transform(band) for scaler, band in zip(self.scalers_, bands)]
        if len(bands) == 1:  # one band: its weighting is 1, and the search is over alphas only
            gammas = np.ones((1, 1))
        else:
            gammas = generate_dirichlet_samples(self.n_iter, len(bands), concentration=[0.1, 1.0],
                                                random_state=self.random_state)
            gammas[0] = 1 / len(bands)
        update = self.progress or (lambda steps: None)
        previous = get_backend()
        backend = set_backend(self.backend, on_error="raise")
        try:
            if len(responses) > sum(band.shape[1] for band in bands):
                penalties, scores, coef, intercept = _search_primal(
                    backend, scaled, responses, gammas, np.asarray(self.alphas, dtype=np.float64), self._folds(),
                    update)
            else:
                penalties, scores, coef, intercept = _search_kernels(
                    backend, scaled, responses, gammas, np.asarray(self.alphas, dtype=np.float64), self._folds())
                update(self.steps(len(bands)))
        finally:
            set_backend(previous)
        self.coef_, self.intercept_ = coef, intercept
        self.penalties_ = penalties
        self.cv_scores_ = scores
        self.widths_ = [band.shape[1] for band in bands]
        return self

    def _scaled(self, bands: Sequence[np.ndarray]) -> list[np.ndarray]:
        check_is_fitted(self)
        bands = self._check_bands(bands)
        if len(bands) != len(self.widths_):
            raise ValueError(f"BandedRidgeCV: fitted on {len(self.widths_)} bands, given {len(bands)}")
        return [scaler.transform(band) for scaler, band in zip(self.scalers_, bands)]

    def predict(self, bands: Sequence[np.ndarray]) -> np.ndarray:
        """Predicted responses (n_images, n_voxels) from ``bands`` as given to :meth:`fit`."""
        return np.hstack(self._scaled(bands)) @ self.coef_ + self.intercept_

    def predict_bands(self, bands: Sequence[np.ndarray]) -> np.ndarray:
        """(n_bands, n_images, n_voxels): each band's own term ``X_k b_k`` of the prediction (on
        its z-scored features); they sum, with ``intercept_``, to :meth:`predict`."""
        edges = np.cumsum([0, *self.widths_])
        return np.stack([x @ self.coef_[start:end] for x, start, end in zip(self._scaled(bands), edges, edges[1:])])


def _search_primal(backend, scaled: list[np.ndarray], responses: np.ndarray, gammas: np.ndarray, alphas: np.ndarray,
                   folds, update) -> tuple[np.ndarray, ...]:
    """The random search in each fold's eigenbasis (module docstring), for more images than
    features. Returns (penalties (n_bands, n_voxels): alpha / gamma_k of each target's choice, its CV
    score (n_voxels,), coef (n_features, n_voxels), intercept (n_voxels,)), numpy arrays."""
    from himalaya.scoring import l2_neg_loss

    x_all = backend.asarray(np.hstack(scaled))
    y_all = backend.asarray(responses)
    # each feature's band weight sqrt(gamma_k), as a row of the design matrix is scaled
    band_of = np.repeat(np.arange(len(scaled)), [x.shape[1] for x in scaled])
    n_targets = responses.shape[1]
    prepared = []
    for train, test in folds.split(responses):
        train, test = backend.asarray(train), backend.asarray(test)
        x_mean, y_mean = x_all[train].mean(0), y_all[train].mean(0)
        x_train = x_all[train] - x_mean
        prepared.append((x_train.T @ x_train, x_train.T @ (y_all[train] - y_mean), x_all[test] - x_mean,
                         y_all[test] - y_mean))
    best_score = np.full(n_targets, -np.inf)
    best = np.zeros(n_targets, dtype=int)
    best_alpha = np.ones(n_targets)
    log_alphas = np.log(alphas) * 1e-10  # himalaya's tie-break: the larger alpha among equal scores
    for g, gamma in enumerate(gammas):
        weight = backend.asarray(np.sqrt(gamma[band_of]))
        scores = np.zeros((len(prepared), len(alphas), n_targets))
        for f, (gram, cross, x_test, y_test) in enumerate(prepared):
            eigenvalues, vectors = backend.eigh(weight[:, None] * gram * weight[None, :])
            eigenvalues = backend.clip(eigenvalues, 0, None)  # rounding below 0 on a PSD matrix
            rotated = vectors.T @ (weight[:, None] * cross)
            test_basis = (x_test * weight[None, :]) @ vectors
            for a, alpha in enumerate(alphas):
                predicted = test_basis @ (rotated / (eigenvalues[:, None] + alpha))
                scores[f, a] = backend.to_numpy(l2_neg_loss(y_test, predicted))
            update(1)
        mean = scores.mean(axis=0) + log_alphas[:, None]
        choice = mean.argmax(axis=0)
        score = mean[choice, np.arange(n_targets)]
        better = score > best_score + np.finfo(np.float64).eps
        best_score[better], best[better], best_alpha[better] = score[better], g, alphas[choice[better]]
    x_mean, y_mean = x_all.mean(0), y_all.mean(0)
    x_centred = x_all - x_mean
    gram, cross = x_centred.T @ x_centred, x_centred.T @ (y_all - y_mean)
    coef = np.zeros((len(band_of), n_targets))
    for g in np.unique(best):
        targets = np.flatnonzero(best == g)
        weight = backend.asarray(np.sqrt(gammas[g][band_of]))
        eigenvalues, vectors = backend.eigh(weight[:, None] * gram * weight[None, :])
        eigenvalues = backend.clip(eigenvalues, 0, None)
        rotated = vectors.T @ (weight[:, None] * cross[:, backend.asarray(targets)])
        coef[:, targets] = backend.to_numpy(
            weight[:, None] * (vectors @ (rotated / (eigenvalues[:, None] + backend.asarray(best_alpha[targets])))))
    update(1)
    intercept = backend.to_numpy(y_mean) - backend.to_numpy(x_mean) @ coef
    # the score without the tie-break slope
    return best_alpha[None, :] / gammas[best].T, best_score - np.log(best_alpha) * 1e-10, coef, intercept


def _search_kernels(backend, scaled: list[np.ndarray], responses: np.ndarray, gammas: np.ndarray, alphas: np.ndarray,
                    folds) -> tuple[np.ndarray, ...]:
    """The same search on the bands' linear kernels (n_images x n_images each: 6x faster than the
    primal one at the default's 89 images and 928 features, measured) by himalaya, features and
    responses centred on all training images once rather than per fold; returns as
    :func:`_search_primal`."""
    from himalaya.kernel_ridge import primal_weights_weighted_kernel_ridge, solve_multiple_kernel_ridge_random_search

    offset = responses.mean(axis=0)
    kernels = backend.asarray(np.stack([x @ x.T for x in scaled]))
    deltas, dual, scores = solve_multiple_kernel_ridge_random_search(
        kernels, backend.asarray(responses - offset), n_iter=backend.asarray(gammas), alphas=backend.asarray(alphas),
        cv=folds, return_weights="dual", progress_bar=False)
    coef = np.vstack([backend.to_numpy(w) for w in primal_weights_weighted_kernel_ridge(
        dual, deltas, [backend.asarray(x) for x in scaled])])
    # deltas = log(gamma_k / alpha)
    return np.exp(-backend.to_numpy(deltas)), backend.to_numpy(scores).max(axis=0), coef, offset
