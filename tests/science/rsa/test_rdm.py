"""RDMs and the reduction before them (neurolatent.science.rsa.rdm) against scipy, scikit-learn and rsatoolbox."""

from __future__ import annotations

import numpy as np
import pytest
from rsatoolbox.data import Dataset
from rsatoolbox.rdm import calc_rdm
from rsatoolbox.rdm import compare as rsatoolbox_compare
from scipy.spatial.distance import pdist
from sklearn.decomposition import TruncatedSVD
from sklearn.preprocessing import StandardScaler

from neurolatent.io.rdms import load_rdms, save_rdms
from neurolatent.science.rsa.compare import compare
from neurolatent.science.rsa.rdm import RDM, rdm_upper, reduce


def random_patterns(seed: int, n: int = 40, d: int = 15) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d))


def test_rdms_equal_rsatoolbox_and_scipy():
    x = random_patterns(0)
    reference = calc_rdm(Dataset(x), method="correlation").get_vectors()[0]
    np.testing.assert_allclose(rdm_upper(x, "correlation"), reference, atol=1e-6, rtol=0)
    np.testing.assert_allclose(rdm_upper(x, "correlation"), pdist(x, "correlation"), atol=1e-6, rtol=0)
    # rsatoolbox's "euclidean" is the squared distance over the number of channels
    squared = calc_rdm(Dataset(x), method="euclidean").get_vectors()[0]
    np.testing.assert_allclose(rdm_upper(x, "euclidean"), np.sqrt(squared * x.shape[1]), atol=1e-6, rtol=0)
    np.testing.assert_allclose(rdm_upper(x, "euclidean"), pdist(x, "euclidean"), atol=1e-6, rtol=0)
    np.testing.assert_allclose(rdm_upper(x, "cosine"), pdist(x, "cosine"), atol=1e-6, rtol=0)


def test_reduction_equals_truncated_svd_on_standardised_features():
    x = random_patterns(6, n=60, d=25) @ np.random.default_rng(7).normal(size=(25, 25))
    scores, explained = reduce(x, variance=0.7)
    z = StandardScaler().fit_transform(x)
    svd = TruncatedSVD(scores.shape[1], algorithm="arpack", random_state=0).fit(z)
    assert abs(explained - svd.explained_variance_ratio_.sum()) < 1e-6
    assert explained >= 0.7 and svd.explained_variance_ratio_[:-1].sum() < 0.7  # the fewest that reach it
    np.testing.assert_allclose(np.abs(scores), np.abs(svd.transform(z)), atol=1e-6)
    wide = random_patterns(8, n=20, d=300)  # more features than stimuli: the Gram path
    scores, explained = reduce(wide, components=5)
    svd = TruncatedSVD(5, algorithm="arpack", random_state=0).fit(StandardScaler().fit_transform(wide))
    assert abs(explained - svd.explained_variance_ratio_.sum()) < 1e-6


def test_rdm_object_subsets_saves_and_exports(tmp_path):
    names = tuple(f"img{i}.jpg" for i in range(6))
    item = RDM(rdm_upper(random_patterns(19, n=6)), names, "correlation", "ae/CSI1", {"subject": "CSI1"})
    part = item.subset(["img4.jpg", "img1.jpg"])
    assert part.upper[0] == item.square()[4, 1]
    with pytest.raises(KeyError, match="img9.jpg"):
        item.subset(["img9.jpg"])
    same = item.subset(list(names))  # in its own order: the cells shared, not copied
    assert same.upper is item.upper and same.meta == item.meta and same.meta is not item.meta
    rows = np.array([5, 0, 3, 3])  # any order, a row twice: the square's cells, without the square
    np.testing.assert_array_equal(item.cut(rows), item.square()[np.ix_(rows, rows)])
    save_rdms([item], tmp_path)
    (loaded,) = load_rdms(tmp_path)
    np.testing.assert_array_equal(loaded.upper, item.upper)
    assert loaded.stimuli == names and loaded.meta == {"subject": "CSI1"}
    exported = loaded.to_rsatoolbox()
    np.testing.assert_array_equal(exported.get_vectors()[0], item.upper)
    assert list(exported.pattern_descriptors["image_name"]) == list(names)


@pytest.mark.parametrize("method", ["corr", "spearman", "cosine"])
def test_euclidean_rdms_compare_in_rsatoolbox_as_in_neurolatent(method):
    rng = np.random.default_rng(20)
    x, y = rng.normal(size=(25, 6)), rng.normal(size=(25, 6))
    names = tuple(f"i{i}" for i in range(25))
    first = RDM(rdm_upper(x, "euclidean"), names, "euclidean", "x", {"components": 6})
    second = RDM(rdm_upper(y, "euclidean"), names, "euclidean", "y", {"components": 6})
    exported = first.to_rsatoolbox(), second.to_rsatoolbox()
    # not labelled as rsatoolbox's own (its euclidean is the squared distance over features)
    assert exported[0].dissimilarity_measure not in ("euclidean", "squared euclidean")
    ours = compare(first.upper, second.upper, {"corr": "pearson"}.get(method, method))
    assert rsatoolbox_compare(*exported, method=method)[0, 0] == pytest.approx(ours, abs=1e-9)
    # converted on request, it is rsatoolbox's own calc_rdm
    converted = first.to_rsatoolbox(squared_euclidean=True)
    assert converted.dissimilarity_measure == "squared euclidean"
    np.testing.assert_allclose(converted.get_vectors()[0], calc_rdm(Dataset(x), method="euclidean").get_vectors()[0])
