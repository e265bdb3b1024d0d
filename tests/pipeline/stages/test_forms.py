"""BOLD5000's three forms through the trials and fmri stages, against the planted truth.

Measure: the Spearman correlation between the RDM of a subject's trial samples (74 trials) and the
RDM of the planted patterns of the same trials: it needs no voxel to voxel correspondence, so it
applies to every form, the trap included. At SNR 4 (a trial's peak response 4 noise sds):
- T1w betas and GLMsingle ROI betas keep exactly the ~240 signal voxels: measured 0.996, bound 0.9;
- T1w volumes take one interpolated time point per trial, noisier than a GLM: 0.87-0.90, bound 0.7;
- GLMsingle whole-brain betas dilute those voxels among ~32,000 noise voxels: 0.20-0.24, bound 0.1.
At SNR 0 nothing is planted: |r| < 0.1 (measured under 0.04).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.image import resample_to_img

from neurolatent.pipeline.cli import main
from neurolatent.io import bids
from neurolatent.io.masks import region_mask, roi_masks
from neurolatent.io.nifti import load_run
from neurolatent.science.rsa.compare import compare
from neurolatent.science.rsa.rdm import rdm_upper
from neurolatent.science.sampling import masked_samples
from neurolatent.science.stats import zscore_groups

from conftest import run_stage

FORMS = {
    "T1w betas in ROIs": ({"method": "betas", "space": "T1w", "mask": "region"}, 0.9),
    "T1w volumes in ROIs": ({"method": "volume", "space": "T1w", "mask": "region"}, 0.7),
    "GLMsingle ROI betas": ({"method": "glmsingle", "mask": "region"}, 0.9),
    "GLMsingle whole-brain betas": ({"method": "glmsingle", "mask": "brain"}, 0.1),
}


def samples(raw: Path, where: Path, **preprocess) -> tuple[np.ndarray, pd.DataFrame]:
    params = {"preprocess": {"jobs": 1, **preprocess}}
    run_stage("trials", params, raw=raw, trials=where / "trials.parquet", stimuli=where / "stimuli.parquet")
    run_stage("fmri", params, raw=raw, trials=where / "trials.parquet", out=where / "fmri")
    return np.load(where / "fmri" / "samples.npy"), pd.read_parquet(where / "fmri" / "index.parquet")


def planted(truth: Path, subject: str, images) -> np.ndarray:
    names = pd.read_csv(truth / "stimuli.tsv", sep="\t")["image_name"]
    row = pd.Series(np.arange(len(names)), index=names)
    return np.load(truth / f"patterns_sub-{subject}.npy")[row[list(images)].to_numpy()]


def rdm_recovery(values: np.ndarray, images, truth: Path, subject: str) -> float:
    return compare(rdm_upper(planted(truth, subject, images)), rdm_upper(values), "spearman")


def subject_values(x: np.ndarray, index: pd.DataFrame, subject: str, width: int | None = None):
    own = (index["subject"] == subject).to_numpy()
    return x[own][:, :width] if width else x[own], index.loc[own, "image_name"]


@pytest.mark.parametrize("form", list(FORMS))
def test_planted_patterns_are_recovered_from_each_form_and_not_at_snr_zero(form, small_dataset, null_dataset, tmp_path):
    preprocess, bound = FORMS[form]
    for dataset, label in ((small_dataset, "snr4"), (null_dataset, "snr0")):
        x, index = samples(dataset[0], tmp_path / label, **preprocess)
        widths = pd.read_json(tmp_path / label / "fmri" / "samples.json", typ="series")["voxels"]
        for subject in ("CSI1", "CSI4"):
            r = rdm_recovery(*subject_values(x, index, subject, widths[subject]), dataset[1], subject)
            if label == "snr4":
                assert r > bound, (form, subject, r)
            else:
                assert abs(r) < 0.1, (form, subject, r)


def test_roi_samples_are_the_planted_voxels(small_dataset, tmp_path):
    """Voxel by voxel: T1w betas in the ROI union are the region's voxels in C order, the planted
    patterns' columns; GLMsingle's ROI files list each ROI's voxels, which map onto the same columns."""
    raw, truth = small_dataset
    for preprocess, label in (({"method": "betas", "space": "T1w"}, "t1w"), ({"method": "glmsingle"}, "glm")):
        x, index = samples(raw, tmp_path / label, mask="region", **preprocess)
        for subject in ("CSI1", "CSI4"):
            region = nib.load(truth / f"region_sub-{subject}.nii.gz").get_fdata() > 0
            column = np.full(region.shape, -1)
            column[region] = np.arange(region.sum())
            if label == "t1w":
                order = np.arange(region.sum())
            else:
                order = np.concatenate([column[nib.load(raw / bids.roi_mask_path(subject, h, roi)).get_fdata() > 0]
                                        for roi in bids.ROIS for h in bids.HEMISPHERES])
            values, images = subject_values(x, index, subject, len(order))
            r = np.corrcoef(values.ravel(), planted(truth, subject, images)[:, order].ravel())[0, 1]
            assert r > 0.7, (label, subject, r)
            # each column's recorded ROI is the ROI its voxel lies in (the truth's region codes)
            labels = pd.read_parquet(tmp_path / label / "fmri" / "voxels.parquet")
            own = labels[labels["subject"] == subject].sort_values("column")
            codes = nib.load(truth / f"region_sub-{subject}.nii.gz").get_fdata().astype(int)[region][order]
            keys = [f"{h}{roi}" for h in bids.HEMISPHERES for roi in bids.ROIS]
            assert (own["hemisphere"] + own["roi"]).tolist() == [keys[code - 1] for code in codes]


def test_samples_without_roi_masks_say_they_hold_the_union_only(small_dataset, tmp_path):
    raw, _ = small_dataset
    samples(raw, tmp_path, method="glmsingle", mask="brain")
    meta = pd.read_json(tmp_path / "fmri" / "samples.json", typ="series")
    assert meta["rois"] is None and "union only" in meta["rois_note"]
    assert not (tmp_path / "fmri" / "voxels.parquet").exists()


def test_raw_runs_with_roi_masks_carried_over_by_affine_recover_less(small_dataset, tmp_path):
    """The trap the validation refuses: SPM masks (T1w space) resampled onto raw runs by their
    affines, as the old path did. Each session's head sits elsewhere in the scanner, so the mask
    misses the ROIs by the head's displacement: clearly less than the T1w runs in the same masks."""
    raw, truth = small_dataset
    x, index = samples(raw, tmp_path / "t1w", method="betas", space="T1w", mask="region")
    t1w = [rdm_recovery(*subject_values(x, index, s, int((np.abs(subject_values(x, index, s)[0]).sum(0) > 0).sum())),
                        truth, s) for s in ("CSI1", "CSI4")]
    trials = pd.read_parquet(tmp_path / "t1w" / "trials.parquet")
    trap = []
    for subject in ("CSI1", "CSI4"):
        own = trials[trials["subject"] == subject]
        first_raw = raw / bids.bold_path(subject, 1, int(own["run"].iloc[0]))
        reference = nib.load(raw / own["bold_path"].iloc[0])
        masks = region_mask(roi_masks(raw, subject, list(bids.ROIS), reference), reference.affine, subject)
        carried = np.asanyarray(resample_to_img(masks, nib.load(first_raw), interpolation="nearest",
                                                force_resample=True, copy_header=True).dataobj) > 0
        parts = []
        for (session, run), rows in own.groupby(["session", "run"], sort=False):
            series, tr = load_run(raw / bids.bold_path(subject, session, run), carried)
            parts.append(masked_samples(series, tr, rows["onset"].to_numpy(), rows["duration"].to_numpy(), "betas"))
        values = zscore_groups(np.concatenate(parts), own["session"].to_numpy())
        trap.append(rdm_recovery(values, own["image_name"], truth, subject))
    assert np.mean(trap) < np.mean(t1w) - 0.3, (trap, t1w)


def test_a_shifted_presentation_list_is_a_one_line_error(dataset_copy, tmp_path, capsys):
    listed = dataset_copy / bids.GLMSINGLE_DIR / "CSI1" / "CSI1_imgnames.txt"
    names = listed.read_text().split()
    listed.write_text("\n".join(names[1:] + names[:1]) + "\n")  # off by one trial
    params = tmp_path / "params.yaml"
    params.write_text("preprocess:\n  method: glmsingle\n  jobs: 1\n")
    where = tmp_path / "interim"
    assert main(["trials", "--params", str(params), "--raw", str(dataset_copy), "--trials", str(where / "t.parquet"),
                 "--stimuli", str(where / "s.parquet")]) == 0
    capsys.readouterr()
    code = main(["fmri", "--params", str(params), "--raw", str(dataset_copy), "--trials", str(where / "t.parquet"),
                 "--out", str(tmp_path / "fmri")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1, err
    assert "CSI1_imgnames.txt: presentation 1 (ses-01 run-01 trial 1)" in err and "in the events files" in err
    assert not (tmp_path / "fmri").exists()


def test_a_copy_with_only_events_stimuli_and_the_release_is_enough(small_dataset, tmp_path):
    """method: glmsingle reads no run: trials and fmri need no BOLD file."""
    raw, truth = small_dataset
    copy = tmp_path / "bold5000"
    for path in raw.rglob("*"):
        rel = path.relative_to(raw)
        keep = path.name.endswith("_events.tsv") or rel.parts[0] == "BOLD5000_Stimuli" or rel.parts[:2] == ("derivatives", "glmsingle")
        if path.is_file() and keep:
            (copy / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, copy / rel)
    assert not list(copy.rglob("*.nii.gz")) or all("glmsingle" in str(p) for p in copy.rglob("*.nii.gz"))
    x, index = samples(copy, tmp_path / "out", method="glmsingle", mask="region")
    values, images = subject_values(x, index, "CSI1")
    assert len(index) == 148 and rdm_recovery(values[:, : (np.abs(values).sum(0) > 0).sum()], images, truth, "CSI1") > 0.9


def test_a_raw_only_copy_runs_with_data_source_and_its_folders_alone(small_dataset, tmp_path):
    """OpenNeuro's ds001499 without derivatives: the raw runs and events, and the stimulus release.
    No data.forms, preprocess.space or mask is set: they follow what the copy holds."""
    raw, _ = small_dataset
    copy = tmp_path / "ds001499"
    for path in raw.rglob("*"):
        rel = path.relative_to(raw)
        if path.is_file() and rel.parts[0].startswith("sub-") and (path.name.endswith(("_events.tsv", "_bold.nii.gz",
                                                                                         "_bold.json"))):
            (copy / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, copy / rel)
    stimuli = raw / "BOLD5000_Stimuli"
    data = {"source": "bids", "bids_root": str(copy), "stimuli_root": str(stimuli), "subjects": ["CSI1"]}
    linked = tmp_path / "bold5000"
    run_stage("dataset", {"data": data}, raw=linked, truth=tmp_path / "truth")
    assert not (linked / "derivatives").exists()
    run_stage("trials", {"data": data}, raw=linked, trials=tmp_path / "trials.parquet", stimuli=tmp_path / "stimuli.parquet")
    run_stage("fmri", {"data": data}, raw=linked, trials=tmp_path / "trials.parquet", out=tmp_path / "fmri")
    meta = json.loads((tmp_path / "fmri" / "samples.json").read_text())
    # raw runs: the whole brain (the SPM ROI masks are drawn in T1w space), so no ROI labels
    assert meta["method"] == "betas" and meta["n_samples"] > 0 and meta["rois"] is None
