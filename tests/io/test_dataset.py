"""The synthetic BOLD5000: layout, determinism, planted truth; and the real-copy selector."""

import hashlib
import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from neurolatent.config import validate_params
from neurolatent.errors import NeurolatentError
from neurolatent.io import bids
from neurolatent.io.dataset import write_dataset
from neurolatent.io.events import build_tables
from neurolatent.science import synthetic

from conftest import REAL_EVENTS, small_data_params, write_small


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
    # CSI1's events files are byte for byte the real ones (13 columns, CRLF, rep_ typing)
    for run in (1, 7):
        rel = bids.events_path("CSI1", 1, run)
        assert (raw / rel).read_bytes() == (REAL_EVENTS / rel).read_bytes()
    image = nib.load(raw / bids.bold_path("CSI1", 1, 1))
    assert image.shape[3] == bids.N_VOLUMES and image.header.get_zooms() == (4.0, 4.0, 4.0, 2.0)
    assert image.get_data_dtype() == np.int16
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


def test_images_differ_by_category():
    coco = synthetic.draw_image("COCO_train2014_000000000001.jpg", "coco", 96)
    imagenet = synthetic.draw_image("n00000001_1.JPEG", "imagenet", 96)
    scene = synthetic.draw_image("field1.jpg", "scenes", 96)
    assert coco.shape == imagenet.shape == scene.shape == (96, 96, 3)
    assert not np.array_equal(coco, synthetic.draw_image("COCO_train2014_000000000002.jpg", "coco", 96))
    np.testing.assert_array_equal(coco, synthetic.draw_image("COCO_train2014_000000000001.jpg", "coco", 96))
    # scenes have a horizon: the top half differs from the bottom half far more than in objects
    def top_bottom(img):
        return abs(img[:40].astype(float).mean() - img[56:].astype(float).mean())
    names = [f"scene{i}.jpg" for i in range(20)]
    assert np.mean([top_bottom(synthetic.draw_image(n, "scenes", 96)) for n in names]) > \
        np.mean([top_bottom(synthetic.draw_image(f"n0_{i}.JPEG", "imagenet", 96)) for i in range(20)])


def test_regeneration_is_byte_identical(small_dataset, tmp_path):
    raw, truth = write_small(tmp_path, snr=4.0)
    assert tree_digest(raw) == tree_digest(small_dataset[0])
    assert tree_digest(truth) == tree_digest(small_dataset[1])


def _trial_estimates(raw: Path, truth: Path, subject: str):
    """Least-squares single-trial amplitudes of the planted region's voxels, run by run (LSA).

    Returns (estimated, planted): two arrays (n_trials, n_roi_voxels).
    """
    mask = nib.load(truth / "roi_mask.nii.gz").get_fdata() > 0
    patterns = np.load(truth / f"patterns_sub-{subject}.npy")
    row_of = {n: i for i, n in enumerate(pd.read_csv(truth / "stimuli.tsv", sep="\t")["image_name"])}
    estimated, planted = [], []
    for run in (1, 7):
        events = pd.read_csv(raw / bids.events_path(subject, 1, run), sep="\t")
        design = synthetic.trial_regressors(events["onset"].to_numpy(), events["duration"].to_numpy(), 194, 2.0)
        drift = synthetic.drift_basis(194, 2.0)
        X = np.column_stack([design, drift, np.ones(194)])
        Y = nib.load(raw / bids.bold_path(subject, 1, run)).get_fdata()[mask].T
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
    _, truth = small_dataset
    meta = json.loads((truth / "truth.json").read_text())
    n_images = len(pd.read_csv(truth / "stimuli.tsv", sep="\t"))
    features = np.load(truth / "features.npy")
    assert features.shape == (n_images, len(synthetic.FEATURE_NAMES)) == (n_images, len(meta["feature_names"]))
    assert np.load(truth / "feature_rdm.npy").shape == (n_images * (n_images - 1) // 2,)
    roi = nib.load(truth / "roi_mask.nii.gz").get_fdata() > 0
    assert np.load(truth / "patterns_sub-CSI1.npy").shape == (n_images, roi.sum()) == (n_images, meta["roi_voxels"])
    # the region is occipital: every voxel lies behind y = -60 mm
    affine = nib.load(truth / "roi_mask.nii.gz").affine
    ys = (affine @ np.vstack([np.argwhere(roi).T, np.ones(roi.sum())]))[1]
    assert ys.max() < -60


def test_bids_source_links_the_subset(small_dataset, tmp_path):
    real, _ = small_dataset
    (tmp_path / "copy").mkdir()
    masks = tmp_path / "copy" / "derivatives" / "spm" / "sub-CSI1"
    masks.mkdir(parents=True)
    nib.save(nib.Nifti1Image(np.ones((2, 2, 2), np.uint8), np.eye(4)), masks / "sub-CSI1_mask-LHEarlyVis.nii.gz")
    data = validate_params({"data": {
        "source": "bids", "subjects": ["CSI1"], "sessions": [1], "runs": [7],
        "bids_root": str(real), "stimuli_root": str(real / "BOLD5000_Stimuli"),
    }}).data
    # derivatives sit in the real copy's root: link the mask folder in beside the runs
    os.symlink(tmp_path / "copy" / "derivatives", real / "derivatives")
    try:
        write_dataset(data, tmp_path / "raw", tmp_path / "truth")
    finally:
        (real / "derivatives").unlink()
    out = tmp_path / "raw"
    bold = out / bids.bold_path("CSI1", 1, 7)
    assert bold.stat().st_ino == (real / bids.bold_path("CSI1", 1, 7)).stat().st_ino  # hard link, no copy
    assert not (out / bids.bold_path("CSI1", 1, 1)).exists()
    assert (out / "derivatives/spm/sub-CSI1/sub-CSI1_mask-LHEarlyVis.nii.gz").is_file()
    trials, stimuli = build_tables(out)
    assert len(trials) == 37 and set(trials["run"]) == {7}
    assert json.loads((tmp_path / "truth" / "truth.json").read_text())["planted"] is False


def test_bids_source_errors(small_dataset, tmp_path):
    real, _ = small_dataset
    base = {"source": "bids", "subjects": ["CSI1"], "sessions": [1], "runs": [1]}
    with pytest.raises(NeurolatentError, match="data.bids_root is not a folder"):
        write_dataset(validate_params({"data": {**base, "bids_root": str(tmp_path / "nope"),
                                              "stimuli_root": str(tmp_path)}}).data, tmp_path / "o", tmp_path / "t")
    with pytest.raises(NeurolatentError, match="must be the BOLD5000_Stimuli folder"):
        write_dataset(validate_params({"data": {**base, "bids_root": str(real),
                                              "stimuli_root": str(tmp_path)}}).data, tmp_path / "o", tmp_path / "t")
    assert not (tmp_path / "o").exists() and not (tmp_path / "t").exists()


def test_failed_generation_leaves_the_old_output(small_dataset, tmp_path):
    out, truth = tmp_path / "raw", tmp_path / "truth"
    out.mkdir()
    (out / "keep.txt").write_text("the user's")
    data = small_data_params(roi_radius_mm=0.5)  # no voxel within 0.5 mm of the centres on a 4 mm grid
    with pytest.raises(NeurolatentError, match="roi_radius_mm"):
        write_dataset(data, out, truth)
    assert (out / "keep.txt").read_text() == "the user's" and not truth.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["raw"]
