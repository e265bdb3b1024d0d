"""Functional alignment (neurolatent.science.alignment) against its references, and the few-shot
evaluation (neurolatent.science.fewshot) on planted twins with known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neurolatent.science.alignment import (SRM, DetSRM, FeatureAdapter, ProcrustesTemplate, build_alignment,
                                           canonical_correlations, fit_template, scaled_procrustes)
from neurolatent.science.fewshot import (SCRATCH, SUBJECTS, FewShotDesign, check_features, check_ks, common_test_images, identify,
                                         images_to_reach, leave_one_out, planted_space, planted_subjects)
from neurolatent.science.stimuli import StimulusMatrix

#: BrainIAK 0.12's SRM and DetSRM and fmralign 0.0.6's template on fixed data (the recipe beside it)
REFERENCE = Path(__file__).resolve().parents[1] / "data" / "alignment" / "reference.npz"


@pytest.fixture(scope="module")
def reference():
    return np.load(REFERENCE)


@pytest.mark.parametrize("name, model", [("srm", SRM), ("detsrm", DetSRM)])
def test_srm_equals_brainiak(reference, name, model):
    fitted = model(n_iter=10, features=5, rand_seed=0).fit([reference[f"x{i}"] for i in range(3)])
    for i in range(3):
        np.testing.assert_allclose(fitted.w_[i], reference[f"{name}_w{i}"], atol=1e-10)
    np.testing.assert_allclose(fitted.s_, reference[f"{name}_s"], atol=1e-10)
    np.testing.assert_allclose(fitted.transform_subject(reference["x3"]), reference[f"{name}_new_w"], atol=1e-10)
    # the same shared space up to the invariances too: the transformed responses span the reference s_
    # (the probabilistic s_ is a posterior mean, shrunk: correlations just under 1)
    shared = fitted.transform([reference[f"x{i}"] for i in range(3)])
    assert canonical_correlations(np.mean(shared, axis=0).T, reference[f"{name}_s"].T).min() > 0.999
    if name == "srm":
        np.testing.assert_allclose(fitted.sigma_s_, reference["srm_sigma_s"], atol=1e-10)
        np.testing.assert_allclose(fitted.rho2_, reference["srm_rho2"], atol=1e-10)


def test_procrustes_template_equals_fmralign(reference):
    subjects = [reference[f"p{i}"] for i in range(3)]
    template, rotations = fit_template(subjects, n_iter=2)
    np.testing.assert_allclose(template, reference["procrustes_template"], atol=1e-10)
    for i, (x, r) in enumerate(zip(subjects, rotations)):
        np.testing.assert_allclose(x @ r, reference[f"procrustes_aligned{i}"], atol=1e-10)
    rotation, scale = scaled_procrustes(reference["x3"].T, reference["procrustes_template"])
    np.testing.assert_allclose(rotation, reference["procrustes_new_r"], atol=1e-10)
    assert scale == pytest.approx(float(reference["procrustes_new_scale"]), rel=1e-12)


def test_scaled_procrustes_recovers_a_planted_rotation_and_scale():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 6))
    rotation = np.linalg.qr(rng.standard_normal((6, 6)))[0]
    found, scale = scaled_procrustes(x, 2.5 * x @ rotation)
    np.testing.assert_allclose(found, rotation, atol=1e-10)
    assert scale == pytest.approx(2.5)


# ----------------------------------------------------------------------------- planted twins


def twin(snr: float, **kwargs):
    return planted_subjects(snr, **kwargs)


def design(subjects, planted, ks=(10, 25, 50), fraction=0.2, features=16) -> FewShotDesign:
    test = common_test_images(subjects, fraction, 5, 0)
    return FewShotDesign(test, ks, planted, {"planted": planted}, features, 10, 0, bootstrap=200)


def table(method, subjects, planted, **kwargs) -> pd.DataFrame:
    d = design(subjects, planted, **kwargs)
    return pd.DataFrame([row for subject in subjects for row in
                         leave_one_out(method, subjects, subject, d, np.random.default_rng(1))])


@pytest.mark.parametrize("method", ["srm", "detsrm", "procrustes", "adapter"])
def test_the_shared_space_spans_the_planted_features(method):
    subjects, planted = twin(snr=1.0)
    space = planted_space(method, subjects, design(subjects, planted))
    r = canonical_correlations(space.matrix, planted.rows(space.stimuli))
    assert len(r) == 16 and r.min() > 0.9
    # and not any 16 dimensions: random ones of the same images span far less
    noise = np.random.default_rng(0).standard_normal(space.matrix.shape)
    assert canonical_correlations(noise, planted.rows(space.stimuli)).mean() < 0.6


@pytest.mark.parametrize("method", ["srm", "procrustes", "adapter"])
def test_a_new_subject_is_identified_between_subjects_and_decoded_as_well_as_scratch(method):
    subjects, planted = twin(snr=0.4)
    aligned, scratch = table(method, subjects, planted), table(SCRATCH, subjects, planted)
    between = aligned[aligned["target"] == SUBJECTS].groupby("k")["two_way"].mean()
    assert between.loc[50] > 0.9 and between.loc[10] > 0.65
    decoded = aligned[aligned["target"] == "planted"].groupby("k")["two_way"].mean()
    own = scratch.groupby("k")["two_way"].mean()
    # a linear twin whose subjects share no voxel correspondence: a new subject's map, aligned or
    # not, only sees the span of its k responses, so alignment can match scratch but not beat it
    # (docs/results.md, "One space for every subject"); within the 2-way accuracy's sampling noise at k <= 50
    assert (decoded.loc[[10, 25, 50]] >= own.loc[[10, 25, 50]] - 0.02).any()
    assert decoded.loc[50] > 0.9
    assert set(aligned.columns) == {"subject", "method", "k", "target", "two_way", "ci_low", "ci_high", "top1"}
    assert (aligned["ci_low"] <= aligned["two_way"]).all() and (aligned["two_way"] <= aligned["ci_high"]).all()


@pytest.mark.parametrize("method", ["srm", "procrustes", "adapter", SCRATCH])
def test_at_snr_zero_every_method_is_at_chance(method):
    subjects, planted = twin(snr=0.0, n_images=200)
    rows = table(method, subjects, planted, fraction=0.3)
    for (_, target), group in rows.groupby(["k", "target"]):
        assert abs(group["two_way"].mean() - 0.5) < 0.07, (target, group["two_way"].mean())
    # each fit's interval holds chance in most fits (60 test items: a wide interval)
    assert ((rows["ci_low"] <= 0.5) & (0.5 <= rows["ci_high"])).mean() > 0.8


def test_identification_scores_a_perfect_match_and_a_shuffled_one():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 10))
    perfect = identify(x, x, rng, 200, 0.95)
    assert perfect.two_way == 1.0 and perfect.top1 == 1.0 and perfect.ci_low == 1.0
    nothing = identify(x, rng.standard_normal((40, 10)), rng, 200, 0.95)
    assert nothing.ci_low < 0.5 < nothing.ci_high and nothing.top1 < 0.2


def test_the_headline_is_the_fewest_images_reaching_90_percent_of_the_own_accuracy():
    rows = pd.DataFrame({"subject": "S0", "method": ["srm"] * 3 + [SCRATCH] * 3, "k": [10, 25, 80] * 2,
                         "target": "pixels", "two_way": [0.6, 0.85, 0.9, 0.55, 0.7, 0.9],
                         "ci_low": 0.0, "ci_high": 1.0, "top1": 0.0})
    reached = images_to_reach(rows)
    assert reached[("S0", "srm", "pixels")] == 25 and reached[("S0", SCRATCH, "pixels")] == 80


def test_bad_arguments_say_what_is_wrong_in_one_line():
    subjects, planted = twin(snr=1.0, n_images=60)
    test = common_test_images(subjects, 0.2, 5, 0)
    with pytest.raises(ValueError, match=r"^k = 100 is more than S0's 48 training images \(60 images, 12 of them test\)$"):
        check_ks([25, 100], subjects, test)
    with pytest.raises(ValueError, match=r"^60 shared dimensions: more than the 48 training images the subjects share$"):
        check_features(60, subjects, test)
    check_features(48, subjects, test)
    with pytest.raises(ValueError, match="method: Input should be"):
        build_alignment("hyper", 8, 10, 0)
    apart = {s: StimulusMatrix(s, m.matrix, tuple(f"{s}-{n}" for n in m.stimuli)) for s, m in subjects.items()}
    with pytest.raises(ValueError, match="the subjects share 0 images"):
        common_test_images(apart, 0.2, 5, 0)
    with pytest.raises(ValueError, match="too few"):
        SRM(features=80).fit([m.matrix.T for m in subjects.values()])


def test_the_adapter_needs_no_shared_images():
    subjects, planted = twin(snr=1.0)
    # each subject sees its own half of the images: nothing in common
    halves = {s: StimulusMatrix(s, m.matrix[i % 2::2], m.stimuli[i % 2::2]) for i, (s, m) in enumerate(subjects.items())}
    model = FeatureAdapter(16).fit([m.matrix.T for m in halves.values()], [planted.rows(m.stimuli) for m in halves.values()])
    latent = model.transform([m.matrix.T for m in halves.values()])[0].T
    assert canonical_correlations(latent, planted.rows(halves["S0"].stimuli)).min() > 0.9
    template = ProcrustesTemplate(features=8)
    with pytest.raises(ValueError, match="same images"):
        template.fit([m.matrix.T for m in halves.values()][:3] + [subjects["S3"].matrix.T])


@pytest.mark.parametrize("method", ["srm", "procrustes"])
def test_a_new_subject_that_saw_fewer_images_is_matched_to_the_others_by_name(method):
    subjects, planted = twin(snr=1.0)
    # S3 missed every fourth image: the others share more images than everyone does
    kept = [n for i, n in enumerate(subjects["S3"].stimuli) if i % 4 != 1]
    subjects["S3"] = StimulusMatrix("S3", subjects["S3"].rows(kept), tuple(kept))
    d = design(subjects, planted)
    rows = pd.DataFrame(leave_one_out(method, subjects, "S3", d, np.random.default_rng(0)))
    assert rows[(rows["k"] == 50) & (rows["target"] == "planted")]["two_way"].item() > 0.95
    assert rows[(rows["k"] == 50) & (rows["target"] == SUBJECTS)]["two_way"].item() > 0.95


@pytest.mark.parametrize("method", ["srm", "procrustes", "adapter"])
def test_leaving_one_of_two_subjects_out_aligns_it_to_the_other(method):
    subjects, planted = twin(snr=1.0, n_subjects=2)
    rows = pd.DataFrame(leave_one_out(method, subjects, "S1", design(subjects, planted), np.random.default_rng(0)))
    assert rows[(rows["k"] == 50) & (rows["target"] == SUBJECTS)]["two_way"].item() > 0.95
