"""RSA against rsatoolbox and scipy, and the permutation test's validity on planted and null data."""

from __future__ import annotations

import numpy as np
import pytest
from rsatoolbox.data import Dataset
from rsatoolbox.inference import boot_noise_ceiling
from rsatoolbox.rdm import RDMs, calc_rdm
from rsatoolbox.rdm import compare as rsatoolbox_compare
from scipy import stats
from scipy.spatial.distance import pdist, squareform
from sklearn.decomposition import TruncatedSVD
from sklearn.preprocessing import StandardScaler

from neurolatent.io.rdms import load_rdms, save_rdms
from neurolatent.science import rsa
from neurolatent.science.stats import zscore
from neurolatent.science.synthetic import draw_image, image_features, planted_patterns

RSATOOLBOX_METHOD = {"pearson": "corr", "spearman": "spearman", "kendall_tau_a": "tau-a", "cosine": "cosine"}


def random_patterns(seed: int, n: int = 40, d: int = 15) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d))


def test_rdms_equal_rsatoolbox_and_scipy():
    x = random_patterns(0)
    reference = calc_rdm(Dataset(x), method="correlation").get_vectors()[0]
    np.testing.assert_allclose(rsa.rdm_upper(x, "correlation"), reference, atol=1e-6, rtol=0)
    np.testing.assert_allclose(rsa.rdm_upper(x, "correlation"), pdist(x, "correlation"), atol=1e-6, rtol=0)
    # rsatoolbox's "euclidean" is the squared distance over the number of channels
    squared = calc_rdm(Dataset(x), method="euclidean").get_vectors()[0]
    np.testing.assert_allclose(rsa.rdm_upper(x, "euclidean"), np.sqrt(squared * x.shape[1]), atol=1e-6, rtol=0)
    np.testing.assert_allclose(rsa.rdm_upper(x, "euclidean"), pdist(x, "euclidean"), atol=1e-6, rtol=0)
    np.testing.assert_allclose(rsa.rdm_upper(x, "cosine"), pdist(x, "cosine"), atol=1e-6, rtol=0)


@pytest.mark.parametrize("method", ["pearson", "spearman", "kendall_tau_a", "cosine"])
@pytest.mark.parametrize("ties", [False, True])
def test_every_comparison_equals_rsatoolbox(method, ties):
    a, b = rsa.rdm_upper(random_patterns(1)), rsa.rdm_upper(random_patterns(2))
    if ties:  # a model that predicts tied dissimilarities (categorical)
        a = np.round(a * 4) / 4
    theirs = rsatoolbox_compare(RDMs(a[None]), RDMs(b[None]), method=RSATOOLBOX_METHOD[method])[0, 0]
    assert abs(rsa.compare(a, b, method) - theirs) < 1e-6


def test_comparisons_equal_scipy():
    a, b = rsa.rdm_upper(random_patterns(3)), rsa.rdm_upper(random_patterns(4))
    assert abs(rsa.compare(a, b, "pearson") - stats.pearsonr(a, b)[0]) < 1e-6
    assert abs(rsa.compare(a, b, "spearman") - stats.spearmanr(a, b)[0]) < 1e-6
    assert abs(rsa.compare(a, b, "kendall_tau_a") - stats.kendalltau(a, b)[0]) < 1e-6  # no ties: tau-a = tau-b
    assert abs(rsa.naive_p(rsa.compare(a, b, "pearson"), len(a)) - stats.pearsonr(a, b)[1]) < 1e-6


def test_rank_equals_scipy_with_ties_and_signed_zero():
    rng = np.random.default_rng(5)
    for values in (rng.normal(size=5000), rng.integers(0, 7, size=5000).astype(float),
                   np.r_[np.zeros(50), -0.0, 3.0, -np.inf], 1.0 + rng.integers(0, 3, size=999) * 1e-15):
        np.testing.assert_array_equal(rsa.rank(values), stats.rankdata(values))


def test_reduction_equals_truncated_svd_on_standardised_features():
    x = random_patterns(6, n=60, d=25) @ np.random.default_rng(7).normal(size=(25, 25))
    scores, explained = rsa.reduce(x, variance=0.7)
    z = StandardScaler().fit_transform(x)
    svd = TruncatedSVD(scores.shape[1], algorithm="arpack", random_state=0).fit(z)
    assert abs(explained - svd.explained_variance_ratio_.sum()) < 1e-6
    assert explained >= 0.7 and svd.explained_variance_ratio_[:-1].sum() < 0.7  # the fewest that reach it
    np.testing.assert_allclose(np.abs(scores), np.abs(svd.transform(z)), atol=1e-6)
    wide = random_patterns(8, n=20, d=300)  # more features than stimuli: the Gram path
    scores, explained = rsa.reduce(wide, components=5)
    svd = TruncatedSVD(5, algorithm="arpack", random_state=0).fit(StandardScaler().fit_transform(wide))
    assert abs(explained - svd.explained_variance_ratio_.sum()) < 1e-6


@pytest.mark.parametrize("method", ["pearson", "spearman", "cosine"])
def test_noise_ceiling_equals_rsatoolbox(method):
    rng = np.random.default_rng(9)
    truth = random_patterns(10)
    subjects = np.stack([rsa.rdm_upper(truth + 1.5 * rng.normal(size=truth.shape)) for _ in range(5)])
    theirs = boot_noise_ceiling(RDMs(subjects), method=RSATOOLBOX_METHOD[method])
    np.testing.assert_allclose(rsa.noise_ceiling(subjects, method), theirs, atol=1e-6)


def test_noise_ceiling_with_partly_shared_stimuli_uses_shared_pairs():
    rng = np.random.default_rng(11)
    truth = random_patterns(12, n=30)
    vectors = np.stack([rsa.rdm_upper(truth + rng.normal(size=truth.shape)) for _ in range(3)])
    lower, upper = rsa.noise_ceiling(vectors, "spearman")
    missing = vectors.copy()
    square = squareform(missing[2])
    square[:5, :] = square[:, :5] = np.nan  # subject 3 never saw images 0-4
    missing[2] = square[np.triu_indices(30, k=1)]
    partial = rsa.noise_ceiling(missing, "spearman")
    assert 0 < partial[0] <= partial[1] < 1 and abs(partial[0] - lower) < 0.1 and abs(partial[1] - upper) < 0.1


@pytest.mark.parametrize("method", ["pearson", "spearman", "cosine", "kendall_tau_a"])
def test_every_permutation_is_the_exact_statistic_of_the_permuted_rdm(method):
    a, b = rsa.rdm_upper(random_patterns(13, n=25)), rsa.rdm_upper(random_patterns(14, n=25))
    result = rsa.mantel(a, b, method, n_permutations=20, random_state=3)
    square = squareform(a)
    upper = np.triu_indices(25, k=1)
    expected = [rsa.compare(square[np.ix_(p, p)][upper], b, method)
                for p in rsa.permutations(25, 20, np.random.default_rng(3))]
    np.testing.assert_allclose(result.null, expected, atol=1e-5)
    assert result.statistic == pytest.approx(rsa.compare(a, b, method), abs=1e-12)


def test_cpu_kernel_and_torch_gather_agree():
    a = rsa.rdm_upper(random_patterns(15, n=300))
    fixed = [rsa.rdm_upper(random_patterns(seed, n=300)) for seed in (16, 17, 18)]
    prepared = rsa._prepare(a, fixed, "spearman")
    perms = rsa.permutations(300, 9, 0)
    numba_sums = rsa._permuted_dots(prepared.x_square, prepared.weights, perms, 64)  # 5 x 5 tiles
    torch_sums = rsa._permuted_dots_torch(prepared.x_square, prepared.weights, perms, "cpu")
    assert numba_sums.shape == (9, 3)
    np.testing.assert_allclose(numba_sums, torch_sums, atol=1e-4)
    square = squareform(a)
    upper = np.triu_indices(300, k=1)
    for m, other in enumerate(fixed):  # each column is the exact statistic of its own fixed RDM
        expected = [rsa.compare(square[np.ix_(p, p)][upper], other, "spearman") for p in perms]
        np.testing.assert_allclose(numba_sums[:, m], expected, atol=1e-5)


@pytest.mark.parametrize("method", ["pearson", "spearman", "kendall_tau_a", "cosine"])
def test_bootstrap_equals_a_direct_computation_on_the_drawn_cells(method):
    a, b = rsa.rdm_upper(random_patterns(17, n=30)), rsa.rdm_upper(random_patterns(18, n=30))
    replicates = rsa.bootstrap(a, b, method, n_bootstrap=3, random_state=4)
    sample = np.random.default_rng(4).integers(0, 30, size=(3, 30))[1]
    first, second = np.triu_indices(30, k=1)
    keep = sample[first] != sample[second]
    ranked = {"spearman": (stats.rankdata(a), stats.rankdata(b))}.get(method, (a, b))  # the full RDMs' ranks
    x, y = (squareform(v)[sample[first[keep]], sample[second[keep]]] for v in ranked)
    tau_a = np.mean(np.sign(x[:, None] - x[None]) * np.sign(y[:, None] - y[None])) * len(x) / (len(x) - 1)
    direct = {"pearson": stats.pearsonr(x, y)[0], "spearman": stats.pearsonr(x, y)[0], "kendall_tau_a": tau_a,
              "cosine": x @ y / np.linalg.norm(x) / np.linalg.norm(y)}[method]
    assert abs(replicates[1] - direct) < 1e-9


def _planted_rdms(snr: float, seed: int, n: int = 40):
    """The synthetic generator's own features and planted voxel patterns, plus noise at ``snr``."""
    rng = np.random.default_rng(seed)
    features = zscore(np.stack([image_features(draw_image(f"img{seed}_{i}.jpg", ("coco", "imagenet", "scenes")[i % 3], 64))
                                        for i in range(n)]))
    patterns = planted_patterns(features, 200, rng)
    responses = snr * patterns + rng.normal(size=patterns.shape)
    return rsa.rdm_upper(features), rsa.rdm_upper(responses)


def test_planted_feature_rdm_is_recovered_at_high_snr_and_not_at_zero():
    model, brain = _planted_rdms(snr=2.0, seed=0)
    found = rsa.mantel(model, brain, "spearman", 999, 0)
    assert found.statistic > 0.5 and found.p < 0.01
    low, high = np.quantile(rsa.bootstrap(model, brain, "spearman", 300, 0), [0.025, 0.975])
    assert 0 < low < found.statistic < high
    model, brain = _planted_rdms(snr=0.0, seed=1)
    assert rsa.mantel(model, brain, "spearman", 999, 0).p > 0.05


def test_permutation_p_values_are_calibrated_under_the_null():
    rng = np.random.default_rng(2024)
    p = []
    for _ in range(200):
        x, y = rng.normal(size=(12, 5)), rng.normal(size=(12, 5))
        p.append(rsa.mantel(rsa.rdm_upper(x), rsa.rdm_upper(y), "spearman", 199, rng).p)
    fraction = np.mean(np.array(p) < 0.05)
    assert 0.02 <= fraction <= 0.08, fraction


def test_rdm_object_subsets_saves_and_exports(tmp_path):
    names = tuple(f"img{i}.jpg" for i in range(6))
    item = rsa.RDM(rsa.rdm_upper(random_patterns(19, n=6)), names, "correlation", "ae/CSI1", {"subject": "CSI1"})
    part = item.subset(["img4.jpg", "img1.jpg"])
    assert part.upper[0] == item.square()[4, 1]
    with pytest.raises(KeyError, match="img9.jpg"):
        item.subset(["img9.jpg"])
    save_rdms([item], tmp_path)
    (loaded,) = load_rdms(tmp_path)
    np.testing.assert_array_equal(loaded.upper, item.upper)
    assert loaded.stimuli == names and loaded.meta == {"subject": "CSI1"}
    exported = loaded.to_rsatoolbox()
    np.testing.assert_array_equal(exported.get_vectors()[0], item.upper)
    assert list(exported.pattern_descriptors["image_name"]) == list(names)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="constant row"):
        rsa.rdm_upper(np.ones((3, 4)))
    with pytest.raises(ValueError, match="not the upper triangle"):
        rsa.mantel(np.ones(4), np.ones(4))
    names = tuple(f"s{i}" for i in range(5))
    with pytest.raises(ValueError, match="triangle 'full' supports"):
        rsa.group_mantel([rsa.RDM(np.arange(10.0), names, "correlation")], rsa.RDM(np.arange(10.0)[::-1], names,
                         "correlation"), "kendall_tau_a", 9, triangle="full")
    with pytest.raises(ValueError, match="use spearman"):
        rsa.mantel(np.arange(200 * 199 // 2, dtype=float), np.arange(200 * 199 // 2, dtype=float), "kendall_tau_a", 2)


@pytest.mark.parametrize("method", ["pearson", "spearman", "cosine"])
def test_full_square_comparison_equals_scipy_on_the_whole_matrices_and_its_tests_follow(method):
    rng = np.random.default_rng(11)
    first, second = pdist(rng.normal(size=(25, 4)), "correlation"), pdist(rng.normal(size=(25, 4)), "correlation")
    a, b = squareform(first).ravel(), squareform(second).ravel()
    direct = {"pearson": stats.pearsonr(a, b)[0], "spearman": stats.spearmanr(a, b)[0],
              "cosine": a @ b / np.linalg.norm(a) / np.linalg.norm(b)}[method]
    assert rsa.compare(first, second, method, "full") == pytest.approx(direct, abs=1e-12)
    # a bootstrap "resample" that draws every stimulus once is the observed statistic
    once_each = np.ones((1, 25))
    assert rsa._resampled_comparison(first, second, method, once_each, "full")[0] == pytest.approx(direct)
    # every permutation of the group test is the exact full-square statistic of the relabelled RDM
    names = tuple(f"s{i}" for i in range(25))
    test = rsa.group_mantel([rsa.RDM(second, names, "correlation")], rsa.RDM(first, names, "correlation"), method,
                            20, 4, triangle="full")
    perms = rsa.permutations(25, 20, np.random.default_rng(4))
    square = squareform(second)  # the subject's side is the relabelled one
    exact = [rsa.compare(first, squareform(square[np.ix_(p, p)], checks=False), method, "full") for p in perms]
    np.testing.assert_allclose(test.subject_nulls[0], exact, atol=1e-5)
    assert test.statistic == pytest.approx(direct, abs=1e-12)


def test_full_square_inflates_r_of_unrelated_rdms():
    rng = np.random.default_rng(12)
    r_upper, r_full = [], []
    for _ in range(50):
        first, second = pdist(rng.normal(size=(40, 5)), "correlation"), pdist(rng.normal(size=(40, 5)), "correlation")
        r_upper.append(rsa.compare(first, second, "pearson"))
        r_full.append(rsa.compare(first, second, "pearson", "full"))
    assert abs(np.mean(r_upper)) < 0.01 and np.mean(r_full) > 0.05
