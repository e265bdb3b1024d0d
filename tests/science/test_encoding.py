"""Banded ridge and variance partitioning (neurolatent.science.encoding) on responses with known
unique variance, against scikit-learn's RidgeCV for one band."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold
from sklearn.preprocessing import StandardScaler

from neurolatent.science.encoding import (ALPHAS, BandedRidgeCV, RegionParts, band_split, bootstrap_parts,
                                          explainable_fraction, group_parts, held_out_r2, partition_parts, region_parts,
                                          variance_partition, winning_band)

#: voxel groups and the share of each voxel's variance each band explains (the rest is noise)
GROUPS = {"a": {"a": 0.3}, "ab": {"a": 0.2, "b": 0.15}, "c": {"c": 0.4}, "none": {}}
N_PER_GROUP = 30


@pytest.fixture(scope="module")
def simulated():
    """Three independent feature spaces and a pure-noise band; voxel groups mixing the spaces in
    set proportions: (bands, responses, train, test, group of each voxel)."""
    rng = np.random.default_rng(1)
    n, width = 900, 10
    bands = {name: rng.standard_normal((n, width)) for name in ("a", "b", "c", "noise")}
    columns, group_of = [], []
    for group, shares in GROUPS.items():
        response = np.sqrt(1 - sum(shares.values())) * rng.standard_normal((n, N_PER_GROUP))
        for band, share in shares.items():
            signal = bands[band] @ rng.standard_normal((width, N_PER_GROUP))
            response += np.sqrt(share) * signal / signal.std(axis=0)
        columns.append(response)
        group_of += [group] * N_PER_GROUP
    order = rng.permutation(n)
    return bands, np.hstack(columns), order[:600], order[600:], np.array(group_of)


@pytest.fixture(scope="module")
def partition(simulated):
    bands, responses, train, test, _ = simulated
    return variance_partition(bands, responses, train=train, test=test, random_state=0, n_iter=10)


@pytest.fixture(scope="module")
def split(simulated):
    bands, responses, train, test, _ = simulated
    return band_split(bands, responses, train=train, test=test, random_state=0, n_iter=10)


@pytest.mark.parametrize("way", ["partition", "split"])
@pytest.mark.parametrize("group", list(GROUPS))
def test_each_band_gets_the_variance_planted_in_it(simulated, request, way, group):
    # its unique R^2 from the fits of every subset, or its share of one fit's R^2 (the product
    # measure): with independent spaces, both are the variance planted in the band
    fit = request.getfixturevalue(way)
    group_of = simulated[4]
    for band in ("a", "b", "c"):
        recovered = fit.parts[(band,)][group_of == group].mean()
        assert recovered == pytest.approx(GROUPS[group].get(band, 0.0), abs=0.05), (way, band, recovered)
    assert abs(fit.parts[("noise",)][group_of == group].mean()) < 0.02


def test_independent_spaces_share_nothing_and_the_parts_sum_to_the_full_model(simulated, partition):
    group_of = simulated[4]
    assert abs(partition.shared[("a", "b")][group_of == "ab"].mean()) < 0.03
    np.testing.assert_allclose(sum(partition.parts.values()), partition.full, atol=1e-12)
    assert set(partition.r2) == {s for s in partition.parts}
    assert len(partition.r2) == 2 ** 4 - 1


def test_the_winning_band_is_the_planted_one(simulated, partition):
    group_of = simulated[4]
    winner = winning_band(partition)
    assert (np.asarray(partition.bands)[winner[group_of == "a"]] == "a").mean() > 0.9
    assert (np.asarray(partition.bands)[winner[group_of == "c"]] == "c").mean() > 0.9
    # voxels no band predicts are mostly unassigned
    assert (winner[group_of == "none"] == -1).mean() > 0.4


def test_partition_parts_of_two_bands_are_the_textbook_venn_regions():
    r2 = {("x",): np.array([0.3]), ("y",): np.array([0.2]), ("x", "y"): np.array([0.4])}
    parts = partition_parts(("x", "y"), r2)
    assert parts[("x",)] == pytest.approx(0.2)  # 0.4 - 0.2
    assert parts[("y",)] == pytest.approx(0.1)  # 0.4 - 0.3
    assert parts[("x", "y")] == pytest.approx(0.1)  # 0.3 + 0.2 - 0.4


def _one_band_data(n: int, features: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, features))
    y = x @ rng.standard_normal((features, 25)) * rng.uniform(0, 1, 25) + 3 * rng.standard_normal((n, 25))
    return x, y + 5.0


def test_one_band_equals_sklearn_ridgecv_with_a_penalty_per_voxel():
    # more images than features: himalaya's primal solver, leave-one-out (n folds) as RidgeCV's GCV
    x, y = _one_band_data(60, 8)
    ours = BandedRidgeCV(cv=KFold(len(x))).fit([x], y)
    scaler = StandardScaler().fit(x)
    reference = RidgeCV(alphas=ALPHAS, alpha_per_target=True).fit(scaler.transform(x), y)
    np.testing.assert_allclose(ours.penalties_[0], reference.alpha_, rtol=1e-9)
    np.testing.assert_allclose(ours.coef_, reference.coef_.T, atol=1e-6)
    np.testing.assert_allclose(ours.intercept_, reference.intercept_, atol=1e-6)
    new = np.random.default_rng(9).standard_normal((7, 8))
    np.testing.assert_allclose(ours.predict([new]), reference.predict(scaler.transform(new)), atol=1e-6)


def test_one_band_with_more_features_than_images_equals_ridge_on_centred_data():
    # the kernel route: features and responses centred once on the training images
    x, y = _one_band_data(30, 50)
    ours = BandedRidgeCV(cv=KFold(len(x))).fit([x], y)
    scaled = StandardScaler().fit_transform(x)
    reference = RidgeCV(alphas=ALPHAS, alpha_per_target=True, fit_intercept=False).fit(scaled, y - y.mean(axis=0))
    np.testing.assert_allclose(ours.penalties_[0], reference.alpha_, rtol=1e-9)
    np.testing.assert_allclose(ours.coef_, reference.coef_.T, atol=1e-6)
    np.testing.assert_allclose(ours.intercept_, y.mean(axis=0))


def test_banded_ridge_shrinks_a_useless_band_more_than_a_useful_one():
    rng = np.random.default_rng(3)
    useful, useless = rng.standard_normal((300, 5)), rng.standard_normal((300, 40))
    y = useful @ rng.standard_normal((5, 20)) + rng.standard_normal((300, 20))
    model = BandedRidgeCV(n_iter=20).fit([useful, useless], y)
    assert (model.penalties_[1] > 100 * model.penalties_[0]).mean() > 0.9


def test_bootstrap_draws_of_the_whole_test_set_give_the_estimate(partition):
    n_test = len(partition.test_responses)
    once = partition.resampled_r2(np.ones((1, n_test)))
    for subset, r2 in partition.r2.items():
        np.testing.assert_allclose(once[subset][0], r2, atol=1e-12)


def test_held_out_r2_and_the_explainable_fraction():
    actual = np.array([[1.0, 2.0], [3.0, 2.0], [5.0, 2.0]])
    r2 = held_out_r2(np.array([[1.0, 0], [3.0, 0], [5.0, 0]]), actual)
    assert r2[0] == 1.0 and np.isnan(r2[1])  # a constant voxel has no variance to explain
    assert held_out_r2(np.full((3, 1), 3.0), actual[:, :1])[0] == 0.0
    np.testing.assert_allclose(explainable_fraction(np.array([0.16, 0.1]), np.array([0.8, 0.05])), [0.25, np.nan])


@pytest.mark.parametrize("call, message", [
    (lambda b, y: variance_partition(b, y, train=np.arange(5), test=np.arange(4, 8)), "share images"),
    (lambda b, y: variance_partition(b, y, train=np.arange(5), test=np.array([9])), "at least 2"),
    (lambda b, y: variance_partition({"a": b["a"][:5]}, y, train=np.arange(3), test=np.arange(3, 5)), "rows"),
    (lambda b, y: variance_partition(b, y, train=np.ones(3, bool), test=np.arange(3, 5)), "mask needs 10"),
    (lambda b, y: BandedRidgeCV(backend="jax").fit([b["a"]], y), "backend"),
    (lambda b, y: BandedRidgeCV().fit([np.full((10, 2), np.nan)], y), "NaN"),
    (lambda b, y: variance_partition(b, y, train=np.arange(5), test=np.arange(5, 10), n_iter=0),
     r"^n_iter: Input should be greater than or equal to 1 \(got 0\)$"),
    (lambda b, y: band_split(b, y, train=np.arange(5), test=np.arange(5, 10), cv=1),
     r"^cv: Input should be greater than or equal to 2 \(got 1\)$"),
    (lambda b, y: band_split(b, y, train=np.arange(5), test=np.arange(5, 10), backend="jax"),
     r"^backend: Input should be 'numpy', 'torch' or 'torch_cuda' \(got 'jax'\)$")])
def test_bad_arguments_are_named(call, message):
    bands = {"a": np.random.default_rng(0).standard_normal((10, 3))}
    with pytest.raises(ValueError, match=message):
        call(bands, np.random.default_rng(1).standard_normal((10, 4)))


def _three_bands(n: int = 200, seed: int = 4):
    rng = np.random.default_rng(seed)
    bands = [rng.standard_normal((n, width)) for width in (6, 4, 9)]
    y = bands[0] @ rng.standard_normal((6, 12)) + 0.5 * bands[1] @ rng.standard_normal((4, 12))
    return bands, y + 2.0 * rng.standard_normal((n, 12)) + 3.0


def test_banded_ridge_equals_himalayas_primal_search():
    # the search in each fold's eigenbasis against himalaya's hat matrices: same folds and weightings
    from himalaya.ridge import solve_group_ridge_random_search

    bands, y = _three_bands()
    ours = BandedRidgeCV(n_iter=8, random_state=2).fit(bands, y)
    scaled = [StandardScaler().fit_transform(band) for band in bands]
    deltas, coef, scores, intercept = solve_group_ridge_random_search(
        scaled, y, n_iter=8, alphas=np.asarray(ALPHAS), cv=KFold(5, shuffle=True, random_state=2), random_state=2,
        fit_intercept=True, return_weights=True, progress_bar=False)
    np.testing.assert_allclose(ours.penalties_, np.exp(-deltas), rtol=1e-8)
    np.testing.assert_allclose(ours.coef_, coef, atol=1e-8)
    np.testing.assert_allclose(ours.intercept_, intercept, atol=1e-8)
    np.testing.assert_allclose(ours.cv_scores_, scores.max(axis=0), rtol=1e-8)


@pytest.mark.parametrize("n", [200, 12])  # the primal route and the kernel one
def test_the_torch_backend_on_the_cpu_gives_the_numpy_fit(n):
    bands, y = _three_bands(n)
    steps = []
    numpy_fit = BandedRidgeCV(n_iter=4, cv=3, progress=steps.append).fit(bands, y)
    torch_fit = BandedRidgeCV(n_iter=4, cv=3, backend="torch").fit(bands, y)
    np.testing.assert_allclose(torch_fit.penalties_, numpy_fit.penalties_, rtol=1e-8)
    np.testing.assert_allclose(torch_fit.predict(bands), numpy_fit.predict(bands), atol=1e-8)
    assert sum(steps) == numpy_fit.steps(3) == 4 * 3 + 1


def test_the_shares_are_himalayas_r2_score_split_and_sum_to_the_joint_r2(simulated, split):
    from himalaya.scoring import r2_score_split

    np.testing.assert_allclose(np.vstack(list(split.shares.values())),
                               r2_score_split(split.test_responses, split.band_predictions), atol=1e-12)
    # the shares sum to the joint R^2 of the centred prediction
    joint = split.band_predictions.sum(axis=0)
    np.testing.assert_allclose(sum(split.shares.values()), held_out_r2(joint, split.test_responses), atol=1e-12)
    # the one fit is the subsets' fit of all bands, and its R^2 theirs
    bands, responses, train, test, _ = simulated
    full_fit = BandedRidgeCV(n_iter=10).fit([bands[b][train] for b in bands], responses[train])
    np.testing.assert_allclose(split.penalties, full_fit.penalties_)
    np.testing.assert_allclose(split.full, held_out_r2(full_fit.predict([bands[b][test] for b in bands]),
                                                      responses[test]), atol=1e-12)
    # the shares' sum exceeds it by the prediction's squared mean error: never below, and little
    mean_error = sum(split.shares.values()) - split.full
    assert mean_error.min() > -1e-12 and mean_error.mean() < 0.01
    assert (np.asarray(split.bands)[winning_band(split)[simulated[4] == "c"]] == "c").mean() > 0.9


def test_bootstrap_draws_of_the_whole_test_set_give_the_shares(split):
    once = split.resampled_parts(np.ones((1, len(split.test_responses))))
    for band, share in split.shares.items():
        np.testing.assert_allclose(once[(band,)][0], share, atol=1e-12)
    np.testing.assert_allclose(once["full"][0], split.full, atol=1e-12)
    twice = split.resampled_parts(np.full((1, len(split.test_responses)), 2.0))
    np.testing.assert_allclose(twice["full"][0], split.full, atol=1e-12)


def test_the_fits_r_is_pearsons_of_all_bands_prediction(simulated, partition, split):
    """Algonauts' accuracy: the fit of all bands' predictions against the test responses."""
    bands, responses, _, test, _ = simulated
    full = tuple(bands)
    expected = [np.corrcoef(partition.predictions[full][:, v], responses[test, v])[0, 1] for v in range(5)]
    np.testing.assert_allclose(partition.r[:5], expected, rtol=1e-10)
    joint = split.band_predictions.sum(axis=0)
    expected = [np.corrcoef(joint[:, v], responses[test, v])[0, 1] for v in range(5)]
    np.testing.assert_allclose(split.r[:5], expected, rtol=1e-10)
    # the same fit of all bands, so nearly the same accuracy
    np.testing.assert_allclose(split.r, partition.r, atol=0.02)


def test_bootstrap_parts_are_the_region_means_of_the_resampled_parts(split):
    """Each chunk's draws count the test images the generator picks for it, in turn: the draws
    are the region means of :meth:`resampled_parts` on those counts."""
    columns = {"first": np.arange(10), "all": np.arange(split.test_responses.shape[1])}
    draws = bootstrap_parts(split, columns, 7, np.random.default_rng(3), chunk=3)
    assert draws.keys() == columns.keys() and set(draws["all"]) == {("a",), ("b",), ("c",), ("noise",), "full"}
    n_test = len(split.test_responses)
    rng = np.random.default_rng(3)
    counts = []
    for size in (3, 3, 1):
        for picks in rng.integers(0, n_test, (size, n_test)):
            counts.append(np.bincount(picks, minlength=n_test).astype(float))
    parts = split.resampled_parts(np.array(counts))
    for part in (("a",), "full"):
        np.testing.assert_allclose(draws["first"][part], np.nanmean(parts[part][:, :10], axis=1), rtol=1e-12)
        np.testing.assert_allclose(draws["all"][part], np.nanmean(parts[part], axis=1), rtol=1e-12)


def test_region_parts_average_each_part_over_the_regions_voxels(partition):
    columns = {"few": np.array([0, 5, 40]), "c": np.arange(60, 90)}
    ceiling = np.full(partition.full.shape, 0.5)
    summary = region_parts(partition, columns, 20, np.random.default_rng(0), ceiling)
    assert summary.kind == "unique" and summary.bands == partition.bands
    assert summary.values["few"][("a", "b")] == pytest.approx(np.nanmean(partition.parts[("a", "b")][[0, 5, 40]]))
    assert summary.values["c"]["full"] == pytest.approx(np.nanmean(partition.full[60:90]))
    assert summary.penalties["c"]["c"] == pytest.approx(np.median(np.log10(partition.band_penalties[2][60:90])))
    # a ceiling of r 0.5 leaves a quarter of the variance explainable: each part over 0.25
    assert summary.explainable["c"]["c"] == pytest.approx(summary.values["c"][("c",)] / 0.25)
    assert region_parts(partition, columns, 20, np.random.default_rng(0)).explainable is None
    assert summary.draws["c"]["full"].shape == (20,)


def _summary(value: float, draws: np.ndarray, explainable: bool = True) -> RegionParts:
    """A subject's RegionParts over one region and two bands with every part at ``value``."""
    parts = [("a",), ("b",), ("a", "b"), "full"]
    return RegionParts(("a", "b"), "unique", {"V1": {part: value for part in parts}},
                       {"V1": {"a": value, "b": 2 * value}}, {"V1": {"a": 10 * value, "b": 0.0}} if explainable else None,
                       {"V1": {part: draws for part in parts}})


def test_group_parts_average_the_subjects_and_read_the_interval_from_the_mean_draws():
    rows = group_parts([_summary(0.1, np.arange(101.0)), _summary(0.3, np.arange(101.0) + 2)])
    assert [(row["part"], row["kind"]) for row in rows] == [("a", "unique"), ("b", "unique"), ("a+b", "shared"),
                                                            ("full", "full"), ("shared", "shared_total")]
    first = rows[0]
    # the mean draws are 1..101: their 2.5th and 97.5th percentiles are 3.5 and 98.5
    assert first["r2"] == pytest.approx(0.2) and (first["ci_low"], first["ci_high"]) == pytest.approx((3.5, 98.5))
    assert first["log10_penalty"] == pytest.approx(0.2) and first["explainable"] == pytest.approx(2.0)
    assert rows[1]["log10_penalty"] == pytest.approx(0.4)
    assert "log10_penalty" not in rows[2] and "explainable" not in rows[3]
    assert rows[4] == {"roi": "V1", "part": "shared", "kind": "shared_total", "r2": pytest.approx(0.2)}
    # the interval's quantiles are an argument; one subject without a noise ceiling drops the column
    narrow = group_parts([_summary(0.1, np.arange(101.0)), _summary(0.3, np.arange(101.0), explainable=False)],
                         quantiles=(0.25, 0.75))
    assert (narrow[0]["ci_low"], narrow[0]["ci_high"]) == pytest.approx((25.0, 75.0))
    assert "explainable" not in narrow[0]
