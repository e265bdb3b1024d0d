"""Group-level statistics that hold when subjects saw the same images, checked on null and planted
data, against a direct computation and against rsatoolbox; the encoding noise ceiling against NSD's
formula; euclidean RDMs in rsatoolbox."""

from __future__ import annotations

import numpy as np
import pytest
from rsatoolbox.data import Dataset
from rsatoolbox.rdm import calc_rdm
from rsatoolbox.rdm import compare as rsatoolbox_compare

from neurolatent.science import rsa
from neurolatent.science.mapping import noise_ceiling_r
from neurolatent.science.stats import permutation_p

N_UNION = 20


def _subjects_sharing_most_stimuli(rng: np.random.Generator, planted: float = 0.0):
    """Three subjects whose RDMs are alike (a shared brain structure plus a little individual noise),
    each seeing 18 of 20 images, and a model that shares ``planted`` of its structure with them."""
    names = [f"img{i:02d}.jpg" for i in range(N_UNION)]
    brain = rng.normal(size=(N_UNION, 8))
    model_patterns = planted * brain + rng.normal(size=(N_UNION, 8))
    model = rsa.RDM(rsa.rdm_upper(model_patterns), tuple(names), "correlation", "model")
    subjects = []
    for s in range(3):
        seen = np.sort(rng.choice(N_UNION, size=18, replace=False))
        patterns = brain[seen] + 0.3 * rng.normal(size=(18, 8))
        subjects.append(rsa.RDM(rsa.rdm_upper(patterns), tuple(names[i] for i in seen), "correlation", f"s{s}",
                                {"subject": f"s{s}"}))
    return subjects, model


def _independent_group_p(subjects, model, n_permutations, rng) -> float:
    """The old scheme, kept here only to show the difference: each subject permuted independently,
    the group null the mean of the subjects' nulls."""
    results = [rsa.mantel(model.subset(item.stimuli).upper, item.upper, "spearman", n_permutations, rng)
               for item in subjects]
    statistic = np.mean([r.statistic for r in results])
    return permutation_p(statistic, np.mean([r.null for r in results], axis=0))


def test_group_p_is_calibrated_when_subjects_share_stimuli_and_the_old_scheme_is_not():
    rng = np.random.default_rng(14)
    shared, independent = [], []
    for _ in range(300):
        subjects, model = _subjects_sharing_most_stimuli(rng)
        shared.append(rsa.group_mantel(subjects, model, "spearman", 199, rng).p)
        independent.append(_independent_group_p(subjects, model, 199, rng))
    shared_rate, independent_rate = np.mean(np.array(shared) < 0.05), np.mean(np.array(independent) < 0.05)
    assert 0.02 <= shared_rate <= 0.08, shared_rate
    assert independent_rate > 0.08, independent_rate


def test_a_planted_group_effect_is_found():
    rng = np.random.default_rng(15)
    subjects, model = _subjects_sharing_most_stimuli(rng, planted=1.0)
    result = rsa.group_mantel(subjects, model, "spearman", 999, rng)
    assert result.statistic > 0.3 and result.p < 0.01
    assert (result.subject_p < 0.01).all()
    # each subject's own null is a Mantel null of that subject: its statistic equals compare()
    for item, observed in zip(subjects, result.subject_statistics):
        assert observed == pytest.approx(rsa.compare(model.subset(item.stimuli).upper, item.upper, "spearman"))


def test_subjects_who_saw_the_same_images_get_the_same_relabelling():
    rng = np.random.default_rng(16)
    subjects, model = _subjects_sharing_most_stimuli(rng)
    twin = rsa.RDM(subjects[0].upper, subjects[0].stimuli, "correlation", "twin")
    result = rsa.group_mantel([subjects[0], twin], model, "pearson", 50, 0)
    np.testing.assert_array_equal(result.subject_nulls[0], result.subject_nulls[1])
    # a subject listed in another order is the same subject
    reordered = subjects[0].subset(subjects[0].stimuli[::-1])
    again = rsa.group_mantel([subjects[0], reordered], model, "pearson", 50, 0)
    np.testing.assert_allclose(again.subject_nulls[0], again.subject_nulls[1], atol=1e-6)


@pytest.mark.parametrize("method", ["spearman", "kendall_tau_a"])
def test_models_sharing_a_pass_get_each_the_test_it_would_get_alone(method):
    rng = np.random.default_rng(17)
    subjects, model = _subjects_sharing_most_stimuli(rng, planted=1.0)
    others = {"planted": model, "unrelated": rsa.RDM(rsa.rdm_upper(rng.normal(size=(N_UNION, 5))),
                                                      model.stimuli[::-1], "correlation", "unrelated")}
    together = rsa.group_mantel_models(subjects, others, method, 99, 3)
    for name, item in others.items():
        # the first model's order names the union's relabellings; the second is listed in reverse
        alone = rsa.group_mantel(subjects, item.subset(model.stimuli), method, 99, 3)
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
            values.append(rsa.compare(own_model[drawn[a[keep]], drawn[c[keep]]],
                                      item.square()[drawn[a[keep]], drawn[c[keep]]], "pearson"))
        out[b] = np.mean(values)
    return out


def test_group_bootstrap_equals_a_direct_shared_resample():
    rng = np.random.default_rng(17)
    subjects, model = _subjects_sharing_most_stimuli(rng, planted=0.5)
    ours = rsa.group_bootstrap(subjects, model, "pearson", 300, 5).replicates
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
    model = rsa.RDM(rsa.rdm_upper(0.7 * brain + rng.normal(size=(30, 8))), names, "correlation", "model")
    subjects = [rsa.RDM(rsa.rdm_upper(brain + 0.4 * rng.normal(size=(30, 8))), names, "correlation", f"s{s}")
                for s in range(3)]
    ours = rsa.group_bootstrap(subjects, model, "pearson", 1000, 0).replicates
    data = RDMs(np.stack([s.upper for s in subjects]), pattern_descriptors={"index": np.arange(30)})
    theirs = eval_bootstrap_pattern(ModelFixed("model", model.upper), data, method="corr", N=1000)
    their_sd = np.nanstd(np.asarray(theirs.evaluations).reshape(1000, -1), axis=0)[0]
    assert abs(ours.std() / their_sd - 1) < 0.15, (ours.std(), their_sd)
    # the old scheme (each subject resampled on its own, replicates averaged) is clearly narrower
    independent = np.mean([rsa.bootstrap(model.upper, s.upper, "pearson", 1000, k) for k, s in enumerate(subjects)], axis=0)
    assert independent.std() < 0.85 * their_sd


def _nsd_ceiling(trials: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """NSD's definition written out (Allen et al. 2022, with the 1/n term for unequal repeat counts)."""
    z = (trials - trials.mean(axis=0)) / trials.std(axis=0)
    images, counts = np.unique(labels, return_counts=True)
    repeated = images[counts > 1]
    sigma2 = np.mean([z[labels == image].var(axis=0, ddof=1) for image in repeated], axis=0)
    ncsnr = np.sqrt(np.clip(1 - sigma2, 0, None) / sigma2)
    mean_inverse_n = np.mean([1 / (labels == image).sum() for image in repeated])
    return np.sqrt(ncsnr**2 / (ncsnr**2 + mean_inverse_n))


def test_encoding_noise_ceiling_is_nsds_with_unequal_repeats():
    rng = np.random.default_rng(19)
    repeats = rng.choice([2, 3, 4, 5], size=300)  # CSI3-like: 2 to 5 presentations
    labels = np.repeat(np.arange(300), repeats)
    signal = rng.normal(size=(300, 40))
    trials = signal[labels] + rng.normal(size=(len(labels), 40)) * np.linspace(0.3, 3.0, 40)
    ours = noise_ceiling_r(trials, labels)
    np.testing.assert_allclose(ours, _nsd_ceiling(trials, labels), rtol=1e-10)
    # the mean-repeat form (1 / mean n) it replaces is higher wherever the noise matters
    z = (trials - trials.mean(axis=0)) / trials.std(axis=0)
    sigma2 = np.mean([z[labels == i].var(axis=0, ddof=1) for i in range(300)], axis=0)
    ncsnr2 = (1 - sigma2) / sigma2
    assert (np.sqrt(ncsnr2 / (ncsnr2 + 1 / repeats.mean())) >= ours - 1e-12).all()


@pytest.mark.parametrize("method", ["corr", "spearman", "cosine"])
def test_euclidean_rdms_compare_in_rsatoolbox_as_in_neurolatent(method):
    rng = np.random.default_rng(20)
    x, y = rng.normal(size=(25, 6)), rng.normal(size=(25, 6))
    names = tuple(f"i{i}" for i in range(25))
    first = rsa.RDM(rsa.rdm_upper(x, "euclidean"), names, "euclidean", "x", {"components": 6})
    second = rsa.RDM(rsa.rdm_upper(y, "euclidean"), names, "euclidean", "y", {"components": 6})
    exported = first.to_rsatoolbox(), second.to_rsatoolbox()
    # not labelled as rsatoolbox's own (its euclidean is the squared distance over features)
    assert exported[0].dissimilarity_measure not in ("euclidean", "squared euclidean")
    ours = rsa.compare(first.upper, second.upper, {"corr": "pearson"}.get(method, method))
    assert rsatoolbox_compare(*exported, method=method)[0, 0] == pytest.approx(ours, abs=1e-9)
    # converted on request, it is rsatoolbox's own calc_rdm
    converted = first.to_rsatoolbox(squared_euclidean=True)
    assert converted.dissimilarity_measure == "squared euclidean"
    np.testing.assert_allclose(converted.get_vectors()[0], calc_rdm(Dataset(x), method="euclidean").get_vectors()[0])
