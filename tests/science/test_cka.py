"""Linear CKA with the unbiased HSIC against two direct implementations (Kornblith et al. 2019's
U-centred Gram code, Song et al. 2012's formula), its invariances, and its permutation test."""

from __future__ import annotations

import numpy as np
import pytest

from neurolatent.science import cka


def kornblith_debiased_cka(x: np.ndarray, y: np.ndarray) -> float:
    """google-research/representation_similarity: feature_space_linear_cka(debiased=True) via Gram matrices."""
    def center_gram(gram):
        gram = gram.copy()
        n = gram.shape[0]
        np.fill_diagonal(gram, 0)
        means = np.sum(gram, 0) / (n - 2)
        means -= np.sum(means) / (2 * (n - 1))
        gram -= means[:, None]
        gram -= means[None, :]
        np.fill_diagonal(gram, 0)
        return gram

    x, y = x - x.mean(0), y - y.mean(0)
    gx, gy = center_gram(x @ x.T), center_gram(y @ y.T)
    return float(gx.ravel() @ gy.ravel() / (np.linalg.norm(gx) * np.linalg.norm(gy)))


def song_unbiased_hsic(k: np.ndarray, l: np.ndarray) -> float:
    """Song et al. 2012, eq. 5, written out with explicit traces and sums."""
    n = len(k)
    k, l = k.copy(), l.copy()
    np.fill_diagonal(k, 0)
    np.fill_diagonal(l, 0)
    one = np.ones(n)
    return float((np.trace(k @ l) + (one @ k @ one) * (one @ l @ one) / ((n - 1) * (n - 2))
                  - 2 / (n - 2) * one @ k @ l @ one) / (n * (n - 3)))


@pytest.fixture
def related():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 12))
    return x, x @ rng.normal(size=(12, 9)) + 2 * rng.normal(size=(80, 9))


def test_linear_cka_equals_both_direct_implementations(related):
    x, y = related
    k, l = x @ x.T, y @ y.T
    song = song_unbiased_hsic(k, l) / np.sqrt(song_unbiased_hsic(k, k) * song_unbiased_hsic(l, l))
    assert cka.linear_cka(x, y) == pytest.approx(kornblith_debiased_cka(x, y), abs=1e-12)
    assert cka.linear_cka(x, y) == pytest.approx(song, abs=1e-12)


def test_cka_is_one_for_rotated_scaled_copies_and_near_zero_for_unrelated_data(related):
    x, _ = related
    rotation, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(12, 12)))
    assert cka.linear_cka(x, 3.0 * x @ rotation + 5.0) == pytest.approx(1.0, abs=1e-12)
    unrelated = np.random.default_rng(2).normal(size=x.shape)
    assert abs(cka.linear_cka(x, unrelated)) < 0.05


def test_group_cka_is_the_mean_of_the_subjects_and_finds_a_planted_relation(related):
    x, y = related
    names = tuple(f"img{i}" for i in range(80))
    result = cka.group_cka([(y[:60], names[:60]), (y[30:], names[30:])], x, names, 500, 0)
    expected = [cka.linear_cka(x[:60], y[:60]), cka.linear_cka(x[30:], y[30:])]
    np.testing.assert_allclose(result.subject_statistics, expected, atol=1e-12)
    assert result.statistic == pytest.approx(np.mean(expected), abs=1e-12)
    assert result.p < 0.01
    # images are joined by name: relabelling the model's rows changes which row meets which
    order = np.random.default_rng(3).permutation(80)
    relabelled = cka.group_cka([(y[:60], names[:60])], x, tuple(np.array(names)[order]), 1, 0)
    inverse = np.argsort(order)
    assert relabelled.statistic == pytest.approx(cka.linear_cka(x[inverse[:60]], y[:60]), abs=1e-12)
    assert abs(relabelled.statistic) < 0.2


def test_cka_permutation_p_is_calibrated_under_the_null():
    rng = np.random.default_rng(5)
    names = tuple(f"img{i}" for i in range(30))
    p = np.array([cka.group_cka([(rng.normal(size=(30, 4)), names)], rng.normal(size=(30, 6)), names, 199, rng).p
                  for _ in range(300)])
    # 300 null datasets: P(p < 0.05) is 0.05 when calibrated (binomial sd 0.0126)
    assert 0.02 <= np.mean(p < 0.05) <= 0.09
    assert 0.4 <= np.mean(p) <= 0.6


def test_models_kernels_made_when_read_are_the_bits_of_kernels_made_at_once():
    """group_cka_models makes each model's U-centred kernel when the test reads it (32 kernels of
    97 MB for four subjects and eight models at BOLD5000's size): the same bits as the kernels made
    first and handed to group_mantel_models, for subjects over other images in other orders."""
    from neurolatent.science.rsa.inference import group_mantel_models

    rng = np.random.default_rng(4)
    names = tuple(f"img{i}" for i in range(50))
    features = {"a": rng.normal(size=(50, 6)), "b": rng.normal(size=(50, 3))}
    fmri = [(rng.normal(size=(40, 5)), tuple(rng.permutation(names[:40]))),
            (rng.normal(size=(35, 5)), tuple(rng.permutation(names[15:])))]
    found = cka.group_cka_models(fmri, features, names, 50, 1)
    position = {name: i for i, name in enumerate(names)}
    subjects = [cka.kernel_rdm(x, stimuli, f"subject {s}") for s, (x, stimuli) in enumerate(fmri)]
    made = {model: [cka.kernel_rdm(rows[[position[name] for name in item.stimuli]], item.stimuli, model)
                    for item in subjects] for model, rows in features.items()}
    expected = group_mantel_models(subjects, made, "cosine", 50, 1)
    for model in features:
        assert np.array_equal(found[model].subject_statistics, expected[model].subject_statistics)
        assert np.array_equal(found[model].subject_nulls, expected[model].subject_nulls)
