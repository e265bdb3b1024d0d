"""Inference on RDM comparisons: permutation tests (Mantel), bootstrap confidence intervals over
stimuli, the noise ceiling, for one subject and for a group whose subjects saw overlapping images.
rsatoolbox's ``rsatoolbox.inference`` in this package's terms.

- :func:`mantel` permutes stimulus labels (exact statistic on every permutation), :func:`bootstrap`
  resamples stimuli, :func:`noise_ceiling` gives rsatoolbox's leave-one-subject-out bounds.
- :func:`group_mantel_models` and :func:`group_bootstrap`: the mean over subjects, each
  replicate one relabelling or resample of the union of the subjects' images that every subject
  takes (:class:`SharedDesign`).
- :func:`neurolatent.science.rsa.family.group_family`: both for every ROI of a representation
  against every model, with what they share computed once.
- :func:`neurolatent.science.rsa.results.compare_regions` runs all of it for one fMRI
  representation's regions against every model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial

import numpy as np
from scipy.spatial.distance import squareform

from neurolatent.science._docs import fill_doc
from neurolatent.science.constraints import Count, RandomState, checked
from neurolatent.science.rsa.accelerated import Inference, p_values
from neurolatent.science.rsa.compare import (KENDALL_MAX_STIMULI, Comparison, Triangle, check_full, compare,
                                             full_square_map, rank, tau_a)
from neurolatent.science.rsa.kernels import Prepared, null_sums, prepare, resample_counts, resampled_comparison
from neurolatent.science.rsa.rdm import RDM, n_items
from neurolatent.science.stats import PERMUTATION_TOLERANCE, permutation_p


@dataclass(frozen=True)
class PermutationResult:
    """statistic : the observed comparison; p : one-sided (greater), (1 + #null >= observed) / (1 + k);
    null : (k,) the statistic under each permutation of stimulus labels."""

    statistic: float
    p: float
    null: np.ndarray


def random_permutations(n: int, count: int, random_state: int | np.random.Generator) -> np.ndarray:
    """(count, n) uint32: ``count`` independent uniform permutations of range(n)."""
    rng = np.random.default_rng(random_state)
    return rng.permuted(np.tile(np.arange(n, dtype=np.uint32), (count, 1)), axis=1)


@checked(method=Comparison, permutations=Count, random_state=RandomState, chunk=Count)
@fill_doc
def mantel(permuted: np.ndarray, fixed: np.ndarray, method: Comparison, permutations: int,
           random_state: int | np.random.Generator,
           device: str = "cpu", chunk: int = 128) -> PermutationResult:
    """Permutation test of stimulus labels for the similarity of two RDMs (Mantel test).

    Parameters
    ----------
    permuted, fixed : ndarray, shape (n * (n - 1) / 2,)
        Upper triangles over the same n stimuli in the same order; ``permuted`` is relabelled.
    method : pearson | spearman | cosine | kendall_tau_a
        As :func:`compare`; the null statistic is computed exactly on each permutation.
    %(permutations)s
    %(random_state)s
    %(device)s
    %(chunk)s

    Returns
    -------
    PermutationResult
    """
    n = n_items(len(permuted))
    if len(fixed) != len(permuted):
        raise ValueError(f"RDMs of {len(permuted)} and {len(fixed)} cells cannot be compared")
    rng = np.random.default_rng(random_state)
    if method == "kendall_tau_a":
        if n > KENDALL_MAX_STIMULI:
            raise ValueError(f"kendall tau-a is O(cells^2): {n} stimuli is too many (at most "
                             f"{KENDALL_MAX_STIMULI}); use spearman")
        square = squareform(np.asarray(permuted, dtype=np.float64), checks=False)
        upper = np.triu_indices(n, k=1)
        y = np.asarray(fixed, dtype=np.float64)
        observed = compare(permuted, fixed, "kendall_tau_a")
        null = np.array([tau_a(square[np.ix_(p, p)][upper], y) for p in random_permutations(n, permutations, rng)])
    else:
        prepared = prepare(permuted, [fixed], method)
        observed = prepared.observed[0]
        null = np.empty(permutations)
        for start in range(0, permutations, chunk):
            perms = random_permutations(n, min(chunk, permutations - start), rng)
            null[start:start + len(perms)] = null_sums(prepared, perms, device)[:, 0]
    return PermutationResult(float(observed), permutation_p(observed, null), null)


@checked(method=Comparison, bootstrap=Count, random_state=RandomState, triangle=Triangle)
def bootstrap(first: np.ndarray, second: np.ndarray, method: Comparison, bootstrap: int,
              random_state: int | np.random.Generator,
              triangle: Triangle = "upper") -> np.ndarray:
    """The comparison on ``bootstrap`` resamples of the stimuli (with replacement).

    Cells between two copies of one stimulus are left out (they are self-dissimilarities).
    For ``spearman`` the ranks of the full RDMs are used in every resample (not re-ranked: the
    resample's cells are a subset of the ranked ones, and re-ranking 10^7 cells a resample would
    cost more than the whole analysis); ``kendall_tau_a`` is computed exactly on each resample.

    Returns
    -------
    ndarray, shape (bootstrap,), float64. ``np.quantile`` of it gives a percentile CI.
    """
    n = n_items(len(first))
    samples = np.random.default_rng(random_state).integers(0, n, size=(bootstrap, n))
    return resampled_comparison(first, second, method, resample_counts(samples, n), triangle)


# ----------------------------------------------------------------------------- group statistics


def canonical_order(fmri_rdms: list[RDM], model_rdm: RDM | list[RDM]) -> tuple[list[str], list[RDM], list[RDM]]:
    """The union of the subjects' stimuli in the model's order, and each subject's RDM and the model's
    RDM over that subject's stimuli, both in union order (so a relabelling of the union is the
    same relabelling for every subject, whatever order its RDM came in). ``model_rdm`` may be one
    RDM per subject (over at least that subject's stimuli) when the model side is not a subset of
    one matrix (CKA's U-centred kernels, :mod:`neurolatent.science.cka`)."""
    per_subject = model_rdm if isinstance(model_rdm, list) else [model_rdm] * len(fmri_rdms)
    union, orders = canonical_stimuli([item.stimuli for item in fmri_rdms], [model.stimuli for model in per_subject],
                                      per_subject[0].name)
    subjects = [item if item.stimuli == order else item.subset(order) for item, order in zip(fmri_rdms, orders)]
    models = [model if model.stimuli == order else model.subset(order) for model, order in zip(per_subject, orders)]
    return union, subjects, models


def canonical_stimuli(subject_stimuli: list[tuple[str, ...]], model_stimuli: list[tuple[str, ...]],
                      model: str = "") -> tuple[list[str], list[tuple[str, ...]]]:
    """:func:`canonical_order` of names only: the union of the subjects' stimuli in the models'
    order (``model_stimuli``: the model's stimuli per subject, or one list for all) and each
    subject's stimuli in union order; ValueError names a stimulus of the union that ``model`` lacks."""
    seen = set().union(*subject_stimuli)
    listed = list(dict.fromkeys(name for stimuli in model_stimuli for name in stimuli))
    missing = seen - set(listed)
    if missing:
        raise ValueError(f"model RDM {model!r} lacks stimulus {sorted(missing)[0]!r} of the subjects' union")
    union = [name for name in listed if name in seen]
    position = {name: i for i, name in enumerate(union)}
    return union, [tuple(sorted(stimuli, key=position.__getitem__)) for stimuli in subject_stimuli]


class SharedDesign:
    """Who saw what: the union of the subjects' stimuli split into atoms, the images seen by exactly
    the same subjects (real BOLD5000: the 2,952 images all four subjects saw, the 1,964 only CSI1-3
    saw). A relabelling that permutes within atoms maps every subject's images onto themselves, so
    it is one relabelling of the union that every subject takes, restricted to its own images; a
    resample drawn within atoms gives every subject as many draws as it saw images."""

    def __init__(self, union: list[str], subjects: list[tuple[str, ...]]):
        """union : the union's stimuli; subjects : each subject's stimuli (the rows of its RDM)."""
        self.size = len(union)
        position = {name: i for i, name in enumerate(union)}
        self.positions = [np.array([position[name] for name in stimuli]) for stimuli in subjects]
        membership = np.zeros((self.size, len(subjects)), dtype=bool)
        for s, rows in enumerate(self.positions):
            membership[rows, s] = True
        _, atom = np.unique(membership, axis=0, return_inverse=True)
        self.atoms = [np.flatnonzero(atom.ravel() == a) for a in range(atom.max() + 1)]
        self.local = []
        for rows in self.positions:
            local = np.full(self.size, -1, dtype=np.int64)
            local[rows] = np.arange(len(rows))
            self.local.append(local)

    def relabellings(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """(count, size) int64: each row a uniformly random permutation of the union within atoms
        (row[u] is the image whose model values image u takes)."""
        out = np.tile(np.arange(self.size), (count, 1))
        for rows in self.atoms:
            out[:, rows] = rng.permuted(np.tile(rows, (count, 1)), axis=1)
        return out

    def resamples(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """(count, size) int64: each row a resample of the union with replacement, within atoms."""
        out = np.empty((count, self.size), dtype=np.int64)
        for rows in self.atoms:
            out[:, rows] = rows[rng.integers(0, len(rows), size=(count, len(rows)))]
        return out

    def restrict(self, replicates: np.ndarray, subject: int) -> np.ndarray:
        """The subject's part of union-wide relabellings or resamples, in its own indices:
        (count, m) with m its number of images."""
        # C order: the Mantel kernel reads a permutation as a row (a strided one is 3x slower)
        return np.ascontiguousarray(self.local[subject][replicates[:, self.positions[subject]]])


@dataclass(frozen=True)
class GroupPermutationResult:
    """statistic : mean over subjects of each subject's comparison; p : its permutation p;
    null : (k,) that mean under each shared relabelling of the stimuli; subject_statistics,
    subject_p : (n_subjects,); subject_nulls : (n_subjects, k), each an exact Mantel null of its
    own subject (relabellings of its images within atoms, see :class:`SharedDesign`); p_method,
    subject_p_method : how p and each subject's p were made (the labels of
    :data:`neurolatent.science.rsa.accelerated.METHODS`; the permutation p unless
    :func:`with_p_values` made them otherwise)."""

    statistic: float
    p: float
    null: np.ndarray
    subject_statistics: np.ndarray
    subject_p: np.ndarray
    subject_nulls: np.ndarray
    p_method: str = "permutation"
    subject_p_method: tuple[str, ...] = ()

    def __post_init__(self):
        if not self.subject_p_method:  # the permutation p of every subject unless told otherwise
            object.__setattr__(self, "subject_p_method", ("permutation",) * len(self.subject_statistics))

    def with_p_values(self, inference: Inference) -> "GroupPermutationResult":
        """The same test with its p's (the group's and each subject's) made from its nulls by
        ``inference`` (:func:`neurolatent.science.rsa.accelerated.p_values`)."""
        p, method = p_values([self.statistic], self.null, inference)
        subject = [p_values([o], row, inference) for o, row in zip(self.subject_statistics, self.subject_nulls)]
        return replace(self, p=float(p[0]), p_method=str(method[0]),
                       subject_p=np.array([float(sp[0]) for sp, _ in subject]),
                       subject_p_method=tuple(str(sm[0]) for _, sm in subject))


@checked(method=Comparison, permutations=Count, random_state=RandomState, chunk=Count, triangle=Triangle)
@fill_doc
def group_mantel(fmri_rdms: list[RDM], model_rdm: RDM | list[RDM], method: Comparison, permutations: int,
                 random_state: int | np.random.Generator,
                 device: str = "cpu", chunk: int = 128, triangle: Triangle = "upper",
                 progress: Callable[[int], object] | None = None) -> GroupPermutationResult:
    """Group permutation test of the mean over subjects of the model-to-subject RDM comparison.

    Each permutation is one relabelling of the stimuli that every subject takes, restricted to the
    images it saw: it permutes images within the atoms of who saw them (:class:`SharedDesign`),
    which is what maps every subject's images onto themselves. Subjects who saw the same images
    therefore get the same relabelling. Independent permutations per subject would make the mean
    of their nulls too narrow whenever the subjects' RDMs are alike (the same images, similar
    brains) and p anti-conservative (``tests/science/rsa/test_inference.py`` measures both).
    The subjects' RDMs are the relabelled side (relabelling one side or the other gives the same
    null distribution), so that several models share each pass: :func:`group_mantel_models`.

    Parameters
    ----------
    fmri_rdms : one RDM per subject, each over the images that subject saw
    model_rdm : an RDM over (at least) the union of those images, or one per subject over (at least)
        its images
    %(method_comparison)s
    %(permutations)s
    %(random_state)s
    %(device)s
    %(chunk)s
    %(triangle)s
    %(progress)s

    Returns
    -------
    GroupPermutationResult
    """
    return group_mantel_models(fmri_rdms, {"model": model_rdm}, method, permutations, random_state, device, chunk,
                               triangle, progress)["model"]


@checked(method=Comparison, permutations=Count, random_state=RandomState, chunk=Count, triangle=Triangle)
def group_mantel_models(fmri_rdms: list[RDM], model_rdms: dict[str, RDM | list[RDM]], method: Comparison,
                        permutations: int, random_state: int | np.random.Generator,
                        device: str = "cpu", chunk: int = 128, triangle: Triangle = "upper",
                        progress: Callable[[int], object] | None = None,
                        map_chunks: Callable[[Callable, list], list] | None = None) -> dict[str, GroupPermutationResult]:
    """:func:`group_mantel` of several models against the same subjects, under the same relabellings.

    Each chunk of relabellings gathers every subject's permuted RDM once and takes its dot product
    with every model's fixed weights (:func:`permuted_dots`): K models cost about 2x one at
    K = 4 (``benchmarks/bench_rsa.py``). Sharing the relabellings makes the models' nulls
    dependent, not any one of them different: each p is the exact permutation p of its model.

    ``map_chunks(function, chunks)``, when given, computes ``[function(c) for c in chunks]``
    elsewhere (the pipeline's Dask scheduler): ``function`` holds the prepared matrices, so a
    mapper that ships it once per worker ships them once per comparison; every chunk's
    relabellings are drawn here first, in the same order, so the nulls are the same bits.

    Returns
    -------
    {model name: GroupPermutationResult}, in the order of ``model_rdms``
    """
    if triangle == "full":
        check_full(method)
    names = list(model_rdms)
    union, subjects, first = canonical_order(fmri_rdms, model_rdms[names[0]])
    # every model over each subject's images in that subject's canonical order: models[m][s]
    models = [first] + [[model if model.stimuli == item.stimuli else model.subset(item.stimuli)
                         for model, item in zip(canonical_order(subjects, model_rdms[name])[2], subjects)]
                        for name in names[1:]]
    design = SharedDesign(union, [item.stimuli for item in subjects])
    rng = np.random.default_rng(random_state)
    n_models, n_subjects = len(names), len(subjects)
    nulls = np.empty((n_models, n_subjects, permutations))
    scale = np.tile([0.0, 1.0], (n_models, n_subjects, 1))  # statistic = a + b * permuted sum
    prepared: list[Prepared | None] = []
    for s, item in enumerate(subjects):
        fixed = _SubjectUppers(models, s)
        if method == "kendall_tau_a":
            prepared.append(None)
            continue
        if triangle == "full":
            maps = [full_square_map(model, item.upper, method) for model in fixed]
            scale[:, s] = [(a, b) for _, _, a, b in maps]
            prepared.append(prepare(maps[0][1], [x for x, _, _, _ in maps], "cosine" if method == "cosine" else "pearson"))
        else:
            prepared.append(prepare(item.upper, fixed, method))
    nulls_of = partial(_chunk_nulls, design=design, subjects=subjects, prepared=prepared, device=device, n_models=n_models,
                       models=[[m.upper for m in per_subject] for per_subject in models] if method == "kendall_tau_a"
                       else None)
    starts = range(0, permutations, chunk)
    if map_chunks is None:
        for start in starts:
            relabellings = design.relabellings(min(chunk, permutations - start), rng)
            nulls[:, :, start:start + len(relabellings)] = nulls_of(relabellings)
            if progress is not None:
                progress(len(relabellings))
    else:
        drawn = [design.relabellings(min(chunk, permutations - start), rng) for start in starts]
        for start, part in zip(starts, map_chunks(nulls_of, drawn)):
            nulls[:, :, start:start + part.shape[2]] = part
        if progress is not None:
            progress(permutations)
    nulls = scale[..., :1] + scale[..., 1:] * nulls
    results = {}
    for m, name in enumerate(names):
        if method == "kendall_tau_a":
            observed = np.array([tau_a(models[m][s].upper, item.upper) for s, item in enumerate(subjects)])
        else:
            observed = scale[m, :, 0] + scale[m, :, 1] * np.array([prep.observed[m] for prep in prepared])
        null = nulls[m].mean(axis=0)
        statistic = float(observed.mean())
        results[name] = GroupPermutationResult(statistic, permutation_p(statistic, null), null, observed,
                                               np.array([permutation_p(o, row) for o, row in zip(observed, nulls[m])]),
                                               nulls[m])
    return results


def _chunk_nulls(relabellings: np.ndarray, design: "SharedDesign", subjects: list[RDM], prepared: list,
                 n_models: int, models: list[list[np.ndarray]] | None, device: str) -> np.ndarray:
    """(n_models, n_subjects, n_relabellings) permuted sums (or Kendall's tau-a, where ``prepared``
    is None) of one chunk of shared relabellings (n_relabellings, n_union); ``models[m][s]`` the
    model's upper triangle over subject s's images (for Kendall's tau-a only)."""
    out = np.empty((n_models, len(subjects), len(relabellings)))
    for s, item in enumerate(subjects):
        perms = design.restrict(relabellings, s).astype(np.uint32)
        if prepared[s] is None:
            square, upper = item.square(), np.triu_indices(item.n, k=1)
            permuted = [square[np.ix_(p, p)][upper] for p in perms]
            for m, per_subject in enumerate(models):
                out[m, s] = [tau_a(cells, per_subject[s]) for cells in permuted]
        else:
            out[:, s] = null_sums(prepared[s], perms, device).T
    return out


class _SubjectUppers(Sequence):
    """The models' upper triangles over subject ``s``'s images (``models[m][s]``), each taken from
    its RDM when indexed: an RDM kept on disk is read, a CKA kernel made, only then, so that
    :func:`~neurolatent.science.rsa.kernels.prepare` holds one at a time."""

    def __init__(self, models: list[list[RDM]], s: int):
        self.models, self.s = models, s

    def __len__(self) -> int:
        return len(self.models)

    def __getitem__(self, m: int) -> np.ndarray:
        return self.models[m][self.s].upper


@dataclass(frozen=True)
class GroupBootstrapResult:
    """replicates : (bootstrap,) the mean over subjects on each shared resample of the stimuli;
    subject_replicates : (n_subjects, bootstrap)."""

    replicates: np.ndarray
    subject_replicates: np.ndarray


@checked(method=Comparison, bootstrap=Count, random_state=RandomState, triangle=Triangle)
def group_bootstrap(fmri_rdms: list[RDM], model_rdm: RDM, method: Comparison, bootstrap: int,
                    random_state: int | np.random.Generator,
                    triangle: Triangle = "upper") -> GroupBootstrapResult:
    """Bootstrap of the mean over subjects of the model-to-subject comparison, resampling stimuli.

    Each replicate draws one resample (with replacement) of the union of the subjects' stimuli,
    within the atoms of who saw them (:class:`SharedDesign`), and every subject takes the draws
    among its images, as many as it saw: subjects who saw the same images see the same resample,
    as rsatoolbox's pattern bootstrap resamples one shared stimulus set. Cells between two copies
    of one stimulus are left out; ``spearman`` uses each subject's full-RDM ranks (as
    :func:`bootstrap`).

    Returns
    -------
    GroupBootstrapResult; ``np.quantile(result.replicates, [0.025, 0.975])`` is a percentile CI.
    """
    union, subjects, models = canonical_order(fmri_rdms, model_rdm)
    design = SharedDesign(union, [item.stimuli for item in subjects])
    resamples = design.resamples(bootstrap, np.random.default_rng(random_state))
    replicates = np.empty((len(subjects), bootstrap))
    for s, (model, item) in enumerate(zip(models, subjects)):
        counts = resample_counts(design.restrict(resamples, s), item.n)
        replicates[s] = resampled_comparison(model.upper, item.upper, method, counts, triangle)
    return GroupBootstrapResult(replicates.mean(axis=0), replicates)


def _pooled_form(vectors: np.ndarray, method: Comparison) -> np.ndarray:
    """Each RDM (row, NaN = missing cell) normalised so that averaging them gives rsatoolbox's
    ``pool_rdm``: z-scored for pearson, ranked for spearman/kendall_tau_a, RMS-scaled for cosine."""
    out = np.full_like(vectors, np.nan, dtype=np.float64)
    for i, row in enumerate(vectors):
        ok = ~np.isnan(row)
        v = row[ok]
        if method == "pearson":
            v = (v - v.mean()) / v.std()
        elif method in ("spearman", "kendall_tau_a"):
            v = rank(v)
        else:
            v = v / np.sqrt(np.mean(v * v))
        out[i, ok] = v
    return out


def noise_ceiling(subject_rdms: np.ndarray, method: Comparison = "spearman",
                  min_cells: int = 10) -> tuple[float, float]:
    """Lower and upper noise ceiling across subjects (rsatoolbox ``boot_noise_ceiling``).

    Parameters
    ----------
    subject_rdms : ndarray, shape (n_subjects, n_cells)
        Each subject's RDM over one common stimulus order; NaN marks a cell the subject lacks
        (a pair of images it did not see both of).
    method : the comparison used for models
    min_cells : a subject sharing fewer cells with the others is left out of the bounds

    Returns
    -------
    (lower, upper) : mean over subjects of the comparison of a subject's RDM with the pooled RDM
        of the other subjects (lower) and of all subjects (upper), each on the cells both have.
        NaN when no subject shares ``min_cells`` cells with the others.
    """
    vectors = np.asarray(subject_rdms, dtype=np.float64)
    if vectors.ndim != 2 or len(vectors) < 2:
        raise ValueError("a noise ceiling needs the RDMs of at least two subjects")
    pooled = _pooled_form(vectors, method)

    def nanmean(rows: np.ndarray) -> np.ndarray:
        counts = (~np.isnan(rows)).sum(axis=0)
        return np.where(counts > 0, np.nansum(rows, axis=0) / np.maximum(counts, 1), np.nan)

    everyone = nanmean(pooled)
    lower, upper = [], []
    for s in range(len(vectors)):
        others = nanmean(np.delete(pooled, s, axis=0))
        own = vectors[s]
        shared = ~np.isnan(own) & ~np.isnan(others)
        if shared.sum() < min_cells:
            continue
        lower.append(compare(own[shared], others[shared], method))
        mine = ~np.isnan(own)
        upper.append(compare(own[mine], everyone[mine], method))
    if not lower:
        return float("nan"), float("nan")
    return float(np.mean(lower)), float(np.mean(upper))


def familywise_p(tests: dict, inference: Inference = "exact",
                 tolerance: float = PERMUTATION_TOLERANCE) -> dict[object, tuple[float, str]]:
    """Family-wise corrected p of every cell of a family of permutation tests (the max-statistic
    method: Nichols & Holmes 2002): the p of each cell's statistic against the null of the family's
    maximum, p_fwe = (1 + #{k : max over cells of null_k >= observed}) / (1 + K) for ``exact``, so
    the chance that any cell of a null family reaches p_fwe <= alpha is at most alpha; ``tail`` or
    ``gamma`` fit that maximum's null (:func:`neurolatent.science.rsa.accelerated.p_values`).

    Parameters
    ----------
    tests : {cell: GroupPermutationResult (or anything with ``statistic`` and ``null`` (K,))}, every
        null drawn under the same K relabellings (:func:`group_mantel_models` with the same random
        state and the same subjects' images: every ROI and model of one fMRI representation)
    inference : exact, tail or gamma

    Returns
    -------
    {cell: (p_fwe, how it was made)}
    """
    nulls = np.stack([np.asarray(test.null, dtype=np.float64) for test in tests.values()])
    p, method = p_values([test.statistic for test in tests.values()], nulls.max(axis=0), inference, tolerance)
    if inference != "exact":
        # two fits extrapolated far out can order the other way: a corrected p is never below the cell's own
        own = np.array([p_values([test.statistic], test.null, inference, tolerance)[0][0] for test in tests.values()])
        p = np.maximum(p, own)
    return {cell: (float(pc), str(mc)) for cell, pc, mc in zip(tests, p, method)}
