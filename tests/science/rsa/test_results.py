"""neurolatent.science.rsa.results: one representation against every model, as tables whose rows
name every statistic once."""

from __future__ import annotations

import numpy as np
import pytest

from neurolatent.science.rsa.compare import compare
from neurolatent.science.rsa.inference import group_bootstrap, group_mantel_models
from neurolatent.science.rsa.rdm import RDM, rdm_upper
from neurolatent.science.rsa.results import compare_models, compare_regions, representation_tables, subject_draws
from neurolatent.science.stats import named_rng
from test_inference import N_UNION, _subjects_sharing_most_stimuli


def _regions_of(subjects: list[RDM], rng: np.random.Generator, count: int) -> dict[str, list[RDM]]:
    """``count`` regions of the same subjects: RDMs over each subject's images, in a shuffled order of
    its own (as a subject's first presentations are), other values per region."""
    regions = {}
    for r in range(count):
        rdms = []
        for item in subjects:
            order = tuple(rng.permutation(item.stimuli))
            patterns = rng.normal(size=(item.n, 6)) + (r + 1) * np.linspace(0, 1, item.n)[:, None]
            rdms.append(RDM(rdm_upper(patterns), order, "correlation", f"roi{r}/{item.name}", dict(item.meta)))
        regions[f"roi{r}"] = rdms
    return regions


@pytest.mark.parametrize("method", ["spearman", "pearson", "cosine"])
def test_every_region_at_once_gives_the_bits_of_the_per_region_functions(method):
    """compare_regions shares each model's ranks, each resample's quadratic forms and the draws
    between regions: its tests, bootstraps and Pearson r are the bits of group_mantel_models,
    group_bootstrap and compare called region by region with the same random streams."""
    rng = np.random.default_rng(11)
    subjects, planted = _subjects_sharing_most_stimuli(rng, planted=0.5)
    models = {"a": planted, "b": RDM(rdm_upper(rng.normal(size=(N_UNION, 5))), planted.stimuli, "correlation")}
    regions = _regions_of(subjects, rng, 3)
    found = compare_regions(regions, models, method=method, permutations=300, bootstrap=40, ci=0.95, seed=5,
                            name="samples")
    assert list(found) == list(regions)
    for region, rdms in regions.items():
        tests = group_mantel_models(rdms, models, method, 300, named_rng(5, "samples"))
        for model in models:
            boot = group_bootstrap(rdms, models[model], method, 40, named_rng(5, "samples", "bootstrap"))
            mine = found[region].models[model]
            assert np.array_equal(mine.test.subject_nulls, tests[model].subject_nulls)
            assert (mine.test.statistic, mine.test.p) == (tests[model].statistic, tests[model].p)
            assert np.array_equal(mine.test.subject_p, tests[model].subject_p)
            assert np.array_equal(mine.boot.subject_replicates, boot.subject_replicates)
            assert np.array_equal(mine.r_pearson, [compare(models[model].subset(i.stimuli).upper, i.upper, "pearson")
                                                   for i in rdms])


def test_regions_over_other_images_are_refused():
    rng = np.random.default_rng(2)
    subjects, planted = _subjects_sharing_most_stimuli(rng)
    regions = {"EarlyVis": subjects, "LOC": subjects[:2] + [subjects[0]]}
    with pytest.raises(ValueError, match="region 'LOC' has other subjects or images than 'EarlyVis'"):
        compare_regions(regions, {"a": planted}, method="spearman", permutations=10, bootstrap=5, ci=0.9, seed=0,
                        name="x")


def test_compare_models_names_every_statistic_once_for_the_group_and_each_subject():
    """The result object's rows are the group test, its bootstrap and the study's Pearson r as one
    would assemble them by hand from the functions under it, with the same random streams."""
    rng = np.random.default_rng(7)
    subjects, planted = _subjects_sharing_most_stimuli(rng, planted=0.5)
    models = {"a": planted, "b": RDM(rdm_upper(rng.normal(size=(N_UNION, 5))), planted.stimuli, "correlation")}
    found = compare_models(subjects, models, method="spearman", permutations=99, bootstrap=50, ci=0.9, seed=3,
                           name="samples")
    tests = group_mantel_models(subjects, models, "spearman", 99, named_rng(3, "samples"))
    for model in models:
        boot = group_bootstrap(subjects, models[model], "spearman", 50, named_rng(3, "samples", "bootstrap"))
        row = found.models[model].group_row()
        assert (row["r"], row["p"]) == (tests[model].statistic, tests[model].p)
        assert row["ci_low"] == np.quantile(boot.replicates, (1 - 0.9) / 2)
        assert row["r_pearson"] == np.mean([compare(models[model].subset(i.stimuli).upper, i.upper, "pearson")
                                            for i in subjects])
    groups = found.group_rows()
    assert [row["model"] for row in groups] == ["a", "b"]
    assert list(groups[0]) == ["model", *found.models["a"].STATISTICS, "noise_ceiling_lower", "noise_ceiling_upper"]
    rows = found.subject_rows()
    assert [(row["model"], row["subject"]) for row in rows] == [(m, f"s{s}") for m in models for s in range(3)]
    assert list(rows[0])[-1] == "cells" and all(row["stimuli"] > 0 for row in rows)


def test_representation_tables_hold_a_row_per_region_and_model_pair_and_interaction():
    """The whole region's group rows carry their family-wise p; every region has a row per model and
    per two models; interactions pair every two regions other than the whole, and each is the
    difference of the two regions' model differences."""
    rng = np.random.default_rng(5)
    subjects, planted = _subjects_sharing_most_stimuli(rng, planted=0.5)
    models = {"a": planted, "b": RDM(rdm_upper(rng.normal(size=(N_UNION, 5))), planted.stimuli, "correlation"),
              "c": RDM(rdm_upper(rng.normal(size=(N_UNION, 4))), planted.stimuli, "correlation")}
    regions = {"whole": subjects} | _regions_of(subjects, rng, 3)
    found = compare_regions(regions, models, method="spearman", permutations=50, bootstrap=30, ci=0.9, seed=1,
                            name="samples")
    fwe = {(region, model): (0.01 * (r + 1) + 0.001 * m, "permutation")
           for r, region in enumerate(regions) for m, model in enumerate(models)}
    draws = subject_draws(3, 30, 0)
    tables = representation_tables("samples", found, fwe, draws, "whole")
    assert [(row["comparison"], row["p_fwe"]) for row in tables.group] == [
        ("samples: a", 0.01), ("samples: b", 0.011), ("samples: c", 0.012)]
    assert tables.group[0]["r"] == found["whole"].models["a"].test.statistic
    assert [(row["fmri"], row["model"], row["subject"]) for row in tables.subjects] == [
        ("samples", m, f"s{s}") for m in models for s in range(3)]
    assert [(row["roi"], row["model"]) for row in tables.rois] == [(r, m) for r in regions for m in models]
    assert [row["p_fwe"] for row in tables.rois if row["roi"] == "roi2"] == [0.04, 0.041, 0.042]
    assert [(row["roi"], row["model_a"], row["model_b"]) for row in tables.pairs] == [
        (r, a, b) for r in regions for a, b in [("a", "b"), ("a", "c"), ("b", "c")]]
    assert [(row["roi_a"], row["roi_b"]) for row in tables.interactions] == [
        (x, y) for x, y in [("roi0", "roi1"), ("roi0", "roi2"), ("roi1", "roi2")] for _ in range(3)]
    first = tables.interactions[0]
    test = {(region, model): found[region].models[model].test.statistic for region in regions for model in models}
    assert first["estimate"] == pytest.approx((test["roi0", "a"] - test["roi0", "b"])
                                              - (test["roi1", "a"] - test["roi1", "b"]))
