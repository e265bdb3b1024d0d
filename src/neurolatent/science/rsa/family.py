"""Every ROI of one fMRI representation against every model at once: :func:`group_family` gives
what :func:`~neurolatent.science.rsa.inference.group_mantel_models` and
:func:`~neurolatent.science.rsa.inference.group_bootstrap` give region by region, with the work the
regions share done once (each model's RDM over a subject's images cut out and ranked once, each
resample's quadratic forms of a model or a region once, the relabellings and resamples drawn once).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
from scipy.spatial.distance import squareform

from neurolatent.science._docs import fill_doc
from neurolatent.science.constraints import Count, RandomState, checked
from neurolatent.science.rsa.compare import Comparison, compare, correlation_from_moments, rank
from neurolatent.science.rsa.inference import (GroupBootstrapResult, GroupPermutationResult, SharedDesign,
                                               canonical_stimuli)
from neurolatent.science.rsa.kernels import Prepared, null_sums, resample_counts, unit_vector
from neurolatent.science.rsa.rdm import RDM
from neurolatent.science.stats import permutation_p


def _centred(upper: np.ndarray, method: Comparison) -> np.ndarray:
    """An RDM's upper cells as the comparison correlates them: ranked for spearman, centred (not for
    cosine), float64; the operations of :func:`~neurolatent.science.rsa.kernels.prepare` and
    :func:`~neurolatent.science.rsa.kernels.resampled_comparison`, so that the bits are theirs."""
    if method == "spearman":
        values = rank(upper)
        values -= values.mean()  # in place: the ranks are this function's own
        return values
    values = np.asarray(upper, dtype=np.float64)
    return values - values.mean() if method != "cosine" else values


def _quadratic_form(upper: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(n_boot,) sum over the pairs of different draws of each resample: c M c / 2 (see
    :func:`neurolatent.science.rsa.kernels.resampled_moments`)."""
    return 0.5 * np.einsum("bi,bi->b", counts @ squareform(upper, checks=False), counts)


@dataclass(frozen=True)
class FamilyResult:
    """Every region of one fMRI representation against every model (:func:`group_family`):
    tests[region][model], boots[region][model] and pearson[region][model] ((n_subjects,) the study's
    Pearson r of each subject)."""

    tests: dict[str, dict[str, GroupPermutationResult]]
    boots: dict[str, dict[str, GroupBootstrapResult]]
    pearson: dict[str, dict[str, np.ndarray]]


@checked(permutations=Count, bootstrap=Count, permutation_state=RandomState, bootstrap_state=RandomState,
         chunk=Count)
@fill_doc
def group_family(region_rdms: dict[str, list[RDM]], model_rdms: dict[str, RDM], method: Comparison,
                 permutations: int, bootstrap: int, permutation_state: int | np.random.Generator,
                 bootstrap_state: int | np.random.Generator, device: str = "cpu", chunk: int = 128,
                 progress: Callable[[int], object] | None = None,
                 map_chunks: Callable[[Callable, list], list] | None = None) -> FamilyResult:
    """:func:`~neurolatent.science.rsa.inference.group_mantel_models` and
    :func:`~neurolatent.science.rsa.inference.group_bootstrap` of every model against every region
    (the ROIs of one representation, whose RDMs are over the same images of each subject), with what
    they share computed once: each model's RDM over a subject's images is cut out and ranked once for
    all regions (not once per region, test and model), each resample's quadratic forms of a model or
    a region once (not once per pair), and the relabellings and resamples drawn once. Subject by
    subject, so that one subject's prepared matrices are in memory at a time.

    The results are the bits :func:`group_mantel_models` and :func:`group_bootstrap` give each
    region with the same random states (``tests/science/rsa/test_results.py``). Upper triangles
    and pearson, spearman or cosine only (Kendall's tau-a and the full square: those functions).

    Parameters
    ----------
    region_rdms : {region: one RDM per subject}, every region with the same subjects in the same
        order, each subject's RDMs over the same images
    model_rdms : {name: RDM over (at least) the union of the subjects' images}, all listing their
        images in one order (that order is the union's: it defines the relabellings and resamples).
        Either may hold RDMs kept on disk (:class:`neurolatent.io.rdms.StoredRDM`, anything whose
        ``subset`` gives an RDM in memory): each is then read twice per subject (the study's r,
        then its ranks or tests) and dropped once used, so that what is held is one subject's
        work, not every RDM
    method : pearson, spearman or cosine
    %(permutations)s
    %(bootstrap)s
    permutation_state, bootstrap_state : the random states of :func:`group_mantel_models` and of
        :func:`group_bootstrap`
    device, chunk, map_chunks : as :func:`group_mantel_models`
    progress : called with the number of replicates done, as each subject's are: each model's
        resamples of every region and each region's permutations (in all what one
        :func:`group_mantel_models` and a :func:`group_bootstrap` per model and region would count)

    Returns
    -------
    FamilyResult
    """
    if method not in ("pearson", "spearman", "cosine"):
        raise ValueError(f"group_family compares with pearson, spearman or cosine, not {method!r}")
    regions, names = list(region_rdms), list(model_rdms)
    first = region_rdms[regions[0]]
    for region in regions[1:]:
        if [set(item.stimuli) for item in region_rdms[region]] != [set(item.stimuli) for item in first]:
            raise ValueError(f"region {region!r} has other subjects or images than {regions[0]!r}")
    union, orders = canonical_stimuli([item.stimuli for item in first], [model_rdms[names[0]].stimuli],
                                      model_rdms[names[0]].name)
    design = SharedDesign(union, orders)
    rng = np.random.default_rng(permutation_state)
    # int32: 10,000 relabellings of 4,916 images take 197 MB
    drawn = [design.relabellings(min(chunk, permutations - start), rng).astype(np.int32)
             for start in range(0, permutations, chunk)]
    resamples = design.resamples(bootstrap, np.random.default_rng(bootstrap_state))
    n_regions, n_models, n_subjects = len(regions), len(names), len(orders)
    nulls = np.empty((n_regions, n_models, n_subjects, permutations))
    observed = np.empty((n_regions, n_models, n_subjects))
    pearson = np.empty((n_regions, n_models, n_subjects))
    replicates = np.empty((n_regions, n_models, n_subjects, bootstrap))
    for s, order in enumerate(orders):
        counts = resample_counts(design.restrict(resamples, s), len(order))
        pairs = 0.5 * (counts.sum(axis=1) ** 2 - (counts * counts).sum(axis=1))
        # the study's r of every region with every model (in the region's own order, as
        # compare_models reports it), then each region's centred cells: a region's RDM is held for
        # one step at a time, and the models' cuts are gone before the centred cells pile up
        models_own: dict[tuple[str, ...], list[RDM]] = {}
        for r, region in enumerate(regions):
            own = _in_memory(region_rdms[region][s])
            if own.stimuli not in models_own:
                models_own[own.stimuli] = [model_rdms[name].subset(own.stimuli) for name in names]
            for m, model in enumerate(models_own[own.stimuli]):
                pearson[r, m, s] = compare(model.upper, own.upper, "pearson")
            del own
        del models_own
        regions_centred, region_forms = [], []
        for region in regions:
            own = _in_memory(region_rdms[region][s])
            x = _centred((own if own.stimuli == order else own.subset(order)).upper, method)
            del own
            regions_centred.append(x)
            region_forms.append((_quadratic_form(x, counts), _quadratic_form(x * x, counts)))
            del x
        # filled row by row: the models' unit vectors and a stacked copy are never held together
        weights = np.empty((n_models, len(regions_centred[0])))
        for m, name in enumerate(names):
            y = _centred(model_rdms[name].subset(order).upper, method)
            qy, qyy = _quadratic_form(y, counts), _quadratic_form(y * y, counts)
            for r, x in enumerate(regions_centred):
                moments = np.array([pairs, qy, region_forms[r][0], qyy, region_forms[r][1], _quadratic_form(y * x, counts)])
                replicates[r, m, s] = correlation_from_moments(moments, method)
            weights[m] = unit_vector(y, centre=False)
            del y, qy, qyy
            if progress is not None:  # a model's resamples of every region: ~1 s a form at 4,916 images
                progress(_share(n_regions * bootstrap, s, n_subjects))
        # every region's observed statistics first, so that the float64 weights go before the passes
        units32 = []  # float32 as the kernel takes them: the float64 units are for the observed statistics
        for r in range(n_regions):
            unit = unit_vector(regions_centred[r], centre=False)
            regions_centred[r] = None
            observed[r, :, s] = weights @ unit
            units32.append(unit.astype(np.float32))
            del unit
        weights32 = weights.astype(np.float32)
        del weights
        for r in range(n_regions):
            prepared = Prepared(squareform(units32[r], checks=False), weights32, observed[r, :, s].copy())
            units32[r] = None
            of_chunk = partial(_subject_nulls, design=design, subject=s, prepared=prepared, device=device)
            parts = map(of_chunk, drawn) if map_chunks is None else map_chunks(of_chunk, drawn)
            start = 0
            for part in parts:
                nulls[r, :, s, start:start + part.shape[1]] = part
                start += part.shape[1]
                if progress is not None:  # a chunk of a region's permutations, spread over its subjects
                    progress(_share(part.shape[1], s, n_subjects))
    tests: dict[str, dict[str, GroupPermutationResult]] = {}
    boots: dict[str, dict[str, GroupBootstrapResult]] = {}
    for r, region in enumerate(regions):
        tests[region], boots[region] = {}, {}
        for m, name in enumerate(names):
            statistic, null = float(observed[r, m].mean()), nulls[r, m].mean(axis=0)
            tests[region][name] = GroupPermutationResult(
                statistic, permutation_p(statistic, null), null, observed[r, m],
                np.array([permutation_p(o, row) for o, row in zip(observed[r, m], nulls[r, m])]), nulls[r, m])
            boots[region][name] = GroupBootstrapResult(replicates[r, m].mean(axis=0), replicates[r, m])
    return FamilyResult(tests, boots, {region: dict(zip(names, pearson[r])) for r, region in enumerate(regions)})


def _in_memory(item) -> RDM:
    """``item`` as an RDM in memory: one kept on disk (:class:`neurolatent.io.rdms.StoredRDM`) is
    read; an RDM in memory is itself (its subset in its own order shares its cells)."""
    return item.subset(item.stimuli)


def _share(count: int, subject: int, n_subjects: int) -> int:
    """Subject ``subject``'s part of ``count`` replicates spread over ``n_subjects`` (the last takes
    the remainder), so that a progress bar moves as each subject's work is done."""
    return count // n_subjects + (count % n_subjects if subject == n_subjects - 1 else 0)


def _subject_nulls(relabellings: np.ndarray, design: SharedDesign, subject: int, prepared: Prepared,
                   device: str) -> np.ndarray:
    """(n_models, n_relabellings) permuted sums of one subject under a chunk of shared relabellings."""
    return null_sums(prepared, design.restrict(relabellings, subject).astype(np.uint32), device).T
