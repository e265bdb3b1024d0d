"""One space for every subject: functional alignment of subjects' responses to images.

Two families, as in the literature:

- stimulus-locked, fitted on the images every subject saw (matched by name):
  :class:`DetSRM` and :class:`SRM`, the shared response model (Chen et al. 2015) with BrainIAK's
  API shape and algorithm (``fit`` on a list of (voxels, images) arrays, ``transform``,
  ``transform_subject``; the same random initialisation, so the same numbers on the same data), and
  :class:`ProcrustesTemplate`, the template of fmralign (Bazeille et al. 2021): every subject
  rotated (scaled orthogonal Procrustes, :func:`scaled_procrustes`) onto the mean of the others'
  rotated responses, a few times over;
- feature-anchored, MindEye2-style (Scotti et al. 2024): :class:`FeatureAdapter`, a linear adapter
  per subject into one latent, fitted jointly with one shared map from that latent to the image
  features; each subject on its own images, so no image need be shared.

Each takes a list of per-subject (voxels, images) arrays (BrainIAK's orientation) and exposes the
same three operations, which is all the few-shot evaluation (:mod:`neurolatent.science.fewshot`)
needs: ``fit``, ``transform`` (each training subject's responses into the shared space) and
``transform_subject`` (a new subject's map, learnt from a few of its images).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.linalg
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import RidgeCV

from neurolatent.science.constraints import Count, Seed, checked
from neurolatent.science.mapping import ALPHAS

#: the alignment methods by name (``align.methods``)
METHODS = ("srm", "detsrm", "procrustes", "adapter")
Method = Literal[METHODS]


def _check_subjects(data: list[np.ndarray], features: int, same_images: bool = True) -> None:
    # BrainIAK refuses one subject; here one is allowed, so that leaving one of two out still runs
    # (a model of one subject is its own leading subspace: W its left singular vectors, S W^T X)
    if not data:
        raise ValueError("alignment needs at least one subject")
    samples = {x.shape[1] for x in data}
    if same_images and len(samples) != 1:
        raise ValueError(f"every subject needs the same images (columns), got {sorted(samples)}")
    if min(samples) < features:
        raise ValueError(f"{min(samples)} images are too few for {features} shared features")
    if min(x.shape[0] for x in data) < features:
        raise ValueError(f"{min(x.shape[0] for x in data)} voxels are too few for {features} shared features")
    for x in data:
        if not np.all(np.isfinite(x)):
            raise ValueError("a subject's responses hold NaN or infinite values")


def _random_orthogonal(data: list[np.ndarray], features: int, seed: int) -> list[np.ndarray]:
    """BrainIAK's initialisation: per subject, Q of the QR of a uniform (voxels, features) matrix,
    each subject's stream seeded from one RandomState(seed); so fits match BrainIAK's."""
    master = np.random.RandomState(seed)
    states = [np.random.RandomState(master.randint(2 ** 32)) for _ in data]
    return [np.linalg.qr(state.random_sample((x.shape[0], features)))[0] for state, x in zip(states, data)]


def _orthogonal_map(a: np.ndarray) -> np.ndarray:
    """The (voxels, features) matrix with orthonormal columns closest to ``a`` (U V^T of its SVD):
    the W maximising trace(W^T a), i.e. the Procrustes solution of X ~ W S with a = X S^T."""
    u, _, vt = np.linalg.svd(a, full_matrices=False)
    return u @ vt


def _perturbed_map(a: np.ndarray) -> np.ndarray:
    # BrainIAK adds 0.001 to the diagonal before the SVD during fitting (a rank-deficient a would
    # otherwise give an arbitrary W); transform_subject does not, and neither do we there
    perturbation = np.zeros(a.shape)
    np.fill_diagonal(perturbation, 0.001)
    return _orthogonal_map(a + perturbation)


class _SharedResponse(BaseEstimator, TransformerMixin):
    """What both SRMs share: BrainIAK's parameters, ``transform`` and ``transform_subject``."""

    def __init__(self, n_iter: int = 10, features: int = 50, rand_seed: int = 0):
        self.n_iter = n_iter
        self.features = features
        self.rand_seed = rand_seed

    def transform(self, X: list[np.ndarray], y=None) -> list[np.ndarray]:
        """Each subject's (voxels_i, n) responses in the shared space: a list of (features, n)."""
        self._check_fitted()
        if len(X) != len(self.w_):
            raise ValueError(f"{len(X)} subjects given, the model has {len(self.w_)}")
        return [w.T @ x for w, x in zip(self.w_, X)]

    def transform_subject(self, X: np.ndarray, columns: np.ndarray | None = None) -> np.ndarray:
        """A new subject's (voxels, features) orthonormal map from its (voxels, k) responses to the
        shared response's images ``columns`` (default: all of them, as BrainIAK requires)."""
        self._check_fitted()
        shared = self.s_ if columns is None else self.s_[:, columns]
        if X.shape[1] != shared.shape[1]:
            raise ValueError(f"{X.shape[1]} images given, the shared response has {shared.shape[1]}")
        return _orthogonal_map(X @ shared.T)

    def _check_fitted(self) -> None:
        if not hasattr(self, "w_"):
            raise NotFittedError("the model has not been fitted")


class DetSRM(_SharedResponse):
    """Deterministic SRM: X_i ~ W_i S, W_i (voxels_i, features) with orthonormal columns, by block
    coordinate descent (BrainIAK's ``DetSRM``, the same numbers on the same data).

    Attributes: ``w_`` (list of (voxels_i, features)), ``s_`` (features, n): the mean of W_i^T X_i.
    """

    def fit(self, X: list[np.ndarray], y=None) -> "DetSRM":
        """Fit on a list of (voxels_i, n) arrays, the same n images (columns) in every subject."""
        _check_subjects(X, self.features)
        w = _random_orthogonal(X, self.features, self.rand_seed)
        shared = np.mean([wi.T @ x for wi, x in zip(w, X)], axis=0)
        for _ in range(self.n_iter):
            w = [_perturbed_map(x @ shared.T) for x in X]
            shared = np.mean([wi.T @ x for wi, x in zip(w, X)], axis=0)
        self.w_, self.s_ = w, shared
        return self


class SRM(_SharedResponse):
    """Probabilistic SRM: x_i = W_i s + mu_i + e_i, s ~ N(0, Sigma_s), e_i ~ N(0, rho_i^2 I), by
    expectation-maximisation (BrainIAK's ``SRM``, single process; the same numbers on the same
    data, including its quirk of taking ||X_i||^2 before centring for rho_i^2).

    Attributes: ``w_`` (list of (voxels_i, features)), ``s_`` (features, n): the posterior mean of the
    shared response; ``sigma_s_`` (features, features); ``mu_`` (list of (voxels_i,)); ``rho2_`` (subjects,).
    """

    def fit(self, X: list[np.ndarray], y=None) -> "SRM":
        """Fit on a list of (voxels_i, n) arrays, the same n images (columns) in every subject."""
        _check_subjects(X, self.features)
        k, n = self.features, X[0].shape[1]
        w = _random_orthogonal(X, k, self.rand_seed)
        voxels = np.array([x.shape[0] for x in X])
        mu = [x.mean(axis=1) for x in X]
        trace_xtx = np.array([np.sum(x ** 2) for x in X])
        centred = [x - m[:, None] for x, m in zip(X, mu)]
        rho2 = np.ones(len(X))
        sigma_s = np.identity(k)
        shared = np.zeros((k, n))
        for _ in range(self.n_iter):
            rho0 = (1 / rho2).sum()
            inv_sigma_s = scipy.linalg.cho_solve(scipy.linalg.cho_factor(sigma_s, check_finite=False),
                                                 np.identity(k), check_finite=False)
            inv_sigma_s_rhos = scipy.linalg.cho_solve(
                scipy.linalg.cho_factor(inv_sigma_s + np.identity(k) * rho0, check_finite=False),
                np.identity(k), check_finite=False)
            wt_invpsi_x = sum(wi.T @ x / r for wi, x, r in zip(w, centred, rho2))
            # E-step: the shared response's posterior mean; M-step: its covariance, then each W_i, rho_i^2
            shared = sigma_s @ (np.identity(k) - rho0 * inv_sigma_s_rhos) @ wt_invpsi_x
            sigma_s = inv_sigma_s_rhos + shared @ shared.T / n
            trace_sigma_s = n * np.trace(sigma_s)
            for i, x in enumerate(centred):
                a = x @ shared.T
                w[i] = _perturbed_map(a)
                rho2[i] = (trace_xtx[i] - 2 * np.sum(w[i] * a) + trace_sigma_s) / (n * voxels[i])
        self.w_, self.s_, self.sigma_s_, self.mu_, self.rho2_ = w, shared, sigma_s, mu, rho2
        return self


def scaled_procrustes(X: np.ndarray, Y: np.ndarray, scaling: bool = True) -> tuple[np.ndarray, float]:
    """R (p, q) with orthonormal rows or columns and sc minimising ||sc X R - Y||_F, as fmralign's
    ``scaled_procrustes`` (it returns R for X (n, p) and Y (n, q), applied as X @ R).

    X : (n, p) source; Y : (n, q) target (p != q gives a semi-orthogonal R).
    Returns (R, sc); sc = 1 without ``scaling``, and (identity, 1) for an all-zero side.
    """
    X, Y = X.astype(np.float64, copy=False), Y.astype(np.float64, copy=False)
    if np.linalg.norm(X) == 0 or np.linalg.norm(Y) == 0:
        return np.eye(X.shape[1], Y.shape[1]), 1.0
    u, s, vt = scipy.linalg.svd(Y.T @ X, full_matrices=False)
    rotation = (u @ vt).T
    return rotation, (float(s.sum() / np.linalg.norm(X) ** 2) if scaling else 1.0)


def _rescaled_mean(aligned: list[np.ndarray], scale: bool) -> np.ndarray:
    """fmralign's template: the mean of the aligned responses, rescaled (``scale``) to their mean norm."""
    mean = np.mean(aligned, axis=0)
    if scale:
        mean = mean * np.mean([np.linalg.norm(a) for a in aligned]) / np.linalg.norm(mean)
    return mean


class ProcrustesTemplate(BaseEstimator, TransformerMixin):
    """fmralign's template alignment with scaled orthogonal Procrustes, on (voxels_i, n) arrays.

    fmralign aligns subjects that share a voxel space; ours each have their own voxels, so each
    subject is first reduced to its ``features`` leading principal components over the training
    images (centred; its loadings kept in ``pcs_``). Then the template is fmralign's: the mean of
    the reduced responses, and ``n_iter`` times over, every subject rotated onto it (scaled
    Procrustes) and the template the rescaled mean of the rotated responses.

    Attributes: ``template_`` (n, features): the shared response (images as rows, fmralign's
    orientation); ``pcs_`` (list of (voxels_i, features)), ``means_`` (list of (voxels_i,)), ``rotations_``
    (list of (features, features), scale included); ``w_`` (list of (voxels_i, features)): each
    subject's whole map, ``pcs_ @ rotations_``.
    """

    def __init__(self, n_iter: int = 2, features: int = 50, scale_template: bool = False):
        self.n_iter = n_iter
        self.features = features
        self.scale_template = scale_template

    def fit(self, X: list[np.ndarray], y=None) -> "ProcrustesTemplate":
        """Fit on a list of (voxels_i, n) arrays, the same n images (columns) in every subject."""
        _check_subjects(X, self.features)
        self.means_ = [x.mean(axis=1) for x in X]
        self.pcs_ = [np.linalg.svd(x - m[:, None], full_matrices=False)[0][:, :self.features]
                     for x, m in zip(X, self.means_)]
        reduced = [((x - m[:, None]).T @ pcs) for x, m, pcs in zip(X, self.means_, self.pcs_)]
        self.template_, self.rotations_ = fit_template(reduced, self.n_iter, self.scale_template)
        self.w_ = [pcs @ rotation for pcs, rotation in zip(self.pcs_, self.rotations_)]
        return self

    @property
    def s_(self) -> np.ndarray:
        """The template as a (features, n) shared response (BrainIAK's orientation)."""
        return self.template_.T

    def transform(self, X: list[np.ndarray], y=None) -> list[np.ndarray]:
        """Each subject's (voxels_i, n) responses in the template's space: a list of (features, n)."""
        return [w.T @ (x - m[:, None]) for w, x, m in zip(self.w_, X, self.means_)]

    def transform_subject(self, X: np.ndarray, columns: np.ndarray | None = None) -> np.ndarray:
        """A new subject's (voxels, features) map (scaled Procrustes, scale included) from its centred
        (voxels, k) responses onto the template's images ``columns`` (default all)."""
        template = self.template_ if columns is None else self.template_[columns]
        rotation, scale = scaled_procrustes(X.T, template)
        return rotation * scale


def fit_template(reduced: list[np.ndarray], n_iter: int, scale: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
    """fmralign's template on (n, d) responses of one space: the (rescaled) mean, then ``n_iter``
    rounds of rotating each subject onto it and averaging. Returns (template (n, d), [R_i * sc_i])."""
    template = _rescaled_mean(reduced, scale)
    rotations: list[np.ndarray] = []
    for _ in range(n_iter):
        fits = [scaled_procrustes(x, template) for x in reduced]
        rotations = [r * sc for r, sc in fits]
        template = _rescaled_mean([x @ r for x, r in zip(reduced, rotations)], scale)
    return template, rotations


class FeatureAdapter(BaseEstimator, TransformerMixin):
    """MindEye2-style: a linear adapter W_i per subject into one ``features``-dimensional latent,
    fitted jointly with one shared map B from the latent to the image features F:
    minimise sum_i ||Z(X_i)^T W_i B - F_i||^2 (+ ridge), B with orthonormal rows.

    The joint optimum is reduced-rank ridge regression with a shared rank: each subject's ridge
    prediction of F from its voxels (penalty by leave-one-out CV), B the leading right singular
    vectors of every subject's predictions stacked, W_i its ridge coefficients projected onto B.
    Each subject is fitted on its own images (``fit(X, features=[F_i])``): no image need be shared.

    Attributes: ``basis_`` (features, q): B; ``w_`` (list of (voxels_i, features)); ``means_`` (list of
    (voxels_i,)). The latent of a subject's responses is W_i^T (x - mean_i).
    """

    def __init__(self, features: int = 16, alphas: tuple[float, ...] = ALPHAS):
        self.features = features
        self.alphas = alphas

    def fit(self, X: list[np.ndarray], y: list[np.ndarray]) -> "FeatureAdapter":
        """X : list of (voxels_i, n_i); y : list of (n_i, q) image features of the same images."""
        _check_subjects(X, 1, same_images=False)
        if len({f.shape[1] for f in y}) != 1 or any(f.shape[0] != x.shape[1] for f, x in zip(y, X)):
            raise ValueError("each subject needs one feature row per image, of one width")
        self.feature_means_ = np.mean(np.vstack(y), axis=0)
        self.means_ = [x.mean(axis=1) for x in X]
        ridges = [self._ridge(x - m[:, None], f - self.feature_means_) for x, m, f in zip(X, self.means_, y)]
        predicted = np.vstack([(x - m[:, None]).T @ coef for x, m, coef in zip(X, self.means_, ridges)])
        self.basis_ = np.linalg.svd(predicted, full_matrices=False)[2][:min(self.features, predicted.shape[1])]
        self.w_ = [coef @ self.basis_.T for coef in ridges]
        return self

    def _ridge(self, x: np.ndarray, f: np.ndarray) -> np.ndarray:
        """(voxels, q) ridge coefficients of centred f (n, q) on centred x (voxels, n)."""
        return RidgeCV(alphas=self.alphas, fit_intercept=False).fit(x.T, f).coef_.T

    def transform(self, X: list[np.ndarray], y=None) -> list[np.ndarray]:
        """Each subject's (voxels_i, n) responses in the latent: a list of (features, n)."""
        return [w.T @ (x - m[:, None]) for w, x, m in zip(self.w_, X, self.means_)]

    def transform_subject(self, X: np.ndarray, features: np.ndarray) -> np.ndarray:
        """A new subject's (voxels, features) adapter from its centred (voxels, k) responses and
        the (k, q) image features of the same images: ridge onto the features' latent F B^T."""
        return self._ridge(X, (features - self.feature_means_)) @ self.basis_.T


@checked(method=Method, features=Count, n_iter=Count, seed=Seed)
def build_alignment(method: str, features: int, n_iter: int, seed: int) -> BaseEstimator:
    """The alignment named by ``align.methods`` (:data:`METHODS`)."""
    if method == "srm":
        return SRM(n_iter, features, seed)
    if method == "detsrm":
        return DetSRM(n_iter, features, seed)
    if method == "procrustes":
        return ProcrustesTemplate(n_iter, features)
    return FeatureAdapter(features)  # adapter, the last of METHODS (checked)


def canonical_correlations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The canonical correlations between the column spaces of a (n, p) and b (n, q) over the n
    rows (centred), largest first: (min(p, q, n - 1),). Cosines of the principal angles."""
    qa = np.linalg.qr(a - a.mean(axis=0))[0]
    qb = np.linalg.qr(b - b.mean(axis=0))[0]
    k = min(a.shape[1], b.shape[1], len(a) - 1)
    return np.clip(np.linalg.svd(qa.T @ qb, compute_uv=False)[:k], 0.0, 1.0)
