"""Accelerated permutation inference (neurolatent.science.rsa.accelerated): the GPD tail and the gamma
fit against the exact 10,000-permutation p, their calibration on null designs (uncorrected and
family-wise), planted effects found, and Mantel's exact moments against every relabelling."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import squareform

from neurolatent.science.rsa.accelerated import fit_tail, gamma_p, mantel_moments, p_values, tail_p
from neurolatent.science.rsa.compare import rank
from neurolatent.science.rsa.inference import familywise_p, mantel
from neurolatent.science.rsa.kernels import unit_vector
from neurolatent.science.rsa.rdm import RDM, rdm_upper
from neurolatent.science.rsa.results import compare_regions
from test_inference import N_UNION, _subjects_sharing_most_stimuli


def test_mantel_moments_are_the_mean_and_variance_over_every_relabelling():
    rng = np.random.default_rng(0)
    n = 7
    a, b = rdm_upper(rng.normal(size=(n, 3))), rng.uniform(size=n * (n - 1) // 2)  # neither centred
    square, upper = squareform(b), np.triu_indices(n, k=1)
    every = np.array([a @ square[np.ix_(p, p)][upper] for p in map(list, itertools.permutations(range(n)))])
    mean, variance = mantel_moments(a, b)
    assert mean == pytest.approx(every.mean(), rel=1e-12)
    assert variance == pytest.approx(every.var(), rel=1e-10)
    with pytest.raises(ValueError, match="same n >= 4 stimuli"):
        mantel_moments(a, rdm_upper(rng.normal(size=(6, 3))))


def test_the_permutation_kernels_null_has_mantels_exact_moments():
    """The cross-check of a sampled null: the float32 kernel's 10,000 Spearman statistics have the
    mean (0) and variance Mantel's formulas give for the ranked, centred, unit-length RDMs."""
    rng = np.random.default_rng(1)
    a, b = rdm_upper(rng.normal(size=(30, 4))), rdm_upper(rng.normal(size=(30, 4)))
    null = mantel(a, b, "spearman", 10_000, 2).null
    mean, variance = mantel_moments(*(unit_vector(rank(v), centre=True) for v in (a, b)))
    assert mean == pytest.approx(0, abs=1e-15)
    assert abs(null.mean()) < 4 * np.sqrt(variance / len(null))
    assert null.var() / variance == pytest.approx(1, abs=4 * np.sqrt(2 / len(null)))


def test_the_tail_fit_is_scipys_generalized_pareto_and_recovers_a_known_one():
    """Hosking & Wallis's moment fit of draws from a GPD (scipy's shape c = -0.2: a bounded tail, as a
    correlation's is) finds its shape; the fitted survival function is scipy's genpareto.sf."""
    draws = stats.genpareto.rvs(c=-0.2, scale=1.0, size=20_000, random_state=3)
    u, scale, shape, share = fit_tail(draws)
    assert shape == pytest.approx(0.2, abs=0.05)  # Hosking's k = -c
    assert 0.2 < share <= 0.249  # one of the first of PALM's candidate thresholds (0.751, 0.761, ...) fits
    y = np.array([0.1, 0.5, 1.0, 2.0])
    p, method = tail_p(u + y, draws, below=1.0)
    np.testing.assert_allclose(p, share * stats.genpareto.sf(y, c=-shape, scale=scale), rtol=1e-10)
    assert set(method) == {"gpd"}
    # beyond the fitted tail's end the fit says 0: the permutation p is kept and labelled
    p, method = tail_p([u + scale / shape + 1], draws, below=1.0)
    assert method[0] == "bound" and p[0] == pytest.approx(1 / (1 + len(draws)))


def test_gamma_p_is_the_tail_of_a_skewed_null():
    draws = stats.gamma.rvs(3.0, size=20_000, random_state=4)
    x = np.array([4.0, 8.0, 14.0])
    p, method = gamma_p(x, draws)
    np.testing.assert_allclose(np.log10(p), np.log10(stats.gamma.sf(x, 3.0)), atol=0.25)
    assert set(method) == {"gamma"}


def _effects(count: int, n: int = 40):
    """``count`` (model RDM, brain RDM) pairs over n images with planted effects of graded strength."""
    rng = np.random.default_rng(5)
    for strength in np.linspace(0.1, 0.4, count):
        brain = rng.normal(size=(n, 5))
        yield rdm_upper(strength * brain + rng.normal(size=(n, 5))), rdm_upper(brain)


#: the largest |log10 p - log10 exact p| allowed: the GPD's moment fit to 250 tail values of 1,000
#: is off by up to 10x where its shape says the tail ends near the statistic (measured: exact p 0.004,
#: GPD 0.0004), the gamma's three moments by less than 2x (why the default is gamma)
LOG10_ERROR = {"tail": 1.0, "gamma": 0.3}


@pytest.mark.parametrize("inference", ["tail", "gamma"])
def test_accelerated_p_agrees_with_the_exact_10000_permutation_p_in_log10(inference):
    """1,000 relabellings and the fit against 10,000 relabellings' permutation p, on effects whose
    exact p spans 0.1 to 0.001, wherever the exact p resolves it (20 or more null values reach the
    statistic)."""
    errors = []
    for k, (model, brain) in enumerate(_effects(24)):
        exact = mantel(model, brain, "spearman", 10_000, 100 + k)
        if not 20 / 10_001 <= exact.p <= 0.1:
            continue
        fewer = mantel(model, brain, "spearman", 1000, 200 + k)
        p, _ = p_values([fewer.statistic], fewer.null, inference)
        errors.append(np.log10(p[0]) - np.log10(exact.p))
    errors = np.abs(errors)
    assert len(errors) >= 8, len(errors)
    assert np.median(errors) < 0.1 and errors.max() < LOG10_ERROR[inference], errors


def _null_family(rng: np.random.Generator, regions: int = 3, models: int = 3):
    """Subjects who share most images, ``regions`` ROIs of them and ``models`` models, nothing planted."""
    names = tuple(f"img{i:02d}.jpg" for i in range(N_UNION))
    seen = [np.sort(rng.choice(N_UNION, size=18, replace=False)) for _ in range(3)]
    region_rdms = {f"roi{r}": [RDM(rdm_upper(rng.normal(size=(18, 6))), tuple(names[i] for i in own), "correlation",
                                   f"s{s}", {"subject": f"s{s}"}) for s, own in enumerate(seen)]
                   for r in range(regions)}
    model_rdms = {f"m{m}": RDM(rdm_upper(rng.normal(size=(N_UNION, 6))), names, "correlation") for m in range(models)}
    return region_rdms, model_rdms


@pytest.mark.parametrize("inference", ["tail", "gamma"])
def test_accelerated_p_is_calibrated_on_null_designs_uncorrected_and_familywise(inference):
    """200 null datasets of 3 ROIs x 3 models: 2-8 % of the cells' p and of the datasets' smallest
    family-wise p are at most 0.05, as the stage computes them (500 relabellings and the fit)."""
    rng = np.random.default_rng(6)
    cells, familywise = [], []
    for dataset in range(200):
        regions, models = _null_family(rng)
        found = compare_regions(regions, models, method="spearman", permutations=500, bootstrap=1, ci=0.9,
                                seed=dataset, name="x", inference=inference)
        tests = {(r, m): comparison.test for r, item in found.items() for m, comparison in item.models.items()}
        cells += [test.p for test in tests.values()]
        familywise.append(min(p for p, _ in familywise_p(tests, inference).values()))
    uncorrected, corrected = np.mean(np.array(cells) <= 0.05), np.mean(np.array(familywise) <= 0.05)
    assert 0.02 <= uncorrected <= 0.08, uncorrected
    assert 0.02 <= corrected <= 0.08, corrected


@pytest.mark.parametrize("inference", ["tail", "gamma"])
def test_a_planted_effect_is_still_found_and_each_p_says_how_it_was_made(inference):
    rng = np.random.default_rng(7)
    subjects, planted = _subjects_sharing_most_stimuli(rng, planted=1.0)
    noise = RDM(rdm_upper(rng.normal(size=(N_UNION, 8))), planted.stimuli, "correlation")
    found = compare_regions({"roi": subjects}, {"planted": planted, "noise": noise}, method="spearman",
                            permutations=1000, bootstrap=10, ci=0.9, seed=0, name="x", inference=inference)["roi"]
    tests = {model: comparison.test for model, comparison in found.models.items()}
    fwe = familywise_p(tests, inference)
    assert tests["planted"].p < 1e-3 and fwe["planted"][0] < 1e-3 and tests["noise"].p > 0.05
    assert all(fwe[model][0] >= tests[model].p for model in tests)  # never below the cell's own p
    # a fit's p, or beyond the fitted distribution's end, the permutation p as the bound it is
    fitted = {"tail": ("gpd", "bound"), "gamma": ("gamma", "bound")}[inference]
    assert tests["planted"].p_method in fitted and fwe["planted"][1] in fitted
    assert all(row["p_method"] in ("permutation", "gpd", "gamma", "bound") for row in found.subject_rows())
    exact = compare_regions({"roi": subjects}, {"planted": planted}, method="spearman", permutations=1000,
                            bootstrap=10, ci=0.9, seed=0, name="x")["roi"].models["planted"]
    assert exact.group_row()["p_method"] == "permutation" and exact.test.p == 1 / 1001
    # the same null: only the p's differ
    np.testing.assert_array_equal(exact.test.null, tests["planted"].null)
