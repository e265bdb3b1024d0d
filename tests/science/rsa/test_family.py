"""group_family: every model against every region with the shared work done once gives, region by
region, the bits of group_mantel_models and group_bootstrap with the same random states; it takes
pearson, spearman and cosine only, and checks its counts once, at its entry."""

from __future__ import annotations

import numpy as np
import pytest

from neurolatent.science.rsa.family import group_family
from neurolatent.science.rsa.inference import group_bootstrap, group_mantel_models
from neurolatent.science.rsa.rdm import RDM, rdm_upper
from test_inference import N_UNION, _subjects_sharing_most_stimuli


def _family_inputs():
    rng = np.random.default_rng(3)
    subjects, planted = _subjects_sharing_most_stimuli(rng, planted=0.5)
    other = RDM(rdm_upper(rng.normal(size=(N_UNION, 4))), planted.stimuli, "correlation")
    noisy = [RDM(item.upper + rng.normal(scale=0.1, size=item.upper.shape), item.stimuli, "correlation",
                 f"second/{item.name}", dict(item.meta)) for item in subjects]
    return {"first": subjects, "second": noisy}, {"planted": planted, "other": other}


def test_each_region_gets_the_bits_of_the_per_region_functions():
    regions, models = _family_inputs()
    found = group_family(regions, models, "spearman", 60, 20, 7, 8)
    progress = []
    group_family(regions, models, "spearman", 60, 20, 7, 8, progress=progress.append)
    for region, rdms in regions.items():
        tests = group_mantel_models(rdms, models, "spearman", 60, np.random.default_rng(7))
        for name, model in models.items():
            assert np.array_equal(found.tests[region][name].subject_nulls, tests[name].subject_nulls)
            boot = group_bootstrap(rdms, model, "spearman", 20, np.random.default_rng(8))
            assert np.array_equal(found.boots[region][name].subject_replicates, boot.subject_replicates)
    # every region's permutations and every model's resamples, counted once
    assert sum(progress) == len(regions) * (60 + len(models) * 20)


def test_kendall_is_left_to_the_per_region_functions():
    regions, models = _family_inputs()
    with pytest.raises(ValueError, match="pearson, spearman or cosine, not 'kendall_tau_a'"):
        group_family(regions, models, "kendall_tau_a", 10, 10, 0, 0)


@pytest.mark.parametrize("argument", ["permutations", "bootstrap"])
def test_a_count_of_zero_is_named(argument):
    regions, models = _family_inputs()
    counts = {"permutations": 10, "bootstrap": 10} | {argument: 0}
    with pytest.raises(ValueError, match=rf"^{argument}: Input should be greater than or equal to 1 \(got 0\)$"):
        group_family(regions, models, "spearman", counts["permutations"], counts["bootstrap"], 0, 0)


def test_rdms_kept_on_disk_give_the_bits_of_rdms_in_memory(tmp_path):
    """The rsa stage hands the family StoredRDMs (each read when it is needed, so that one subject's
    work is held, not every RDM): the results are the bits of the same RDMs in memory."""
    from neurolatent.io.rdms import StoredRDM

    regions, models = _family_inputs()
    stored_regions = {region: [StoredRDM.saved(item, tmp_path)[0] for item in rdms] for region, rdms in regions.items()}
    stored_models = {name: StoredRDM.saved(item, tmp_path)[0] for name, item in models.items()}
    found = group_family(stored_regions, stored_models, "spearman", 60, 20, 7, 8)
    expected = group_family(regions, models, "spearman", 60, 20, 7, 8)
    for region in regions:
        assert np.array_equal(found.pearson[region]["planted"], expected.pearson[region]["planted"])
        for name in models:
            assert np.array_equal(found.tests[region][name].subject_nulls, expected.tests[region][name].subject_nulls)
            assert np.array_equal(found.tests[region][name].subject_statistics,
                                  expected.tests[region][name].subject_statistics)
            assert np.array_equal(found.boots[region][name].subject_replicates,
                                  expected.boots[region][name].subject_replicates)
