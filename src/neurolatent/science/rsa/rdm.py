"""Representational dissimilarity matrices: a stimulus-by-feature matrix reduced (the study's
standardise + TruncatedSVD), its RDM over named stimuli (:class:`RDM`), and RDMs over subsets of
stimuli laid out over their union. rsatoolbox's ``rsatoolbox.rdm`` in this package's terms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.spatial.distance import squareform

from neurolatent.science.stats import zscore

Dissimilarity = Literal["correlation", "euclidean", "cosine"]
DISSIMILARITIES = ("correlation", "euclidean", "cosine")
#: the rsatoolbox name of our plain euclidean distance (see :meth:`RDM.to_rsatoolbox`)
EUCLIDEAN_FOR_RSATOOLBOX = "euclidean distance (not squared)"


def n_items(cells: int) -> int:
    """Stimuli of an upper triangle of ``cells`` entries; ValueError if no n fits."""
    n = int(round((1 + np.sqrt(1 + 8 * cells)) / 2))
    if n * (n - 1) // 2 != cells:
        raise ValueError(f"{cells} cells are not the upper triangle of any square matrix")
    return n


@dataclass(frozen=True)
class RDM:
    """A representational dissimilarity matrix over named stimuli.

    upper : ndarray, shape (n * (n - 1) / 2,), float64
        Dissimilarities of every stimulus pair, scipy ``squareform`` order.
    stimuli : tuple of str, length n
        Image names, in the row order of the matrix.
    dissimilarity : str
        How ``upper`` was measured (``correlation``, ``euclidean``, ``cosine``).
    name : str
        What the RDM is of (``ae/CSI1``, ``pixels/CSI1``, ...).
    meta : dict
        Anything else worth keeping (components, explained variance, subject).
    """

    upper: np.ndarray
    stimuli: tuple[str, ...]
    dissimilarity: str
    name: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if n_items(len(self.upper)) != len(self.stimuli):
            raise ValueError(f"RDM {self.name!r}: {len(self.upper)} cells for {len(self.stimuli)} stimuli")

    @property
    def n(self) -> int:
        """The number of stimuli."""
        return len(self.stimuli)

    def square(self) -> np.ndarray:
        """(n, n) symmetric matrix, zero diagonal."""
        return squareform(self.upper, checks=False)

    def subset(self, stimuli: list[str] | tuple[str, ...]) -> "RDM":
        """The RDM of ``stimuli`` (names, in that order); KeyError names a missing one. In this
        RDM's own order it shares ``upper`` (at BOLD5000's 4,916 images a copy is 97 MB, and the
        rsa stage cuts every model to each subject's images)."""
        if tuple(stimuli) == self.stimuli:
            return RDM(self.upper, self.stimuli, self.dissimilarity, self.name, dict(self.meta))
        rows = self.positions(stimuli)
        return RDM(squareform(self.square()[np.ix_(rows, rows)], checks=False), tuple(stimuli),
                   self.dissimilarity, self.name, dict(self.meta))

    def positions(self, stimuli: list[str] | tuple[str, ...]) -> np.ndarray:
        """(k,) int: the rows of ``stimuli`` (names) in this RDM; KeyError names a missing one."""
        position = {name: i for i, name in enumerate(self.stimuli)}
        missing = [name for name in stimuli if name not in position]
        if missing:
            raise KeyError(f"RDM {self.name!r} has no stimulus {missing[0]!r}")
        return np.array([position[name] for name in stimuli], dtype=np.int64)

    def cut(self, rows: np.ndarray) -> np.ndarray:
        """(k, k) symmetric matrix of the stimuli at ``rows`` (positions, that order), zero
        diagonal: ``square()[np.ix_(rows, rows)]``, the same values, read from ``upper`` without the
        (n, n) square (193 MB at 4,916 images, for a figure's 600); it holds four (k, k) int64
        arrays while it works, so it is for small k, the square for large."""
        rows = np.asarray(rows, dtype=np.int64)
        low, high = np.minimum.outer(rows, rows), np.maximum.outer(rows, rows)
        same = low == high
        # scipy's condensed index of the pair (i < j) of n: n i - i (i + 1) / 2 + j - i - 1
        cells = np.where(same, 0, self.n * low - low * (low + 1) // 2 + high - low - 1)
        return np.where(same, 0.0, self.upper[cells])

    def to_rsatoolbox(self, squared_euclidean: bool = False):
        """The same RDM as an ``rsatoolbox.rdm.RDMs``.

        ``correlation`` and ``cosine`` mean what they mean in rsatoolbox. Our ``euclidean`` is the
        plain distance; rsatoolbox's ``calc_rdm(method="euclidean")`` gives the squared distance over
        the number of features (``squared euclidean``) and names its square root ``euclidean``, so
        our values are exported under their own name, ``euclidean distance (not squared)``, which
        no rsatoolbox transform mistakes for its own; every comparison is unchanged. With
        ``squared_euclidean=True`` they are converted to rsatoolbox's definition instead (needs the
        number of features in ``meta["components"]``, which :func:`reduced_rdm` records).
        """
        from rsatoolbox.rdm import RDMs

        values, measure = self.upper, self.dissimilarity
        if self.dissimilarity == "euclidean":
            measure = EUCLIDEAN_FOR_RSATOOLBOX
            if squared_euclidean:
                if "components" not in self.meta:
                    raise ValueError(f"RDM {self.name!r}: converting to squared euclidean needs the number of "
                                     "features (meta['components'])")
                values, measure = self.upper ** 2 / self.meta["components"], "squared euclidean"
        return RDMs(values[None, :], dissimilarity_measure=measure, rdm_descriptors={"name": [self.name]},
                    pattern_descriptors={"image_name": list(self.stimuli)})


def reduce(matrix: np.ndarray, variance: float | None = None, components: int | None = None,
           standardise_columns: bool = True, min_components: int = 1) -> tuple[np.ndarray, float]:
    """Standardise, then keep the leading singular components (the study's TruncatedSVD).

    Parameters
    ----------
    matrix : ndarray, shape (n_stimuli, n_features)
    variance : float in (0, 1], optional
        Keep the fewest components whose explained-variance ratios sum to at least this.
    components : int, optional
        Keep exactly this many (capped at the rank). Neither given: every component.
    standardise_columns : bool
        z-score features first (the study did).
    min_components : int
        Keep at least this many (capped at the rank), whatever ``variance`` asks.

    Returns
    -------
    scores : ndarray, shape (n_stimuli, k), float64
        ``U_k S_k``, which is TruncatedSVD's ``fit_transform`` up to the sign of each column
        (signs are fixed so the largest-magnitude entry of each column is positive).
    explained : float
        Fraction of the (standardised) matrix's total variance the k components hold.
    """
    if variance is not None and components is not None:
        raise ValueError("give variance or components, not both")
    x = np.asarray(matrix, dtype=np.float64)
    if standardise_columns:
        x = zscore(x)
    # the smaller Gram matrix gives the same singular vectors at a fraction of the cost when
    # one side is much longer (the study's flattened latents: 112,896 features)
    n, d = x.shape
    if d >= n:
        evals, u = np.linalg.eigh(x @ x.T)
    else:
        evals, v = np.linalg.eigh(x.T @ x)
    order = np.argsort(evals)[::-1]
    evals = np.clip(evals[order], 0.0, None)
    total = evals.sum()
    if total <= 0:
        raise ValueError("the matrix has no variance: every stimulus is the same")
    rank = int((evals > evals[0] * 1e-12).sum())
    if components is not None:
        k = min(components, rank)
    elif variance is not None:
        k = min(int(np.searchsorted(np.cumsum(evals) / total, variance - 1e-12) + 1), rank)
    else:
        k = rank
    k = max(k, min(min_components, rank))
    if d >= n:
        scores = u[:, order[:k]] * np.sqrt(evals[:k])
    else:
        scores = x @ v[:, order[:k]]
    flip = np.sign(scores[np.abs(scores).argmax(axis=0), np.arange(k)])
    return scores * np.where(flip == 0, 1.0, flip), float(evals[:k].sum() / total)


def rdm_upper(patterns: np.ndarray, dissimilarity: Dissimilarity = "correlation") -> np.ndarray:
    """Dissimilarity of every pair of rows, upper triangle (scipy ``pdist`` order).

    Parameters
    ----------
    patterns : ndarray, shape (n_stimuli, n_features)
    dissimilarity : ``correlation`` (1 - Pearson r between rows, the study), ``euclidean``
        (distance in feature units), or ``cosine`` (1 - cosine similarity).

    Returns
    -------
    ndarray, shape (n * (n - 1) / 2,), float64. One BLAS product (n^2 d), no Python loop.
    """
    x = np.asarray(patterns, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"patterns must be (n_stimuli >= 2, n_features), got shape {x.shape}")
    if dissimilarity == "correlation":
        x = x - x.mean(axis=1, keepdims=True)
    if dissimilarity in ("correlation", "cosine"):
        norm = np.linalg.norm(x, axis=1, keepdims=True)
        if (norm == 0).any():
            raise ValueError(f"{dissimilarity} dissimilarity is undefined for a constant row "
                             f"(row {int(np.flatnonzero(norm == 0)[0])})")
        x = x / norm
        square = 1.0 - x @ x.T
    elif dissimilarity == "euclidean":
        sq = np.einsum("ij,ij->i", x, x)
        square = np.sqrt(np.clip(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0, None))
    else:
        raise ValueError(f"unknown dissimilarity {dissimilarity!r} (one of {', '.join(DISSIMILARITIES)})")
    return square[np.triu_indices(len(x), k=1)]


def reduced_rdm(matrix: np.ndarray, stimuli: tuple[str, ...], name: str, dissimilarity: Dissimilarity = "correlation",
                variance: float | None = 0.7, components: int | None = None, standardise_columns: bool = True,
                min_components: int = 1) -> RDM:
    """Reduce a (n_stimuli, d) matrix (:func:`reduce`) and take its RDM (:func:`rdm_upper`).

    ``meta`` of the result holds ``components`` (kept) and ``variance`` (fraction explained).
    """
    scores, explained = reduce(matrix, variance, components, standardise_columns, min_components)
    return RDM(rdm_upper(scores, dissimilarity), tuple(stimuli), dissimilarity, name,
               {"components": int(scores.shape[1]), "variance": explained})


def union_vectors(rdms: list[RDM], order: list[str]) -> np.ndarray:
    """RDMs over subsets of stimuli as rows over the union ``order``: (n_rdms, cells) with NaN for
    the pairs an RDM does not have (a subject that did not see both images)."""
    position = {name: i for i, name in enumerate(order)}
    n = len(order)
    upper = np.triu_indices(n, k=1)
    out = np.full((len(rdms), len(upper[0])), np.nan)
    for k, item in enumerate(rdms):
        rows = np.array([position[name] for name in item.stimuli])
        square = np.full((n, n), np.nan)
        square[np.ix_(rows, rows)] = squareform(item.upper, checks=False)  # item may be stored (read once)
        out[k] = square[upper]
    return out


def category_rdm(stimuli: tuple[str, ...], categories: list[str] | tuple[str, ...], name: str = "category") -> RDM:
    """The category model, a standard hypothesis RDM: 0 between two images of one category (COCO,
    ImageNet, Scene), 1 between images of two; ``categories`` gives each stimulus's, in order."""
    labels = np.asarray(categories)
    if len(labels) != len(stimuli):
        raise ValueError(f"{len(labels)} categories for {len(stimuli)} stimuli")
    if len(set(labels)) < 2:
        raise ValueError("a category model needs images of at least two categories")
    upper = np.triu_indices(len(labels), k=1)
    return RDM((labels[upper[0]] != labels[upper[1]]).astype(np.float64), tuple(stimuli), "category", name,
               {"components": 0, "variance": 1.0})
