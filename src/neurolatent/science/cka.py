"""Linear centred kernel alignment (CKA) beside RSA, as peers report it (Net2Brain, THINGSvision).

Linear CKA (Kornblith et al. 2019) compares two representations of the same n stimuli through
their linear kernels K = X X^T and L = Y Y^T:

    CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)).

With n in the hundreds the usual (biased) HSIC estimator is pulled towards 1 by the diagonal of
the kernels, so HSIC here is Song et al. (2012)'s unbiased estimator, which Kornblith et al.'s
code computes by U-centring each kernel (Szekely & Rizzo 2014):

    U(K)_ij = K_ij - r_i/(n-2) - r_j/(n-2) + s/((n-1)(n-2))   for i != j,  U(K)_ii = 0,

where r is the row sums of K with its diagonal zeroed and s their total; then
HSIC_u(K, L) = <U(K), U(L)> / (n (n-3)), and CKA is the cosine of the two U-centred kernels.

Why the test is cheap: U-centring commutes with relabelling the stimuli and the U-centred
diagonal is zero, so CKA under a permutation is the cosine of the upper triangles of U(K) and
of U(L) relabelled, which is exactly the Mantel statistic of
:func:`neurolatent.science.rsa.inference.group_mantel` with ``method="cosine"``. The U-centred kernels are
therefore carried as :class:`~neurolatent.science.rsa.rdm.RDM` objects (similarities, not
dissimilarities: ``dissimilarity`` says so) and tested by the same kernel, within the atoms of
who saw which image for a group.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from neurolatent.science.rsa.compare import compare
from neurolatent.science.rsa.inference import GroupPermutationResult, group_mantel_models
from neurolatent.science.rsa.rdm import RDM
from neurolatent.science._docs import fill_doc
from neurolatent.science.constraints import Count, RandomState, checked

#: what a U-centred kernel "RDM" holds (it is a similarity)
UCENTRED_KERNEL = "u-centred linear kernel"


def ucentred_kernel(features: np.ndarray) -> np.ndarray:
    """The U-centred linear kernel of a representation.

    Parameters
    ----------
    features : ndarray, shape (n_stimuli, n_features), n_stimuli >= 4

    Returns
    -------
    ndarray, shape (n_stimuli, n_stimuli), float64, zero diagonal, scaled to unit Frobenius norm
    (CKA is scale-free; the unit norm keeps the float32 permutation kernel well conditioned).
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or len(x) < 4:
        raise ValueError(f"CKA needs a (n_stimuli >= 4, n_features) matrix, got shape {x.shape}")
    n = len(x)
    x = x - x.mean(axis=0)
    kernel = x @ x.T
    np.fill_diagonal(kernel, 0.0)
    means = kernel.sum(axis=0) / (n - 2)
    means -= means.sum() / (2 * (n - 1))
    kernel -= means[:, None] + means[None, :]
    np.fill_diagonal(kernel, 0.0)
    norm = np.linalg.norm(kernel)
    return kernel / norm if norm > 0 else kernel


def kernel_rdm(features: np.ndarray, stimuli: tuple[str, ...], name: str) -> RDM:
    """:func:`ucentred_kernel` as an RDM-shaped object (its upper triangle) over named stimuli."""
    kernel = ucentred_kernel(features)
    return RDM(kernel[np.triu_indices(len(kernel), k=1)], tuple(stimuli), UCENTRED_KERNEL, name)


def linear_cka(first: np.ndarray, second: np.ndarray) -> float:
    """Linear CKA with the unbiased HSIC estimator between two representations of the same stimuli.

    first : (n, p); second : (n, q), rows paired. Returns a float in [-1, 1] (unbiased CKA can
    be slightly negative for unrelated representations); NaN if either kernel is zero.
    """
    if len(first) != len(second):
        raise ValueError(f"CKA pairs rows: {len(first)} and {len(second)} stimuli")
    return compare(kernel_rdm(first, tuple(map(str, range(len(first)))), "").upper,
                   kernel_rdm(second, tuple(map(str, range(len(second)))), "").upper, "cosine")


@checked(permutations=Count, random_state=RandomState)
@fill_doc
def group_cka(fmri: list[tuple[np.ndarray, tuple[str, ...]]], model_features: np.ndarray,
              model_stimuli: tuple[str, ...], permutations: int = 1000,
              random_state: int | np.random.Generator = 0, device: str = "cpu") -> GroupPermutationResult:
    """Linear CKA of each subject's representation with a model over the subject's images, their
    mean, and permutation p-values (shared relabellings, as :func:`~neurolatent.science.rsa.inference.group_mantel`).

    Parameters
    ----------
    fmri : per subject (features (n_s, d_s), image names (n_s,))
    model_features : (n_images, q), rows named by ``model_stimuli`` (a superset of every subject's)
    %(permutations)s
    %(random_state)s
    %(device)s

    Returns
    -------
    GroupPermutationResult: ``statistic`` the mean CKA, ``subject_statistics`` each subject's.
    """
    return group_cka_models(fmri, {"model": model_features}, model_stimuli, permutations, random_state,
                            device)["model"]


@checked(permutations=Count, random_state=RandomState)
def group_cka_models(fmri: list[tuple[np.ndarray, tuple[str, ...]]], model_features: dict[str, np.ndarray],
                     model_stimuli: tuple[str, ...], permutations: int = 1000,
                     random_state: int | np.random.Generator = 0, device: str = "cpu",
                     progress: Callable[[int], object] | None = None) -> dict[str, GroupPermutationResult]:
    """:func:`group_cka` of several models (each (n_images, q_k), rows named by ``model_stimuli``)
    under the same relabellings, sharing each pass over the subjects' kernels
    (:func:`~neurolatent.science.rsa.inference.group_mantel_models`); ``progress`` as there."""
    position = {name: i for i, name in enumerate(model_stimuli)}
    subjects = []
    for s, (features, stimuli) in enumerate(fmri):
        missing = [name for name in stimuli if name not in position]
        if missing:
            raise ValueError(f"the model has no row for image {missing[0]!r}")
        subjects.append(kernel_rdm(features, stimuli, f"subject {s}"))
    models = {model: [_ModelKernel(features[[position[name] for name in item.stimuli]], item.stimuli, item.stimuli, model)
                      for item in subjects]
              for model, features in model_features.items()}
    return group_mantel_models(subjects, models, "cosine", permutations, random_state, device, progress=progress)


@dataclass(frozen=True)
class _ModelKernel:
    """A model's :func:`kernel_rdm` over the images ``rows`` (its ``features``' rows, in that
    order), read over ``stimuli`` (some of them, in any order): its cells are made each time they
    are asked for (``upper``), so that a test of many models holds one model's kernel at a time
    (at BOLD5000's size 97 MB each, 32 for four subjects and eight models); the same bits as
    ``kernel_rdm(features, rows, name).subset(stimuli)``."""

    features: np.ndarray
    rows: tuple[str, ...]
    stimuli: tuple[str, ...]
    name: str
    dissimilarity: str = UCENTRED_KERNEL

    @property
    def n(self) -> int:
        """The number of stimuli."""
        return len(self.stimuli)

    @property
    def upper(self) -> np.ndarray:
        """(n (n - 1) / 2,) the kernel's upper triangle over ``stimuli``, made now."""
        kernel = kernel_rdm(self.features, self.rows, self.name)
        return (kernel if self.stimuli == self.rows else kernel.subset(self.stimuli)).upper

    def subset(self, stimuli: list[str] | tuple[str, ...]) -> "_ModelKernel":
        """The kernel read over ``stimuli`` (still made when asked for); KeyError names a missing one."""
        rows = set(self.rows)
        missing = [name for name in stimuli if name not in rows]
        if missing:
            raise KeyError(f"kernel {self.name!r} has no stimulus {missing[0]!r}")
        return replace(self, stimuli=tuple(stimuli))
