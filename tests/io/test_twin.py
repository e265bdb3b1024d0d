"""The synthetic BOLD5000: layout, determinism, planted truth; and the real-copy selector."""

import hashlib
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from neurolatent.errors import NeurolatentError
from neurolatent.io import bids
from neurolatent.io.events import build_tables
from neurolatent.pipeline.params import validate_params
from neurolatent.science import synthetic

from conftest import REAL_EVENTS, write_dataset, write_small


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_matches_bold5000(small_dataset):
    raw, truth = small_dataset
    for subject in ("CSI1", "CSI4"):
        for run in (1, 7):
            stem = raw / bids.func_dir(subject, 1) / bids.run_stem(subject, 1, run)
            for suffix in ("_bold.nii.gz", "_bold.json", "_events.tsv"):
                assert Path(f"{stem}{suffix}").is_file()
            assert json.loads(Path(f"{stem}_bold.json").read_text())["RepetitionTime"] == 2.0
            assert (raw / bids.preproc_path(subject, 1, run)).is_file()
            assert (raw / bids.preproc_mask_path(subject, 1, run)).is_file()
    # CSI1's events files are byte for byte the real ones (13 columns, CRLF, rep_ typing)
    for run in (1, 7):
        rel = bids.events_path("CSI1", 1, run)
        assert (raw / rel).read_bytes() == (REAL_EVENTS / rel).read_bytes()
    # raw runs: BOLD5000's native grid (106 x 106 x 69 at 2 mm, here 4 mm), oblique
    image = nib.load(raw / bids.bold_path("CSI1", 1, 1))
    assert image.shape == (53, 53, 34, bids.N_VOLUMES) and image.header.get_zooms() == pytest.approx((4, 4, 4, 2))
    assert image.get_data_dtype() == np.int16
    assert abs(image.affine[1, 2]) > 0.1  # tilted about x: not a diagonal affine
    # fMRIPrep's runs: the subject's T1w grid (71 x 89 x 72 at 2 mm), a different grid from the raw runs
    preproc = nib.load(raw / bids.preproc_path("CSI1", 1, 1))
    assert preproc.shape == (36, 44, 36, bids.N_VOLUMES) and preproc.header.get_zooms()[3] == 2.0
    # the SPM ROI masks, on the T1w grid, named as on OpenNeuro for each subject (CSI2's and CSI3's typos)
    for subject in ("CSI1", "CSI4"):
        for hemisphere in bids.HEMISPHERES:
            for roi in bids.ROIS:
                mask = nib.load(raw / bids.roi_mask_path(subject, hemisphere, roi))
                assert mask.shape == preproc.shape[:3] or subject == "CSI4"
                assert np.asanyarray(mask.dataobj).any()
    assert bids.roi_mask_path("CSI2", "RH", "RSC").name == "sub-CSI2_mask-RHRRSC.nii.gz"
    assert bids.roi_mask_path("CSI3", "LH", "LOC").name == "sub-CSI3_mask-LHLO.nii.gz"
    # GLMsingle release 2.0's files
    release = raw / bids.GLMSINGLE_DIR
    assert np.load(release / bids.GLMSINGLE_ROI_DIR / bids.glmsingle_roi_name("CSI1", "LH", "EarlyVis")).shape[0] == 74
    session = nib.load(release / "CSI1" / bids.glmsingle_session_name("CSI1", 1))
    assert session.shape == preproc.shape[:3] + (74,) and np.allclose(session.affine, np.eye(4))
    assert np.allclose(nib.load(release / "CSI1" / "CSI1_brainmask.nii.gz").affine, preproc.affine)
    listed = (release / "CSI1" / "CSI1_imgnames.txt").read_text().split()
    assert len(listed) == 74 and any(name.startswith("rep_") for name in listed)  # the second showing of 488558
    assert len((raw / bids.REPEATED_LIST).read_text().split()) == 113
    extensions = {p.suffix for p in (raw / bids.STIMULI_DIR).rglob("*.*")}
    assert extensions <= {".jpg", ".JPEG", ".jpeg"} and {".jpg", ".JPEG"} <= extensions
    for folder in ("COCO", "ImageNet", "Scene"):
        assert any((raw / bids.STIMULI_DIR / folder).iterdir())
    # each image file written once, however often it is shown
    trials, stimuli = build_tables(raw)
    n_files = sum(1 for p in (raw / bids.STIMULI_DIR).rglob("*") if p.is_file())
    assert n_files == len(stimuli) == trials["image_name"].nunique() < len(trials)
    truth_stimuli = pd.read_csv(truth / "stimuli.tsv", sep="\t")
    assert truth_stimuli["image_name"].tolist() == stimuli["image_name"].tolist()
    assert not (raw / "truth").exists() and not any(raw.rglob("patterns*"))


def test_the_head_moves_between_sessions_and_within_a_run():
    first, second = synthetic.head_motion(0, "CSI1", 1, 1, 194), synthetic.head_motion(0, "CSI1", 2, 1, 194)
    shift = np.linalg.norm(first[0, :3, 3] - second[0, :3, 3])
    assert 1.0 < shift < 40.0  # sessions put the head in different places
    drift = np.linalg.norm(first[-1, :3, 3] - first[0, :3, 3])
    assert 0.0 < drift < 2.0  # a slow drift within a run


def test_trilinear_sampling_equals_scipy():
    from scipy import ndimage

    rng = np.random.default_rng(0)
    volume = rng.normal(size=(12, 10, 8)).astype(np.float32)
    mapping = synthetic.rigid(np.array([4.0, -3.0, 2.0]), np.array([0.3, -0.5, 0.2]), 0.9)
    ours = synthetic.sample_trilinear(volume, mapping, (11, 9, 7))
    theirs = ndimage.affine_transform(volume, mapping, output_shape=(11, 9, 7), order=1, mode="constant", cval=0.0)
    inside = ndimage.affine_transform(np.ones_like(volume), mapping, output_shape=(11, 9, 7), order=1) > 0.999
    np.testing.assert_allclose(ours[inside], theirs[inside], atol=1e-5)


def test_images_differ_by_category_and_each_family_is_what_was_drawn():
    coco, drawn = synthetic.draw_stimulus("COCO_train2014_000000000001.jpg", "coco", 96)
    imagenet = synthetic.draw_image("n00000001_1.JPEG", "imagenet", 96)
    scene = synthetic.draw_image("field1.jpg", "scenes", 96)
    assert coco.shape == imagenet.shape == scene.shape == (96, 96, 3)
    assert not np.array_equal(coco, synthetic.draw_image("COCO_train2014_000000000002.jpg", "coco", 96))
    np.testing.assert_array_equal(coco, synthetic.draw_image("COCO_train2014_000000000001.jpg", "coco", 96))
    objects, scene_family = synthetic.object_features(drawn), synthetic.scene_features(drawn)
    assert objects.shape == (len(synthetic.OBJECT_NAMES),) and scene_family.shape == (len(synthetic.SCENE_NAMES),)
    assert objects[0] == len(drawn.objects) and objects[-3:].tolist() == [1.0, 0.0, 0.0]  # COCO, one-hot
    assert scene_family[0] == drawn.horizon and scene_family[2] == len(drawn.structures)
    # an ImageNet-like image's first object is its large centred one; scenes have more structures
    drawings = {c: [synthetic.draw_stimulus(f"{c}{i}.jpg", c, 96)[1] for i in range(30)]
                for c in ("coco", "imagenet", "scenes")}
    assert all(d.objects[0, 2] >= 0.25 for d in drawings["imagenet"])
    assert np.mean([len(d.structures) for d in drawings["scenes"]]) > np.mean([len(d.structures) for d in
                                                                            drawings["imagenet"]])
    assert np.mean([len(d.objects) for d in drawings["coco"]]) > np.mean([len(d.objects) for d in drawings["scenes"]])


def test_the_families_are_distinct_enough_to_tell_apart():
    """Each family's RDM correlates with the others' far below 1 (they share what images share)."""
    from scipy.stats import spearmanr

    from neurolatent.science.rsa.rdm import rdm_upper
    from neurolatent.science.stats import zscore

    rows = {name: [] for name in synthetic.FAMILIES}
    for i in range(120):
        pixels, drawn = synthetic.draw_stimulus(f"img{i}.jpg", ("coco", "imagenet", "scenes")[i % 3], 64)
        rows["lowlevel"].append(synthetic.image_features(pixels))
        rows["object"].append(synthetic.object_features(drawn))
        rows["scene"].append(synthetic.scene_features(drawn))
    rdms = {name: rdm_upper(zscore(np.array(values))) for name, values in rows.items()}
    for first, second in (("lowlevel", "object"), ("lowlevel", "scene"), ("object", "scene")):
        assert spearmanr(rdms[first], rdms[second])[0] < 0.6, (first, second)


def test_regeneration_is_byte_identical(small_dataset, tmp_path):
    raw, truth = write_small(tmp_path, snr=4.0)
    assert tree_digest(raw) == tree_digest(small_dataset[0])
    assert tree_digest(truth) == tree_digest(small_dataset[1])


def _trial_estimates(raw: Path, truth: Path, subject: str):
    """Least-squares single-trial amplitudes of the planted region's voxels in fMRIPrep's T1w runs,
    run by run (LSA). Returns (estimated, planted): two arrays (n_trials, n_region_voxels)."""
    mask = nib.load(truth / f"region_sub-{subject}.nii.gz").get_fdata() > 0
    patterns = np.load(truth / f"patterns_sub-{subject}.npy")
    row_of = {n: i for i, n in enumerate(pd.read_csv(truth / "stimuli.tsv", sep="\t")["image_name"])}
    estimated, planted = [], []
    for run in (1, 7):
        events = pd.read_csv(raw / bids.events_path(subject, 1, run), sep="\t")
        design = synthetic.trial_regressors(events["onset"].to_numpy(), events["duration"].to_numpy(), 194, 2.0)
        drift = synthetic.drift_basis(194, 2.0)
        X = np.column_stack([design, drift, np.ones(194)])
        Y = nib.load(raw / bids.preproc_path(subject, 1, run)).get_fdata()[mask].T
        beta = np.linalg.lstsq(X, Y, rcond=None)[0][: design.shape[1]]
        estimated.append(beta)
        planted.append(patterns[[row_of[n] for n in events["ImgName"]]])
    return np.concatenate(estimated), np.concatenate(planted)


def test_planted_signal_is_there_at_high_snr_and_absent_at_zero(small_dataset, null_dataset):
    for subject in ("CSI1", "CSI4"):
        est, true = _trial_estimates(*small_dataset, subject)
        r = np.corrcoef(est.ravel(), true.ravel())[0, 1]
        # SNR 4 per trial, LSA estimates of 37 overlapping trials: r well above 0.5 is expected
        assert r > 0.6, r
        est0, true0 = _trial_estimates(*null_dataset, subject)
        r0 = np.corrcoef(est0.ravel(), true0.ravel())[0, 1]
        # ~74 trials x ~220 voxels correlated values; |r| under 0.05 is a loose null bound
        assert abs(r0) < 0.05, r0


def test_truth_files(small_dataset):
    raw, truth = small_dataset
    meta = json.loads((truth / "truth.json").read_text())
    n_images = len(pd.read_csv(truth / "stimuli.tsv", sep="\t"))
    for family, names in synthetic.FAMILIES.items():
        assert np.load(truth / f"features_{family}.npy").shape == (n_images, len(names)) == (n_images,
                                                                                             len(meta["families"][family]))
    assert meta["rois"]["EarlyVis"]["family"] == "lowlevel" and meta["rois"]["LOC"]["family"] == "object"
    assert meta["rois"]["PPA"]["family"] == "scene"
    assert np.load(truth / "feature_rdm.npy").shape == (n_images * (n_images - 1) // 2,)
    codes = {int(code): key for code, key in meta["region_codes"].items()}
    for subject in ("CSI1", "CSI4"):
        labels = nib.load(truth / f"region_sub-{subject}.nii.gz").get_fdata().astype(int)
        region = labels > 0
        assert np.load(truth / f"patterns_sub-{subject}.npy").shape == (n_images, region.sum())
        assert region.sum() == meta["region_voxels"][subject]
        # the planted region is exactly the union of the subject's ten SPM ROI masks, each voxel its ROI's code
        for hemisphere in bids.HEMISPHERES:
            for roi in bids.ROIS:
                mask = nib.load(raw / bids.roi_mask_path(subject, hemisphere, roi)).get_fdata() > 0
                assert (labels[mask] == next(c for c, k in codes.items() if k == f"{hemisphere}{roi}")).all()
                region &= ~mask
        assert not region.any()


def test_same_images_gives_every_subject_the_first_ones_images_in_an_order_of_its_own():
    from neurolatent.io.twin import selected_schedule

    apart = selected_schedule(["CSI1", "CSI2", "CSI4"], [1], [1, 2, 3], seed=0)
    shared = selected_schedule(["CSI1", "CSI2", "CSI4"], [1], [1, 2, 3], seed=0, same_images=True)
    images = {s: set(rows["ImgName"]) for s, rows in apart.groupby("subject")}
    # BOLD5000's own schedules: three runs of two subjects share few of their ~111 images (the repeated ones)
    assert len(images["CSI1"] & images["CSI2"]) < 0.1 * len(images["CSI1"])
    first = shared[shared["subject"] == "CSI1"].reset_index(drop=True)
    assert first[["ImgName", "onset"]].equals(apart[apart["subject"] == "CSI1"][["ImgName", "onset"]].reset_index(drop=True))
    for subject in ("CSI2", "CSI4"):
        own = shared[shared["subject"] == subject]
        assert sorted(own["ImgName"]) == sorted(first["ImgName"]) and len(own) == len(first)
        assert (own["ImgName"].to_numpy() != first["ImgName"].to_numpy()).mean() > 0.8  # its own order
        assert (own["Subj"] == subject.removeprefix("CSI")).all()
    # each subject its own order: not one shuffle for all
    assert (shared[shared["subject"] == "CSI2"]["ImgName"].to_numpy()
            != shared[shared["subject"] == "CSI4"]["ImgName"].to_numpy()).mean() > 0.8


def test_shared_dims_plant_content_every_subject_shares_beyond_the_features():
    from neurolatent.io.twin import response_features

    rng = np.random.default_rng(0)
    families = {"lowlevel": rng.standard_normal((50, 18)), "scene": rng.standard_normal((50, 6))}
    names = [f"img{i}.jpg" for i in range(50)]
    settings = synthetic.TwinSettings(0, 1.0, 4, 64, 7.0, 1.0, 2.0, {}, shared_dims=0)
    assert response_features(families, names, settings) is families  # 0: the default planted truth, unchanged
    wider = response_features(families, names, settings.__class__(**{**vars(settings), "shared_dims": 5}))
    assert wider["lowlevel"].shape == (50, 23) and wider["scene"].shape == (50, 11)
    np.testing.assert_array_equal(wider["lowlevel"][:, 18:], wider["scene"][:, 6:])  # one content for all families
    # an image's content is its own: the same whichever other images are selected
    np.testing.assert_array_equal(synthetic.shared_content(names[:3], 5, 0), synthetic.shared_content(names, 5, 0)[:3])
    assert abs(np.corrcoef(wider["lowlevel"][:, 18:].T, families["lowlevel"].T)[:5, 5:]).max() < 0.5


def test_repeats_plant_bold5000s_repeated_images_in_the_selected_runs():
    from neurolatent.io.schedule import load_schedule
    from neurolatent.io.twin import repeated_images, selected_schedule

    listed = set(repeated_images())
    plain = selected_schedule(["CSI1", "CSI2", "CSI4"], [1], [1, 2, 3], seed=0)
    assert selected_schedule(["CSI1", "CSI2", "CSI4"], [1], [1, 2, 3], seed=0, repeats=0).equals(plain)
    # BOLD5000's own three runs: no image twice
    assert plain.groupby("subject")["ImgName"].apply(lambda names: names.duplicated().sum()).max() == 0
    for same_images in (False, True):
        unplanted = selected_schedule(["CSI1", "CSI2", "CSI4"], [1], [1, 2, 3], seed=0, same_images=same_images)
        planted = selected_schedule(["CSI1", "CSI2", "CSI4"], [1], [1, 2, 3], seed=0, same_images=same_images,
                                    repeats=12)
        chosen = {}
        for subject, rows in planted.groupby("subject"):
            counts = rows["ImgName"].value_counts()
            chosen[subject] = set(counts[counts > 1].index)
            assert len(chosen[subject]) == 12 and chosen[subject] <= listed
            whole = load_schedule(subject if not same_images else "CSI1")["ImgName"].value_counts()
            assert (counts[counts > 1] == whole[counts[counts > 1].index]).all()  # as often as the real schedule
            # one presentation typed plainly, the others rep_; every slot keeps its timing
            repeats = rows[rows["ImgName"].isin(chosen[subject])]
            assert (~repeats["ImgType"].str.startswith("rep_")).groupby(repeats["ImgName"]).sum().eq(1).all()
            before = unplanted[unplanted["subject"] == subject]
            assert rows[["session", "run", "onset", "duration"]].to_numpy().tolist() == \
                before[["session", "run", "onset", "duration"]].to_numpy().tolist()
        assert chosen["CSI1"] == chosen["CSI2"] == chosen["CSI4"]  # the subjects share them, as in BOLD5000
    with pytest.raises(NeurolatentError, match="data.synthetic.repeats: CSI1: .* need .* trials"):
        selected_schedule(["CSI1"], [1], [1], seed=0, repeats=40)


@pytest.fixture(scope="module")
def repeat_datasets(tmp_path_factory):
    """CSI1's session 1, runs 1 and 7, with 8 repeated images planted, at SNR 4 and SNR 0."""
    out = {}
    for snr in (4.0, 0.0):
        where = tmp_path_factory.mktemp(f"repeats{snr}")
        data = validate_params({"data": {"subjects": ["CSI1"], "sessions": [1], "runs": [1, 7], "forms": ["T1w"],
                                         "synthetic": {"voxel_size_mm": 4, "image_size": 64, "jobs": 1, "snr": snr,
                                                       "repeats": 8}}}).data
        write_dataset(data, where / "raw", where / "truth")
        out[snr] = where / "raw", where / "truth"
    return out


def test_the_noise_ceiling_of_the_planted_repeats_is_high_with_signal_and_near_zero_without(repeat_datasets):
    from neurolatent.science.voxelwise import noise_ceiling_r

    medians = {}
    for snr, (raw, truth) in repeat_datasets.items():
        names = np.concatenate([pd.read_csv(raw / bids.events_path("CSI1", 1, run), sep="\t")["ImgName"]
                                for run in (1, 7)])
        counts = pd.Series(names).value_counts()
        assert (counts > 1).sum() == 9  # the 8 planted and one that runs 1 and 7 already show twice
        estimated, _ = _trial_estimates(raw, truth, "CSI1")
        repeated = np.isin(names, counts[counts > 1].index)
        medians[snr] = float(np.median(noise_ceiling_r(estimated[repeated], names[repeated])))
    assert medians[4.0] > 0.8 and medians[0.0] < 0.2, medians
