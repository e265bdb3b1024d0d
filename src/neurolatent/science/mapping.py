"""Translating between fMRI and image latent spaces, as estimators and pure functions on arrays.

Mappings are scikit-learn estimators (``get_params``/``clone``, ``fit`` learns attributes ending
in ``_``, ``check_is_fitted``). Like scikit-learn's cross-decomposition models (``PLSRegression``,
``CCA``), each is fitted on paired rows ``fit(X, Y)`` and ``transform(X, Y=None)`` carries X (and
Y, when given) into the shared space where predictions are compared with candidate stimuli:

- :class:`RidgeMapping`: ridge regression, penalty chosen by efficient leave-one-out
  cross-validation on the training rows (``RidgeCV``), both sides standardised by training stats;
  shared space: standardised Y. ``predict(X)`` gives Y in its own units.
- :class:`ProcrustesMapping`: both sides centred, reduced by PCA to the same dimension, scaled to
  unit Frobenius norm, then the orthogonal map between them (latent space translation, Maiorca et
  al. 2023); shared space: Y's PCA space. ``predict(X)`` gives Y in its own units.
- :class:`RelativeMapping`: relative representations (Moschella et al. 2023): each side described
  by the cosine similarities of its centred rows to the same anchor stimuli from the training
  set; nothing else is fitted, matching is zero-shot, and there is no way back to Y's units (no
  ``predict``).

Scores: :func:`identification` (2-way accuracy of VanRullen & Reddy 2019 with a permutation null,
top-1 and top-5 retrieval), :func:`voxelwise_r` and :func:`noise_ceiling_r` for encoding models,
:func:`split_test_images` for BOLD5000's held-out repeated images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.linalg import orthogonal_procrustes
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.linear_model import RidgeCV
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted, validate_data

from neurolatent.science.stats import permutation_p

ALPHAS = tuple(10.0 ** np.arange(-2, 7))


def split_test_images(images: pd.DataFrame, mode: str, fraction: float, min_test: int, seed: int,
                      repeated: set[str] | None = None) -> pd.Series:
    """Which of each subject's images are test stimuli.

    Parameters
    ----------
    images : DataFrame with columns subject, image_name, presentations (one row per subject x image)
    mode : ``repeats`` (BOLD5000's convention: the images of ``repeated``, the stimulus release's
        list of 113 repeated images, when given; else the images a subject saw more than once) or
        ``holdout`` (a seeded random ``fraction`` of each subject's images)
    min_test : a subject with fewer test images is an error (identification needs candidates)

    Returns
    -------
    bool Series aligned with ``images``: True for test rows.
    """
    if mode == "repeats":
        test = images["image_name"].isin(repeated) if repeated is not None else images["presentations"] > 1
    elif mode == "holdout":
        test = pd.Series(False, index=images.index)
        rng = np.random.default_rng(seed)
        for _, rows in images.groupby("subject", sort=True):
            chosen = rng.choice(rows.index.to_numpy(), size=max(1, int(round(fraction * len(rows)))), replace=False)
            test.loc[chosen] = True
    else:
        raise ValueError(f"unknown split {mode!r} (repeats or holdout)")
    counts = test.groupby(images["subject"]).sum()
    if (counts < min_test).any():
        subject = counts.idxmin()
        raise ValueError(f"{subject} has {int(counts.min())} test images under split {mode!r} (at least {min_test} "
                         "needed): select more runs, or use stitch.test: holdout")
    return test


def _as_2d(y: np.ndarray) -> np.ndarray:
    return y.reshape(len(y), -1)


class _MultiOutput:
    """Mappings take Y with any number of columns (a latent space, every voxel)."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


def _centre_fit(matrix: np.ndarray) -> StandardScaler:
    # centring only: per-feature scaling is not rotation-equivariant, and an orthogonal map or
    # an angle between stimuli is only preserved if both sides keep their geometry
    return StandardScaler(with_std=False).fit(matrix)


class RidgeMapping(_MultiOutput, TransformerMixin, RegressorMixin, BaseEstimator):
    """X (n, p) -> Y (n, q) by ridge regression; alpha by leave-one-out CV on the training rows.

    Parameters
    ----------
    alphas : penalties tried by ``RidgeCV`` (on standardised X and Y)
    alpha_per_target : one penalty per column of Y (encoding models: one per voxel)

    Attributes
    ----------
    x_scaler_, y_scaler_ : StandardScaler fitted on the training rows
    ridge_ : the fitted RidgeCV (``alpha_`` is the chosen penalty)
    """

    def __init__(self, alphas: tuple[float, ...] = ALPHAS, alpha_per_target: bool = False):
        self.alphas = alphas
        self.alpha_per_target = alpha_per_target

    def fit(self, X: np.ndarray, Y: np.ndarray) -> "RidgeMapping":
        """Learn the map from X (n, p) to Y (n, q) or (n,): both standardised, the penalty by RidgeCV."""
        X, Y = validate_data(self, X, Y, multi_output=True, y_numeric=True)
        self.x_scaler_ = StandardScaler().fit(X)
        self.y_scaler_ = StandardScaler().fit(_as_2d(Y))
        self.ridge_ = RidgeCV(alphas=self.alphas, alpha_per_target=self.alpha_per_target).fit(
            self.x_scaler_.transform(X), self.y_scaler_.transform(_as_2d(Y)))
        self.y_ndim_ = np.ndim(Y)
        return self

    def transform(self, X: np.ndarray, Y: np.ndarray | None = None):
        """X's prediction (n, q) in the shared space (standardised Y); with Y, also Y there."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        predicted = self.ridge_.predict(self.x_scaler_.transform(X))
        return predicted if Y is None else (predicted, self.y_scaler_.transform(_as_2d(np.asarray(Y))))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted Y in its own units: (n, q), or (n,) when fitted on a vector."""
        check_is_fitted(self)
        predicted = self.y_scaler_.inverse_transform(_as_2d(self.transform(X)))
        return predicted.ravel() if self.y_ndim_ == 1 else predicted


class ProcrustesMapping(_MultiOutput, TransformerMixin, RegressorMixin, BaseEstimator):
    """X -> Y by an orthogonal map between their PCA spaces of equal dimension.

    Parameters
    ----------
    dims : PCA dimension of both sides (capped by either side's features and by n - 1)

    Attributes
    ----------
    x_pca_, y_pca_ : PCA
        Each centred side's PCA.
    rotation_ : ndarray, shape (k, k)
        The orthogonal map.
    x_norm_, y_norm_ : float
        Frobenius norms of the training scores.
    """

    def __init__(self, dims: int = 16):
        self.dims = dims

    def fit(self, X: np.ndarray, Y: np.ndarray) -> "ProcrustesMapping":
        """Learn the orthogonal map between the PCA spaces (``dims`` each) of X (n, p) and Y (n, q)."""
        X, Y = validate_data(self, X, Y, multi_output=True, y_numeric=True, ensure_min_samples=2)
        y = _as_2d(Y)
        k = min(self.dims, X.shape[1], y.shape[1], len(X) - 1)
        self.x_scaler_, self.y_scaler_ = _centre_fit(X), _centre_fit(y)
        self.x_pca_ = PCA(k, svd_solver="full").fit(self.x_scaler_.transform(X))
        self.y_pca_ = PCA(k, svd_solver="full").fit(self.y_scaler_.transform(y))
        zx = self.x_pca_.transform(self.x_scaler_.transform(X))
        zy = self.y_pca_.transform(self.y_scaler_.transform(y))
        self.x_norm_, self.y_norm_ = np.linalg.norm(zx), np.linalg.norm(zy)
        self.rotation_, _ = orthogonal_procrustes(zx / self.x_norm_, zy / self.y_norm_)
        self.y_ndim_ = np.ndim(Y)
        return self

    def transform(self, X: np.ndarray, Y: np.ndarray | None = None):
        """X's prediction (n, k) in Y's PCA space; with Y, also Y there."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        predicted = self.x_pca_.transform(self.x_scaler_.transform(X)) / self.x_norm_ @ self.rotation_ * self.y_norm_
        if Y is None:
            return predicted
        return predicted, self.y_pca_.transform(self.y_scaler_.transform(_as_2d(np.asarray(Y))))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted Y in its own units (through Y's PCA): (n, q), or (n,) when fitted on a vector."""
        check_is_fitted(self)
        predicted = self.y_scaler_.inverse_transform(self.y_pca_.inverse_transform(self.transform(X)))
        return predicted.ravel() if self.y_ndim_ == 1 else predicted


class RelativeMapping(_MultiOutput, TransformerMixin, BaseEstimator):
    """Zero-shot matching through relative representations: cosine similarity to anchor stimuli.

    ``fit`` only draws ``n_anchors`` training rows (seeded by ``random_state``) and centres each
    side; ``transform(X, Y)`` gives both sides as (n, n_anchors) similarities, directly comparable.

    Attributes
    ----------
    anchor_rows_ : ndarray, shape (n_anchors,)
        The training rows used as anchors.
    x_anchors_, y_anchors_ : ndarray, shape (n_anchors, features of each side)
        Their centred unit vectors on each side.
    """

    def __init__(self, n_anchors: int = 32, random_state: int | None = 0):
        self.n_anchors = n_anchors
        self.random_state = random_state

    def fit(self, X: np.ndarray, Y: np.ndarray) -> "RelativeMapping":
        """Draw ``n_anchors`` training rows as anchors and keep both sides' anchor vectors (no map is
        learnt: each side is read relative to its own anchors)."""
        X, Y = validate_data(self, X, Y, multi_output=True, y_numeric=True)
        y = _as_2d(Y)
        rng = np.random.default_rng(self.random_state)
        self.anchor_rows_ = np.sort(rng.choice(len(X), size=min(self.n_anchors, len(X)), replace=False))
        self.x_scaler_, self.y_scaler_ = _centre_fit(X), _centre_fit(y)
        self.x_anchors_ = _unit(self.x_scaler_.transform(X[self.anchor_rows_]))
        self.y_anchors_ = _unit(self.y_scaler_.transform(y[self.anchor_rows_]))
        return self

    def transform(self, X: np.ndarray, Y: np.ndarray | None = None):
        """X's similarities to the anchors (n, n_anchors); with Y, also Y's."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        relative = _unit(self.x_scaler_.transform(X)) @ self.x_anchors_.T
        if Y is None:
            return relative
        return relative, _unit(self.y_scaler_.transform(_as_2d(np.asarray(Y)))) @ self.y_anchors_.T


def _unit(matrix: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norm > 0, norm, 1.0)


def build_mapping(method: str, dims: int, anchors: int, seed: int) -> BaseEstimator:
    """The mapping named by ``stitch.methods``: ``ridge``, ``procrustes`` or ``relative``."""
    if method == "ridge":
        return RidgeMapping()
    if method == "procrustes":
        return ProcrustesMapping(dims)
    if method == "relative":
        return RelativeMapping(anchors, seed)
    raise ValueError(f"unknown mapping {method!r} (ridge, procrustes or relative)")


def row_correlations(predicted: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """(n_pred, n_cand) Pearson r between every predicted row and every candidate row."""
    p = predicted - predicted.mean(axis=1, keepdims=True)
    c = candidates - candidates.mean(axis=1, keepdims=True)
    return _unit(p) @ _unit(c).T


def two_way_accuracy(similarity: np.ndarray) -> float:
    """Mean over test items i and foils j != i of [s(i, i) > s(i, j)] (ties count 1/2); chance 0.5."""
    n = len(similarity)
    own = np.diag(similarity)[:, None]
    wins = (own > similarity).sum() + 0.5 * ((own == similarity).sum() - n)
    return float(wins / (n * (n - 1)))


@dataclass(frozen=True)
class Identification:
    """two_way : 2-way accuracy; p : permutation p (candidate labels shuffled); null_low/null_high :
    the central 95 % of the null (the chance interval); top1/top5 : retrieval among all test items."""

    two_way: float
    p: float
    null_low: float
    null_high: float
    top1: float
    top5: float
    null: np.ndarray


def identification(predicted: np.ndarray, candidates: np.ndarray, permutations: int = 1000,
                   random_state: int | np.random.Generator = 0) -> Identification:
    """Identify each predicted row among the candidates (row i's true match is candidate i).

    predicted, candidates : ndarray, shape (n_test, k), in one space.
    """
    if predicted.shape != candidates.shape or len(predicted) < 2:
        raise ValueError(f"identification needs two (n >= 2, k) matrices of one shape, got {predicted.shape} "
                         f"and {candidates.shape}")
    similarity = row_correlations(predicted, candidates)
    observed = two_way_accuracy(similarity)
    rng = np.random.default_rng(random_state)
    null = np.array([two_way_accuracy(similarity[:, rng.permutation(len(similarity))])
                     for _ in range(permutations)])
    rank = (similarity > np.diag(similarity)[:, None]).sum(axis=1)  # better foils than the truth
    return Identification(observed, permutation_p(observed, null),
                          float(np.quantile(null, 0.025)), float(np.quantile(null, 0.975)),
                          float(np.mean(rank < 1)), float(np.mean(rank < 5)), null)


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
