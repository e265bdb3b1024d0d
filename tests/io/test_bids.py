"""BOLD5000's layout: the paths of one run, ROI masks spelled as on disk, categories, and finding
runs under a root (localizer runs and other tasks left out)."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from neurolatent.io.bids import (bold_path, category_of, events_path, find_runs, find_space_runs, is_safe_image_name,
                                 preproc_path, roi_mask_path, run_path, stimulus_path)


def test_a_runs_paths_follow_ds001499():
    assert bold_path("CSI1", 3, 7) == PurePosixPath("sub-CSI1/ses-03/func/sub-CSI1_ses-03_task-5000scenes_run-07_bold.nii.gz")
    assert events_path("CSI4", 9, 10).name == "sub-CSI4_ses-09_task-5000scenes_run-10_events.tsv"
    assert run_path("raw", "CSI2", 1, 1) == bold_path("CSI2", 1, 1)
    assert run_path("T1w", "CSI2", 1, 1) == preproc_path("CSI2", 1, 1)
    assert str(preproc_path("CSI2", 1, 1)).startswith("derivatives/fmriprep/sub-CSI2/ses-01/func/")


def test_roi_masks_keep_the_releases_typos():
    assert roi_mask_path("CSI1", "LH", "LOC").name == "sub-CSI1_mask-LHLOC.nii.gz"
    assert roi_mask_path("CSI2", "RH", "RSC").name == "sub-CSI2_mask-RHRRSC.nii.gz"
    assert roi_mask_path("CSI3", "LH", "LOC").name == "sub-CSI3_mask-LHLO.nii.gz"


def test_categories_and_stimulus_paths():
    assert category_of("rep_coco") == "coco" and category_of("scenes") == "scenes"
    assert stimulus_path("imagenet", "n01.JPEG") == PurePosixPath(
        "BOLD5000_Stimuli/Scene_Stimuli/Presented_Stimuli/ImageNet/n01.JPEG")
    with pytest.raises(ValueError, match="ImgType 'rep_faces'"):
        category_of("rep_faces")


@pytest.mark.parametrize("name, safe", [("a.jpg", True), ("", False), ("..", False), ("x/a.jpg", False),
                                        ("x\\a.jpg", False)])
def test_only_bare_file_names_are_safe(name, safe):
    assert is_safe_image_name(name) is safe


def test_find_runs_matches_only_the_task_runs(tmp_path):
    for relative in (bold_path("CSI1", 1, 2), events_path("CSI1", 1, 2), preproc_path("CSI3", 2, 1),
                     PurePosixPath("sub-CSI1/ses-01/func/sub-CSI1_ses-01_task-localizer_run-01_bold.nii.gz")):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).touch()
    assert find_runs(tmp_path, "bold.nii.gz") == {("CSI1", 1, 2): tmp_path / bold_path("CSI1", 1, 2)}
    assert list(find_runs(tmp_path, "events.tsv")) == [("CSI1", 1, 2)]
    assert find_space_runs(tmp_path, "T1w") == {("CSI3", 2, 1): tmp_path / preproc_path("CSI3", 2, 1)}
    assert find_space_runs(tmp_path, "raw") == find_runs(tmp_path, "bold.nii.gz")
