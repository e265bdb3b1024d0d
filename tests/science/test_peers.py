"""The peer frames' statistics against their own definitions: Net2Brain's RSA table (its code
transcribed, tests/peers_reference.py: squared=False, spearman) and
Algonauts 2023's noise-normalised encoding accuracy on a case worked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

import peers_reference
from neurolatent.science.peers import (NET2BRAIN_COLUMNS, algonauts_scores, net2brain_noise_ceiling, net2brain_row,
                                       noise_normalised_score, roi_scores)
from neurolatent.science.prediction import held_out_ceiling_r, held_out_r
from neurolatent.science.stimuli import StimulusMatrix


def _subjects(rng, shared, subjects=5, noise=1.0):
    """RDMs of subjects whose patterns are a shared (n, 8) pattern plus their own noise."""
    return np.stack([squareform(pdist(shared + noise * rng.standard_normal(shared.shape), "correlation"))
                     for _ in range(subjects)])


def test_the_row_is_net2brains_definition():
    rng = np.random.default_rng(0)
    shared = rng.standard_normal((20, 8))
    brain = _subjects(rng, shared)
    model = squareform(pdist(shared + 0.5 * rng.standard_normal(shared.shape), "correlation"))
    row = net2brain_row(model, brain, net2brain_noise_ceiling(brain))
    expected = peers_reference.numbers(model, brain)
    assert list(row) == list(NET2BRAIN_COLUMNS[3:])
    assert row == pytest.approx(expected, rel=1e-12)
    assert row["%R"] == pytest.approx(row["R"] / row["LNC"] * 100)
    # a planted model is found, below the ceiling the subjects leave it
    assert row["R"] > 0.3 and row["Significance"] < 0.001 and row["LNC"] < row["UNC"]


def test_an_unrelated_model_is_significant_at_its_nominal_rate():
    """The t-test is over subjects: when each subject's RDM is independent of the model (and of the
    other subjects') its p is uniform, about 5% of draws below 0.05 (400 draws: 95% of such runs
    give 11 to 30)."""
    rng = np.random.default_rng(1)
    model = squareform(pdist(rng.standard_normal((12, 8)), "correlation"))
    p = []
    for _ in range(400):  # the ceiling enters %R only
        p.append(net2brain_row(model, _subjects(rng, np.zeros((12, 8)), subjects=6), (0.5, 0.6))["Significance"])
    p = np.array(p)
    assert 8 <= (p < 0.05).sum() <= 34
    assert 0.4 < np.median(p) < 0.6


def test_too_few_subjects_or_images_is_refused():
    with pytest.raises(ValueError, match="2 subjects and 3 images"):
        net2brain_noise_ceiling(np.zeros((1, 5, 5)))
    with pytest.raises(ValueError, match="2 subjects and 3 images"):
        net2brain_row(np.zeros((2, 2)), np.zeros((3, 2, 2)), (0.5, 0.6))
    with pytest.raises(ValueError, match="model RDM"):
        net2brain_row(np.zeros((4, 4)), np.zeros((3, 5, 5)), (0.5, 0.6))


def test_algonauts_score_on_a_known_case():
    """100 x max(r, 0)^2 / ceiling^2, capped at 100; a zero ceiling is Algonauts' 1e-14."""
    r = np.array([0.5, -0.3, 0.9, 0.2, 0.0, np.nan, 0.3])
    ceiling_r = np.array([1.0, 0.5, 0.6, 0.0, 0.0, 0.5, np.nan])
    expected = np.array([25.0, 0.0, 100.0, 100.0, 0.0, np.nan, np.nan])
    np.testing.assert_allclose(noise_normalised_score(r, ceiling_r), expected)
    np.testing.assert_allclose(noise_normalised_score(np.array([0.3]), np.array([0.6])), [25.0])
    with pytest.raises(ValueError, match="shape"):
        noise_normalised_score(np.zeros(3), np.zeros(4))


def test_roi_scores_are_the_median_of_each_rois_voxels():
    """Per voxel 25, 0, 100, NaN, 100 (the known case's formula); a NaN voxel is left out."""
    r = np.array([0.5, -0.3, 0.9, np.nan, 0.6])
    ceiling_r = np.array([1.0, 0.5, 0.6, 0.5, 0.5])
    columns = {"EarlyVis": np.array([0, 1, 2]), "LOC": np.array([3, 4]), "RSC": np.array([3])}
    scores = roi_scores(r, ceiling_r, columns)
    assert scores["EarlyVis"] == 25.0 and scores["LOC"] == 100.0 and np.isnan(scores["RSC"])


def test_algonauts_scores_per_model_and_region_are_the_subjects_mean_of_voxel_medians():
    """Two subjects, one with its test images presented twice (a noise ceiling), one without (NaN
    ceiling and score, named): each region's score is the median of the voxels' scores, averaged
    over the subjects that have one; median r averages both."""
    rng = np.random.default_rng(0)
    names = tuple(f"i{k}" for k in range(80))
    features = rng.standard_normal((80, 6))
    models = {"signal": StimulusMatrix("signal", features, names),
              "noise": StimulusMatrix("noise", rng.standard_normal((80, 6)), names)}
    test = list(names[:20])
    samples, trials = {}, {}
    for subject in ("S1", "S2"):
        clean = features @ rng.standard_normal((6, 12))
        samples[subject] = StimulusMatrix(subject, clean + 0.5 * rng.standard_normal(clean.shape), names)
        twice = 2 if subject == "S1" else 1
        trials[subject] = StimulusMatrix(subject, np.repeat(clean[:20], twice, axis=0)
                                         + rng.standard_normal((20 * twice, 12)), tuple(np.repeat(test, twice)))
    regions = {s: {"union": np.arange(12), "V1": np.arange(4)} for s in samples}
    table, without = algonauts_scores(models, samples, trials, {"S1": test, "S2": test}, regions)
    assert without == ["S2"]
    assert table[["model", "roi"]].values.tolist() == [["signal", "union"], ["signal", "V1"], ["noise", "union"],
                                                       ["noise", "V1"]]
    r1, r2 = (held_out_r(models["signal"], samples[s], test) for s in ("S1", "S2"))
    score = noise_normalised_score(r1, held_out_ceiling_r(trials["S1"], test))
    v1 = table.set_index(["model", "roi"]).loc[("signal", "V1")]
    assert v1["score"] == pytest.approx(np.median(score[:4]))
    assert v1["median_r"] == pytest.approx((np.median(r1[:4]) + np.median(r2[:4])) / 2)
    assert v1["noise_ceiling"] == pytest.approx(np.median(held_out_ceiling_r(trials["S1"], test)[:4] ** 2))
    scores = table.set_index(["model", "roi"])["score"]
    assert scores[("signal", "union")] > 50 > scores[("noise", "union")]


def test_net2brains_spearman_from_ranks_made_once_is_scipys_to_the_bit():
    """Every subject's and model's RDM is ranked once for a whole table (rdm_ranks): the r from
    those ranks is scipy's spearmanr of the two RDMs exactly, ties (a category model) included, and
    NaN for a constant RDM as there."""
    from scipy import stats

    from neurolatent.science.peers import _spearman, rdm_ranks

    rng = np.random.default_rng(3)
    brain = _subjects(rng, rng.standard_normal((30, 8)), subjects=3)
    labels = rng.integers(0, 3, size=30)
    category = (labels[:, None] != labels[None, :]).astype(float)
    upper = np.triu_indices(30, 1)
    for own in brain:
        for model in (category, brain[0], np.round(own, 1)):
            assert _spearman(rdm_ranks(own), rdm_ranks(model)) == stats.spearmanr(own[upper], model[upper])[0]
    assert np.isnan(_spearman(rdm_ranks(brain[0]), rdm_ranks(np.ones((30, 30)))))
    row = net2brain_row(category, brain, net2brain_noise_ceiling(brain))
    ranks = [rdm_ranks(own) for own in brain]
    assert net2brain_row(category, brain, net2brain_noise_ceiling(brain, ranks), rdm_ranks(category), ranks) == row
