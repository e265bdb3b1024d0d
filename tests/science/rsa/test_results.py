"""neurolatent.science.rsa.results: one representation against every model, as tables whose rows
name every statistic once."""

from __future__ import annotations

import numpy as np

from neurolatent.science.rsa.compare import compare
from neurolatent.science.rsa.inference import group_bootstrap, group_mantel_models
from neurolatent.science.rsa.rdm import RDM, rdm_upper
from neurolatent.science.rsa.results import compare_models
from neurolatent.science.stats import named_rng
from test_inference import N_UNION, _subjects_sharing_most_stimuli


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
