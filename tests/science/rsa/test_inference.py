"""RSA inference (neurolatent.science.rsa.inference): Mantel tests exact and calibrated, bootstrap CIs,
noise ceilings against rsatoolbox, and the group statistics that hold when subjects saw the same
images, on null and planted data."""

from __future__ import annotations

import numpy as np
import pytest
from rsatoolbox.inference import boot_noise_ceiling
from rsatoolbox.rdm import RDMs
from scipy import stats
from scipy.spatial.distance import pdist, squareform

from neurolatent.science.rsa.compare import compare
from neurolatent.science.rsa.inference import (
    bootstrap,
    group_bootstrap,
    group_mantel,
    group_mantel_models,
    mantel,
    noise_ceiling,
    random_permutations,
)
from neurolatent.science.rsa.kernels import (
    resampled_comparison,
)
from neurolatent.science.rsa.rdm import RDM, rdm_upper
from test_compare import RSATOOLBOX_METHOD

from neurolatent.science.stats import permutation_p, zscore
from neurolatent.science.synthetic import draw_image, image_features, planted_patterns


def random_patterns(seed: int, n: int = 40, d: int = 15) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d))


@pytest.mark.parametrize("method", ["pearson", "spearman", "cosine"])
def test_noise_ceiling_equals_rsatoolbox(method):
    rng = np.random.default_rng(9)
    truth = random_patterns(10)
    subjects = np.stack([rdm_upper(truth + 1.5 * rng.normal(size=truth.shape)) for _ in range(5)])
    theirs = boot_noise_ceiling(RDMs(subjects), method=RSATOOLBOX_METHOD[method])
    np.testing.assert_allclose(noise_ceiling(subjects, method), theirs, atol=1e-6)


def test_noise_ceiling_with_partly_shared_stimuli_uses_shared_pairs():
    rng = np.random.default_rng(11)
    truth = random_patterns(12, n=30)
    vectors = np.stack([rdm_upper(truth + rng.normal(size=truth.shape)) for _ in range(3)])
    lower, upper = noise_ceiling(vectors, "spearman")
    missing = vectors.copy()
    square = squareform(missing[2])
    square[:5, :] = square[:, :5] = np.nan  # subject 3 never saw images 0-4
    missing[2] = square[np.triu_indices(30, k=1)]
    partial = noise_ceiling(missing, "spearman")
    assert 0 < partial[0] <= partial[1] < 1 and abs(partial[0] - lower) < 0.1 and abs(partial[1] - upper) < 0.1


@pytest.mark.parametrize("method", ["pearson", "spearman", "cosine", "kendall_tau_a"])
def test_every_permutation_is_the_exact_statistic_of_the_permuted_rdm(method):
    a, b = rdm_upper(random_patterns(13, n=25)), rdm_upper(random_patterns(14, n=25))
    result = mantel(a, b, method, permutations=20, random_state=3)
    square = squareform(a)
    upper = np.triu_indices(25, k=1)
    expected = [compare(square[np.ix_(p, p)][upper], b, method)
                for p in random_permutations(25, 20, np.random.default_rng(3))]
    np.testing.assert_allclose(result.null, expected, atol=1e-5)
    assert result.statistic == pytest.approx(compare(a, b, method), abs=1e-12)


def _planted_rdms(snr: float, seed: int, n: int = 40):
    """The synthetic generator's own features and planted voxel patterns, plus noise at ``snr``."""
    rng = np.random.default_rng(seed)
    features = zscore(np.stack([image_features(draw_image(f"img{seed}_{i}.jpg", ("coco", "imagenet", "scenes")[i % 3], 64))
                                        for i in range(n)]))
    patterns = planted_patterns(features, 200, rng)
    responses = snr * patterns + rng.normal(size=patterns.shape)
    return rdm_upper(features), rdm_upper(responses)


def test_planted_feature_rdm_is_recovered_at_high_snr_and_not_at_zero():
    model, brain = _planted_rdms(snr=2.0, seed=0)
    found = mantel(model, brain, "spearman", 999, 0)
    assert found.statistic > 0.5 and found.p < 0.01
    low, high = np.quantile(bootstrap(model, brain, "spearman", 300, 0), [0.025, 0.975])
    assert 0 < low < found.statistic < high
    model, brain = _planted_rdms(snr=0.0, seed=1)
    assert mantel(model, brain, "spearman", 999, 0).p > 0.05


def test_permutation_p_values_are_calibrated_under_the_null():
    rng = np.random.default_rng(2024)
    p = []
    for _ in range(200):
        x, y = rng.normal(size=(12, 5)), rng.normal(size=(12, 5))
        p.append(mantel(rdm_upper(x), rdm_upper(y), "spearman", 199, rng).p)
    fraction = np.mean(np.array(p) < 0.05)
    assert 0.02 <= fraction <= 0.08, fraction


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="constant row"):
        rdm_upper(np.ones((3, 4)))
    with pytest.raises(ValueError, match="not the upper triangle"):
        mantel(np.ones(4), np.ones(4), "spearman", 10, 0)
    names = tuple(f"s{i}" for i in range(5))
    with pytest.raises(ValueError, match="triangle 'full' supports"):
        group_mantel([RDM(np.arange(10.0), names, "correlation")], RDM(np.arange(10.0)[::-1], names,
                         "correlation"), "kendall_tau_a", 9, 0, triangle="full")
    with pytest.raises(ValueError, match="use spearman"):
        mantel(np.arange(200 * 199 // 2, dtype=float), np.arange(200 * 199 // 2, dtype=float), "kendall_tau_a", 2, 0)
    with pytest.raises(ValueError, match="permutations: Input should be greater than or equal to 1"):
        mantel(np.arange(10.0), np.arange(10.0), "spearman", 0, 0)


@pytest.mark.parametrize("method", ["pearson", "spearman", "cosine"])
def test_full_square_comparison_equals_scipy_on_the_whole_matrices_and_its_tests_follow(method):
    rng = np.random.default_rng(11)
    first, second = pdist(rng.normal(size=(25, 4)), "correlation"), pdist(rng.normal(size=(25, 4)), "correlation")
    a, b = squareform(first).ravel(), squareform(second).ravel()
    direct = {"pearson": stats.pearsonr(a, b)[0], "spearman": stats.spearmanr(a, b)[0],
              "cosine": a @ b / np.linalg.norm(a) / np.linalg.norm(b)}[method]
    assert compare(first, second, method, "full") == pytest.approx(direct, abs=1e-12)
    # a bootstrap "resample" that draws every stimulus once is the observed statistic
    once_each = np.ones((1, 25))
    assert resampled_comparison(first, second, method, once_each, "full")[0] == pytest.approx(direct)
    # every permutation of the group test is the exact full-square statistic of the relabelled RDM
    names = tuple(f"s{i}" for i in range(25))
    test = group_mantel([RDM(second, names, "correlation")], RDM(first, names, "correlation"), method,
                            20, 4, triangle="full")
    perms = random_permutations(25, 20, np.random.default_rng(4))
    square = squareform(second)  # the subject's side is the relabelled one
    exact = [compare(first, squareform(square[np.ix_(p, p)], checks=False), method, "full") for p in perms]
    np.testing.assert_allclose(test.subject_nulls[0], exact, atol=1e-5)
    assert test.statistic == pytest.approx(direct, abs=1e-12)


N_UNION = 20


def _subjects_sharing_most_stimuli(rng: np.random.Generator, planted: float = 0.0):
    """Three subjects whose RDMs are alike (a shared brain structure plus a little individual noise),
    each seeing 18 of 20 images, and a model that shares ``planted`` of its structure with them."""
    names = [f"img{i:02d}.jpg" for i in range(N_UNION)]
    brain = rng.normal(size=(N_UNION, 8))
    model_patterns = planted * brain + rng.normal(size=(N_UNION, 8))
    model = RDM(rdm_upper(model_patterns), tuple(names), "correlation", "model")
    subjects = []
    for s in range(3):
        seen = np.sort(rng.choice(N_UNION, size=18, replace=False))
        patterns = brain[seen] + 0.3 * rng.normal(size=(18, 8))
        subjects.append(RDM(rdm_upper(patterns), tuple(names[i] for i in seen), "correlation", f"s{s}",
                                {"subject": f"s{s}"}))
    return subjects, model


def _independent_group_p(subjects, model, n_permutations, rng) -> float:
    """The old scheme, kept here only to show the difference: each subject permuted independently,
    the group null the mean of the subjects' nulls."""
    results = [mantel(model.subset(item.stimuli).upper, item.upper, "spearman", n_permutations, rng)
               for item in subjects]
    statistic = np.mean([r.statistic for r in results])
    return permutation_p(statistic, np.mean([r.null for r in results], axis=0))


def test_group_p_is_calibrated_when_subjects_share_stimuli_and_the_old_scheme_is_not():
    rng = np.random.default_rng(14)
    shared, independent = [], []
    for _ in range(300):
        subjects, model = _subjects_sharing_most_stimuli(rng)
        shared.append(group_mantel(subjects, model, "spearman", 199, rng).p)
        independent.append(_independent_group_p(subjects, model, 199, rng))
    shared_rate, independent_rate = np.mean(np.array(shared) < 0.05), np.mean(np.array(independent) < 0.05)
    assert 0.02 <= shared_rate <= 0.08, shared_rate
    assert independent_rate > 0.08, independent_rate


def test_a_planted_group_effect_is_found():
    rng = np.random.default_rng(15)
    subjects, model = _subjects_sharing_most_stimuli(rng, planted=1.0)
    result = group_mantel(subjects, model, "spearman", 999, rng)
    assert result.statistic > 0.3 and result.p < 0.01
    assert (result.subject_p < 0.01).all()
    # each subject's own null is a Mantel null of that subject: its statistic equals compare()
    for item, observed in zip(subjects, result.subject_statistics):
        assert observed == pytest.approx(compare(model.subset(item.stimuli).upper, item.upper, "spearman"))


def test_subjects_who_saw_the_same_images_get_the_same_relabelling():
    rng = np.random.default_rng(16)
    subjects, model = _subjects_sharing_most_stimuli(rng)
    twin = RDM(subjects[0].upper, subjects[0].stimuli, "correlation", "twin")
    result = group_mantel([subjects[0], twin], model, "pearson", 50, 0)
    np.testing.assert_array_equal(result.subject_nulls[0], result.subject_nulls[1])
    # a subject listed in another order is the same subject
    reordered = subjects[0].subset(subjects[0].stimuli[::-1])
    again = group_mantel([subjects[0], reordered], model, "pearson", 50, 0)
    np.testing.assert_allclose(again.subject_nulls[0], again.subject_nulls[1], atol=1e-6)


@pytest.mark.parametrize("method", ["spearman", "kendall_tau_a"])
def test_models_sharing_a_pass_get_each_the_test_it_would_get_alone(method):
    rng = np.random.default_rng(17)
    subjects, model = _subjects_sharing_most_stimuli(rng, planted=1.0)
    others = {"planted": model, "unrelated": RDM(rdm_upper(rng.normal(size=(N_UNION, 5))),
                                                      model.stimuli[::-1], "correlation", "unrelated")}
    together = group_mantel_models(subjects, others, method, 99, 3)
    for name, item in others.items():
        # the first model's order names the union's relabellings; the second is listed in reverse
        alone = group_mantel(subjects, item.subset(model.stimuli), method, 99, 3)
        np.testing.assert_allclose(together[name].subject_nulls, alone.subject_nulls, atol=1e-6)
        assert together[name].p == alone.p and together[name].statistic == pytest.approx(alone.statistic)
    assert together["planted"].p < 0.05 < together["unrelated"].p


def _direct_group_bootstrap(subjects, model, n_bootstrap, seed) -> np.ndarray:
    """The shared resample written out: per replicate, each group of images seen by the same
    subjects resampled with replacement (image by image, a Python loop), each subject taking the
    draws among its images, pairs of copies of one image left out, the comparison, the mean."""
    union = [name for name in model.stimuli if any(name in item.stimuli for item in subjects)]
    seen_by = {name: tuple(name in item.stimuli for item in subjects) for name in union}
    groups = {}
    for name in union:
        groups.setdefault(seen_by[name], []).append(name)
    rng = np.random.default_rng(seed)
    out = np.empty(n_bootstrap)
    for b in range(n_bootstrap):
        drawn_names = {}
        for key, names in groups.items():
            for slot, pick in zip(names, rng.integers(0, len(names), size=len(names))):
                drawn_names[slot] = names[pick]
        values = []
        for item in subjects:
            own_model = model.subset(item.stimuli).square()
            position = {name: i for i, name in enumerate(item.stimuli)}
            drawn = np.array([position[drawn_names[name]] for name in union if name in position])
            a, c = np.triu_indices(len(drawn), k=1)
            keep = drawn[a] != drawn[c]
            values.append(compare(own_model[drawn[a[keep]], drawn[c[keep]]],
                                      item.square()[drawn[a[keep]], drawn[c[keep]]], "pearson"))
        out[b] = np.mean(values)
    return out


def test_group_bootstrap_equals_a_direct_shared_resample():
    rng = np.random.default_rng(17)
    subjects, model = _subjects_sharing_most_stimuli(rng, planted=0.5)
    ours = group_bootstrap(subjects, model, "pearson", 300, 5).replicates
    direct = _direct_group_bootstrap(subjects, model, 300, 6)  # independent draws
    assert abs(ours.std() / direct.std() - 1) < 0.15, (ours.std(), direct.std())
    assert abs(ours.mean() - direct.mean()) < 0.25 * direct.std()


def test_group_bootstrap_sd_matches_rsatoolbox_when_subjects_share_every_image():
    """rsatoolbox resamples one shared stimulus set for all subjects' RDMs (eval_bootstrap_pattern);
    with every image seen by every subject ours is the same scheme."""
    from rsatoolbox.inference import eval_bootstrap_pattern
    from rsatoolbox.model import ModelFixed
    from rsatoolbox.rdm import RDMs

    rng = np.random.default_rng(18)
    names = tuple(f"img{i:02d}.jpg" for i in range(30))
    brain = rng.normal(size=(30, 8))
    model = RDM(rdm_upper(0.7 * brain + rng.normal(size=(30, 8))), names, "correlation", "model")
    subjects = [RDM(rdm_upper(brain + 0.4 * rng.normal(size=(30, 8))), names, "correlation", f"s{s}")
                for s in range(3)]
    ours = group_bootstrap(subjects, model, "pearson", 1000, 0).replicates
    data = RDMs(np.stack([s.upper for s in subjects]), pattern_descriptors={"index": np.arange(30)})
    theirs = eval_bootstrap_pattern(ModelFixed("model", model.upper), data, method="corr", N=1000)
    their_sd = np.nanstd(np.asarray(theirs.evaluations).reshape(1000, -1), axis=0)[0]
    assert abs(ours.std() / their_sd - 1) < 0.15, (ours.std(), their_sd)
    # the old scheme (each subject resampled on its own, replicates averaged) is clearly narrower
    independent = np.mean([bootstrap(model.upper, s.upper, "pearson", 1000, k) for k, s in enumerate(subjects)], axis=0)
    assert independent.std() < 0.85 * their_sd


def test_familywise_p_is_calibrated_over_rois_and_models_where_nothing_is_planted():
    """300 null datasets, each 4 ROIs x 4 models of 3 subjects who share most images: the share of
    datasets with any corrected-significant cell stays at the nominal 5 % (max-statistic over the
    same relabellings for every ROI), where uncorrected p finds something in most of them."""
    from neurolatent.science.rsa.inference import familywise_p

    rng = np.random.default_rng(23)
    any_corrected, any_uncorrected, datasets = 0, 0, 300
    for dataset in range(datasets):
        names = [f"img{i:02d}.jpg" for i in range(N_UNION)]
        seen = [np.sort(rng.choice(N_UNION, size=18, replace=False)) for _ in range(3)]
        models = {f"m{k}": RDM(rdm_upper(rng.normal(size=(N_UNION, 6))), tuple(names), "correlation")
                  for k in range(4)}
        tests = {}
        for roi in range(4):
            subjects = [RDM(rdm_upper(rng.normal(size=(18, 6))), tuple(names[i] for i in own), "correlation")
                        for own in seen]
            # the same random state for every ROI: the same relabellings, as the rsa stage draws them
            for model, result in group_mantel_models(subjects, models, "spearman", 99, dataset).items():
                tests[roi, model] = result
        corrected = familywise_p(tests)
        any_corrected += min(p for p, _ in corrected.values()) <= 0.05
        any_uncorrected += min(test.p for test in tests.values()) <= 0.05
    # binomial sd of a 5 % rate over 300 datasets is 1.3 %: three of them above it fails
    assert any_corrected / datasets <= 0.05 + 3 * 0.0126, any_corrected
    assert any_uncorrected / datasets > 0.3, any_uncorrected


def test_familywise_p_finds_a_planted_cell_among_null_ones():
    from neurolatent.science.rsa.inference import familywise_p

    rng = np.random.default_rng(29)
    subjects, planted = _subjects_sharing_most_stimuli(rng, planted=2.0)
    noise = RDM(rdm_upper(rng.normal(size=(N_UNION, 8))), planted.stimuli, "correlation")
    tests = group_mantel_models(subjects, {"planted": planted, "noise": noise}, "spearman", 999, 5)
    corrected = {cell: p for cell, (p, _) in familywise_p(tests).items()}
    assert corrected["planted"] <= 0.01 and corrected["noise"] > 0.05
    assert corrected["planted"] >= tests["planted"].p  # never smaller than the uncorrected p
