"""data/rdms as rsatoolbox objects: one ``RDMs`` per representation over the union of the images
(NaN where a subject did not see both images of a pair), evaluated by rsatoolbox as neurolatent
evaluates them, and drawn by ``show_rdm``. Three subjects saw overlapping, different subsets of 36
images in three categories; their patterns are the planted image features plus noise.

The figure is kept in ``test-artifacts/`` (or ``$NEUROLATENT_TEST_ARTIFACTS``)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from rsatoolbox.inference import eval_fixed  # noqa: E402
from rsatoolbox.model import ModelFixed  # noqa: E402
from rsatoolbox.rdm import RDMs, compare, concat  # noqa: E402
from rsatoolbox.vis import show_rdm  # noqa: E402

from neurolatent.errors import NeurolatentError  # noqa: E402
from neurolatent.io.rdms import load_rdms, save_rdms  # noqa: E402
from neurolatent.science.rsa.compare import compare as our_compare  # noqa: E402
from neurolatent.science.rsa.inference import noise_ceiling  # noqa: E402
from neurolatent.science.rsa.rdm import EUCLIDEAN_FOR_RSATOOLBOX, RDM, rdm_upper, union_vectors  # noqa: E402

SUBJECTS = ("CSI1", "CSI2", "CSI3")
KINDS = ("samples", "ae")
#: rsatoolbox's name of each neurolatent comparison
METHODS = {"spearman": "spearman", "corr": "pearson"}


def _study(seed: int = 0):
    """The rsa stage's RDMs of a small planted study.

    Returns
    -------
    rdms : per subject and kind (``<kind>/<subject>``, each over the images that subject saw, in an
        order of its own), then ``planted`` and ``random`` over the union (meta subject ``all``)
    categories : {image: category}
    union : the 36 images in the stimulus table's order (categories interleaved)
    seen : {subject: set of its images}; every subject saw 22 of them
    """
    rng = np.random.default_rng(seed)
    n, d = 36, 20
    category = np.array(["animal", "food", "scene"])[rng.permutation(np.arange(n) % 3)]
    union = [f"img{i:02d}.jpg" for i in range(n)]
    # the planted truth: category means, and each image's own part
    means = {c: 2.0 * rng.normal(size=d) for c in set(category)}
    truth = np.array([means[c] for c in category]) + rng.normal(size=(n, d))
    positions = {"CSI1": np.arange(0, 31), "CSI2": np.arange(5, 36),
                 "CSI3": np.r_[0:4, 9:36]}
    seen = {s: {union[i] for i in rows} for s, rows in positions.items()}
    rdms = []
    for kind in KINDS:
        for subject in SUBJECTS:
            rows = rng.permutation(positions[subject])
            patterns = truth[rows] + 1.5 * rng.normal(size=(len(rows), d))
            rdms.append(RDM(rdm_upper(patterns), tuple(union[i] for i in rows), "correlation",
                                f"{kind}/{subject}", {"subject": subject, "components": d, "variance": 1.0}))
    for name, features in (("planted", truth), ("random", rng.normal(size=(n, d)))):
        rdms.append(RDM(rdm_upper(features), tuple(union), "correlation", name, {"subject": "all"}))
    return rdms, dict(zip(union, category)), union, seen


def _named(rdms: list[RDM], name: str) -> RDM:
    return next(item for item in rdms if item.name == name)


def test_union_rdms_hold_every_subject_with_nan_where_a_pair_was_not_seen(tmp_path):
    rdms, categories, union, seen = _study()
    save_rdms(rdms, tmp_path, categories=categories)
    loaded = load_rdms(tmp_path, as_rsatoolbox=True)
    assert list(loaded) == ["samples", "ae", "planted", "random"]
    for kind in KINDS:
        fmri = loaded[kind]
        assert (fmri.n_rdm, fmri.n_cond) == (3, 36)
        assert fmri.dissimilarity_measure == "correlation"
        assert list(fmri.rdm_descriptors["subject"]) == list(SUBJECTS)
        assert list(fmri.rdm_descriptors["space"]) == ["fmri"] * 3
        assert list(fmri.rdm_descriptors["model"]) == [kind] * 3
        assert list(fmri.rdm_descriptors["name"]) == [f"{kind}/{s}" for s in SUBJECTS]
        assert list(fmri.pattern_descriptors["image_name"]) == union
        assert list(fmri.pattern_descriptors["category"]) == [categories[name] for name in union]
        off_diagonal = ~np.eye(36, dtype=bool)
        for subject, matrix in zip(SUBJECTS, fmri.get_matrices()):
            mine = np.array([name in seen[subject] for name in union])
            both = np.outer(mine, mine)
            # NaN exactly at the pairs the subject did not see both images of
            np.testing.assert_array_equal(np.isnan(matrix) & off_diagonal, ~both & off_diagonal)
            own = _named(rdms, f"{kind}/{subject}")
            rows = [own.stimuli.index(name) for name in np.array(union)[mine]]
            np.testing.assert_array_equal(matrix[np.ix_(mine, mine)], own.square()[np.ix_(rows, rows)])
        # the rows the noise ceiling pools
        np.testing.assert_array_equal(fmri.get_vectors(),
                                      union_vectors([_named(rdms, f"{kind}/{s}") for s in SUBJECTS], union))
    for model in ("planted", "random"):
        item = loaded[model]
        assert item.n_rdm == 1 and item.n_cond == 36
        assert (item.rdm_descriptors["subject"][0], item.rdm_descriptors["space"][0],
                item.rdm_descriptors["model"][0]) == ("all", "image", model)
        np.testing.assert_array_equal(item.get_vectors()[0], _named(rdms, model).upper)
    # the list of RDMs is unchanged: categories are not meta
    listed = load_rdms(tmp_path)
    assert [r.name for r in listed] == [r.name for r in rdms]
    assert all(a.meta == b.meta and a.stimuli == b.stimuli for a, b in zip(listed, rdms))


def test_an_index_without_categories_still_loads(tmp_path):
    rdms, _, union, _ = _study()
    save_rdms(rdms, tmp_path)
    loaded = load_rdms(tmp_path, as_rsatoolbox=True)
    assert "category" not in loaded["samples"].pattern_descriptors
    assert list(loaded["planted"].pattern_descriptors["image_name"]) == union
    # euclidean RDMs keep to_rsatoolbox's name for our plain distance
    euclidean = [RDM(r.upper, r.stimuli, "euclidean", r.name, r.meta) for r in rdms]
    (tmp_path / "euclidean").mkdir()
    save_rdms(euclidean, tmp_path / "euclidean")
    assert (load_rdms(tmp_path / "euclidean", as_rsatoolbox=True)["ae"].dissimilarity_measure
            == EUCLIDEAN_FOR_RSATOOLBOX == euclidean[0].to_rsatoolbox().dissimilarity_measure)


def test_rsatoolbox_compares_only_rdms_with_the_same_nan_cells(tmp_path):
    """rsatoolbox 0.3.2 drops the cells that are NaN in any RDM of either argument, and refuses two
    arguments whose NaN cells differ: a model over the union against subjects who saw different
    images, and the noise ceiling of those subjects. If a later rsatoolbox evaluates them, this test
    fails: update the notes of ``neurolatent.io.rdms.rsatoolbox_rdms`` and docs/results.md."""
    rdms, categories, union, seen = _study()
    save_rdms(rdms, tmp_path, categories=categories)
    loaded = load_rdms(tmp_path, as_rsatoolbox=True)
    fmri, planted = loaded["samples"], loaded["planted"]
    with pytest.raises(ValueError, match="different nan positions"):
        eval_fixed(ModelFixed("planted", planted), fmri, method="spearman")
    with pytest.raises(ValueError, match="different nan positions"):
        compare(planted, fmri, method="spearman")
    model_rdm = _named(rdms, "planted")
    for subject in SUBJECTS:
        subject_rdm = _named(rdms, f"samples/{subject}")
        ours = our_compare(model_rdm.subset(subject_rdm.stimuli).upper, subject_rdm.upper)
        # one subject over the images it saw, against the model over the same: the rsa stage's
        # per-subject comparison
        images = [name for name in union if name in seen[subject]]
        own = fmri.subset("subject", subject).subset_pattern("image_name", images)
        result = eval_fixed(ModelFixed("planted", planted.subset_pattern("image_name", images)), own, method="spearman")
        assert result.evaluations[0, 0, 0] == pytest.approx(ours, abs=1e-12)
        # or over the union, with the model given NaN where the subject has it
        masked = planted.get_vectors().copy()
        masked[np.isnan(fmri.subset("subject", subject).get_vectors())] = np.nan
        theirs = compare(RDMs(masked), fmri.subset("subject", subject), method="spearman")[0, 0]
        assert theirs == pytest.approx(ours, abs=1e-12)


def test_shared_images_are_a_clear_error_when_no_image_was_seen_by_every_subject(tmp_path):
    rdms, categories, union, seen = _study()
    # CSI3 saw none of the images CSI1 and CSI2 both saw
    alone = [r for r in rdms if r.name != "samples/CSI3" and r.name != "ae/CSI3"]
    alone.append(RDM(rdm_upper(np.random.default_rng(1).normal(size=(4, 5))), tuple(union[:2] + union[-2:]),
                         "correlation", "samples/CSI3", {"subject": "CSI3"}))
    save_rdms(alone, tmp_path, categories=categories)
    with pytest.raises(NeurolatentError, match="share 0 image"):
        load_rdms(tmp_path, as_rsatoolbox=True, images="shared")
    assert load_rdms(tmp_path, as_rsatoolbox=True)["samples"].n_rdm == 3


@pytest.mark.parametrize("method", METHODS)
def test_eval_fixed_on_the_shared_images_is_neurolatents_comparison_on_them(tmp_path, method):
    rdms, categories, union, seen = _study()
    save_rdms(rdms, tmp_path, categories=categories)
    shared = load_rdms(tmp_path, as_rsatoolbox=True, images="shared")
    common = [name for name in union if all(name in seen[s] for s in SUBJECTS)]
    assert len(common) == 22
    for item in shared.values():
        assert list(item.pattern_descriptors["image_name"]) == common
        assert not np.isnan(item.get_vectors()).any()
    models = [ModelFixed(name, shared[name]) for name in ("planted", "random")]
    result = eval_fixed(models, shared["samples"], method=method)
    evaluations = result.evaluations[0]
    assert evaluations.shape == (2, 3) and np.isfinite(evaluations).all()
    # the same numbers computed directly, subject by subject, on the pairs of the shared images
    subjects = [_named(rdms, f"samples/{s}").subset(common) for s in SUBJECTS]
    direct = np.array([[our_compare(_named(rdms, name).subset(common).upper, subject.upper, METHODS[method])
                        for subject in subjects] for name in ("planted", "random")])
    np.testing.assert_allclose(evaluations, direct, atol=1e-12)
    assert evaluations[0].min() > 0.5, evaluations
    assert abs(evaluations[1].mean()) < 0.15, evaluations
    np.testing.assert_allclose(result.noise_ceiling, noise_ceiling(np.array([s.upper for s in subjects]),
                                                                       METHODS[method]), atol=1e-12)


def test_show_rdm_draws_the_union_by_category(tmp_path, artifacts):
    rdms, categories, union, _ = _study()
    save_rdms(rdms, tmp_path, categories=categories)
    loaded = load_rdms(tmp_path, as_rsatoolbox=True)
    every = concat([loaded[name] for name in ("samples", "planted", "random")])
    every.sort_by(category="alpha")
    assert list(every.pattern_descriptors["category"]) == sorted(categories[name] for name in union)
    # lines between the category blocks
    edges = [k + 0.5 for k in np.flatnonzero(np.diff(np.unique(every.pattern_descriptors["category"],
                                                               return_inverse=True)[1]))]
    # one colour scale for every panel: show_colorbar="figure" takes it from min() and max() of the
    # cells, NaN with a NaN among them (a blank figure), unless given (a zero vmin counts as not given)
    values = every.get_vectors()
    figure, axes, handles = show_rdm(every, pattern_descriptor="category", rdm_descriptor="name", n_column=3,
                                     show_colorbar="panel", gridlines=edges, figsize=(12, 9),
                                     vmin=np.nanmin(values), vmax=np.nanmax(values))
    images = [panel["image"] for panel in handles.values() if "image" in panel]
    assert len(images) == 5 and all(np.isfinite([i.norm.vmin, i.norm.vmax]).all() for i in images)
    figure.savefig(artifacts / "rsatoolbox_union_rdms.png", dpi=90)
    plt.close(figure)
    assert (artifacts / "rsatoolbox_union_rdms.png").stat().st_size > 10_000


def test_a_stored_rdm_is_the_saved_rdm_read_when_asked_for(tmp_path):
    """StoredRDM (what the rsa stage hands its comparisons): names and meta held, cells read from the
    .npy each time, the same bits; its subset and square are the RDM's."""
    from neurolatent.io.rdms import StoredRDM

    names = tuple(f"img{i}" for i in range(7))
    item = RDM(rdm_upper(np.random.default_rng(0).normal(size=(7, 3))), names, "correlation", "samples/CSI1",
               {"subject": "CSI1", "components": 3})
    stored, entry = StoredRDM.saved(item, tmp_path)
    assert entry["file"] == "samples__CSI1.npy" and (tmp_path / entry["file"]).is_file()
    assert (stored.stimuli, stored.name, stored.meta, stored.n) == (names, item.name, item.meta, 7)
    assert np.array_equal(stored.upper, item.upper) and stored.upper is not stored.upper
    assert np.array_equal(stored.square(), item.square())
    order = names[::-2]
    assert np.array_equal(stored.subset(order).upper, item.subset(order).upper)
    assert stored.load().meta == item.meta


def test_stored_rdms_are_the_saved_rdms_in_the_index_order_read_when_asked_for(tmp_path):
    """stored_rdms (what the export stage reads): every RDM of the index as a StoredRDM, in its order,
    holding no cells; each read gives load_rdms' RDM, bits, images and meta."""
    from neurolatent.io.rdms import StoredRDM, stored_rdms

    rdms, categories, _, _ = _study()
    save_rdms(rdms, tmp_path, categories)
    stored, loaded = stored_rdms(tmp_path), load_rdms(tmp_path)
    assert all(isinstance(item, StoredRDM) for item in stored)
    assert [item.name for item in stored] == [item.name for item in rdms] == [item.name for item in loaded]
    for lazy, item in zip(stored, loaded):
        assert (lazy.stimuli, lazy.dissimilarity, lazy.meta) == (item.stimuli, item.dissimilarity, item.meta)
        assert np.array_equal(lazy.upper, item.upper) and np.array_equal(lazy.square(), item.square())
    with pytest.raises(NeurolatentError, match="index.json: missing"):
        stored_rdms(tmp_path / "nowhere")
