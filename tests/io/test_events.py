"""BOLD5000's events files: a trial table read and checked (columns, numbers, names, duplicates),
and every run's file under a root as one table with presentation numbers and image paths."""

from __future__ import annotations

import pandas as pd
import pytest

from neurolatent.errors import NeurolatentError
from neurolatent.io.bids import EVENTS_COLUMNS, events_path
from neurolatent.io.events import read_events, read_events_dir


def _rows(*trials: tuple[float, str, str]) -> pd.DataFrame:
    return pd.DataFrame([{"onset": onset, "duration": 1.0, "Subj": 1, "Sess": 1, "Run": 1, "Trial": k + 1,
                          "ImgName": name, "ImgType": img_type, "StimOn(s)": 0, "StimOff(s)": 1, "Response": 0,
                          "RT": 0.5, "stim_file": name} for k, (onset, name, img_type) in enumerate(trials)],
                        columns=list(EVENTS_COLUMNS))


def _write(table: pd.DataFrame, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, sep="\t", index=False)
    return path


def test_a_file_reads_as_one_row_per_trial(tmp_path):
    path = _write(_rows((0.0, "a.jpg", "rep_coco"), (10.0, "b.JPEG", "imagenet")), tmp_path / "events.tsv")
    table = read_events(path)
    assert table["category"].tolist() == ["coco", "imagenet"] and table["onset"].tolist() == [0.0, 10.0]
    assert list(table.columns) == ["trial", "onset", "duration", "image_name", "img_type", "category", "response", "rt"]


@pytest.mark.parametrize("table, message", [
    (_rows((0.0, "a.jpg", "coco")).drop(columns="RT"), "missing column(s) RT"),
    (_rows((0.0, "a.jpg", "coco")).assign(onset="soon"), "column onset row 1 is not a number ('soon')"),
    (_rows((0.0, "../a.jpg", "coco")), "row 1 image name '../a.jpg' escapes the stimuli folder"),
    (_rows((0.0, "a.jpg", "faces")), "row 1: ImgType 'faces'"),
    (_rows((0.0, "a.jpg", "coco"), (0.0, "b.jpg", "coco")), "row 2 repeats onset 0 of row 1"),
])
def test_a_bad_file_is_named_with_its_row(tmp_path, table, message):
    path = _write(table, tmp_path / "events.tsv")
    with pytest.raises(NeurolatentError) as info:
        read_events(path)
    assert str(info.value).startswith(f"{path}: {message}")


def test_a_root_reads_as_one_table_with_presentations(tmp_path):
    _write(_rows((0.0, "a.jpg", "coco"), (10.0, "b.jpg", "scenes")), tmp_path / events_path("CSI1", 1, 2))
    _write(_rows((0.0, "a.jpg", "rep_coco")), tmp_path / events_path("CSI1", 2, 1))
    table = read_events_dir(tmp_path)
    assert table[["session", "run", "image_name", "presentation"]].values.tolist() == [
        [1, 2, "a.jpg", 1], [1, 2, "b.jpg", 1], [2, 1, "a.jpg", 2]]
    assert table["image_path"].iloc[1] == "BOLD5000_Stimuli/Scene_Stimuli/Presented_Stimuli/Scene/b.jpg"
    with pytest.raises(NeurolatentError, match="no sub-"):
        read_events_dir(tmp_path / "empty")
