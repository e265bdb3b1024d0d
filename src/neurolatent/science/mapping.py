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

:func:`build_mapping` makes the one ``stitch.methods`` names. Scoring a mapping's predictions is
:mod:`neurolatent.science.identification`'s; an encoding model's per voxel,
:mod:`neurolatent.science.voxelwise`'s; which images are held out, :mod:`neurolatent.science.splits`'s.
"""

from __future__ import annotations


from typing import Literal

import numpy as np
from scipy.linalg import orthogonal_procrustes
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.linear_model import RidgeCV
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted, validate_data

from neurolatent.science.stats import unit_rows
from neurolatent.science.constraints import Count, Seed, checked

ALPHAS = tuple(10.0 ** np.arange(-2, 7))
#: the mappings :func:`build_mapping` makes (``stitch.methods``)
METHODS = ("ridge", "procrustes", "relative")
Method = Literal[METHODS]


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
        self.x_anchors_ = unit_rows(self.x_scaler_.transform(X[self.anchor_rows_]))
        self.y_anchors_ = unit_rows(self.y_scaler_.transform(y[self.anchor_rows_]))
        return self

    def transform(self, X: np.ndarray, Y: np.ndarray | None = None):
        """X's similarities to the anchors (n, n_anchors); with Y, also Y's."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        relative = unit_rows(self.x_scaler_.transform(X)) @ self.x_anchors_.T
        if Y is None:
            return relative
        return relative, unit_rows(self.y_scaler_.transform(_as_2d(np.asarray(Y)))) @ self.y_anchors_.T


@checked(method=Method, dims=Count, anchors=Count, seed=Seed)
def build_mapping(method: str, dims: int, anchors: int, seed: int) -> BaseEstimator:
    """The mapping named by ``stitch.methods``: ``ridge``, ``procrustes`` or ``relative``."""
    if method == "ridge":
        return RidgeMapping()
    if method == "procrustes":
        return ProcrustesMapping(dims)
    return RelativeMapping(anchors, seed)  # relative, the last of METHODS (checked)
