"""The trials stage on the real events files, and its one-line errors on bad input."""

import collections
import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from neurolatent.pipeline.cli import main
from neurolatent.io import bids
from neurolatent.io.events import read_events_dir

from conftest import REAL_EVENTS


def test_every_real_events_file_parses():
    trials = read_events_dir(REAL_EVENTS)  # the localizer events beside them are ignored
    for subject in ("CSI1", "CSI2"):
        own = trials[trials["subject"] == subject]
        assert len(own) == 5254
        assert own["image_name"].nunique() == 4916
        repeats = collections.Counter(own["image_name"].value_counts())
        assert repeats == {1: 4803, 4: 112, 3: 1}
        # presentation counts the showings chronologically; rep_ typing marks all but one of them
        assert own["presentation"].max() == 4
        assert (own["presentation"] > 1).sum() == own["img_type"].str.startswith("rep_").sum() == 338
        assert set(own["category"]) == {"coco", "imagenet", "scenes"}
    per_category = trials.drop_duplicates("image_name")["category"].value_counts().to_dict()
    assert per_category == {"coco": 2000, "imagenet": 1916, "scenes": 1000}


def run_trials_cli(raw: Path, out: Path) -> tuple[int, str]:
    return main(["trials", "--raw", str(raw), "--trials", str(out / "trials.parquet"),
                 "--stimuli", str(out / "stimuli.parquet")]), ""


def test_trials_stage_writes_both_tables(small_dataset, tmp_path):
    raw, _ = small_dataset
    assert run_trials_cli(raw, tmp_path)[0] == 0
    trials = pd.read_parquet(tmp_path / "trials.parquet")
    stimuli = pd.read_parquet(tmp_path / "stimuli.parquet")
    assert len(trials) == 4 * 37 and list(stimuli["image_name"]) == sorted(stimuli["image_name"])
    assert stimuli["image_name"].is_unique and set(stimuli["image_name"]) == set(trials["image_name"])
    twice = trials[trials["image_name"] == "COCO_train2014_000000488558.jpg"]
    assert twice["presentation"].tolist() == [1, 2] and twice["run"].tolist() == [1, 7]
    assert all((raw / p).is_file() for p in trials["image_path"]) and all((raw / p).is_file() for p in trials["bold_path"])


EVENTS = bids.events_path("CSI1", 1, 1)
#: the run the project's configuration reads (preprocess.space: T1w: fMRIPrep's run)
BOLD = bids.run_path("T1w", "CSI1", 1, 1)


def _edit_events(raw: Path, edit) -> None:
    path = raw / EVENTS
    table = pd.read_csv(path, sep="\t", dtype=str)
    edit(table)
    path.write_bytes(table.to_csv(sep="\t", index=False, lineterminator="\r\n").encode())


def _missing_column(raw):
    _edit_events(raw, lambda t: t.pop("ImgType"))


def _extra_column(raw):
    _edit_events(raw, lambda t: t.insert(3, "Comment", "x"))


def _events_without_bold(raw):
    (raw / BOLD).unlink()


def _bold_without_events(raw):
    (raw / EVENTS).unlink()


def _image_absent(raw):
    name = pd.read_csv(raw / EVENTS, sep="\t")["ImgName"].iloc[0]
    next((raw / bids.STIMULI_DIR).rglob(name)).unlink()


def _image_escapes(raw):
    _edit_events(raw, lambda t: t.__setitem__("ImgName", ["../../../etc/passwd"] + list(t["ImgName"][1:])))


def _onset_beyond_run(raw):
    _edit_events(raw, lambda t: t.__setitem__("onset", list(t["onset"][:-1]) + ["390.5"]))


def _bold_not_4d(raw):
    image = nib.load(raw / BOLD)
    nib.save(nib.Nifti1Image(np.zeros(image.shape[:3], np.int16), image.affine), raw / BOLD)


def _bold_truncated(raw):
    data = (raw / BOLD).read_bytes()
    (raw / BOLD).write_bytes(data[: len(data) // 2])


def _bold_truncated_header(raw):
    (raw / BOLD).write_bytes(gzip.compress(b"not a nifti at all"))


def _grid_differs(raw):
    image = nib.load(raw / BOLD)
    shifted = image.affine.copy()
    shifted[0, 3] += 4.0
    nib.save(nib.Nifti1Image(np.asarray(image.dataobj), shifted, image.header), raw / BOLD)


def _response_not_number(raw):
    _edit_events(raw, lambda t: t.__setitem__("Response", ["yes"] + list(t["Response"][1:])))


@pytest.mark.parametrize("damage, file_part, problem", [
    (_missing_column, EVENTS.name, "missing column(s) ImgType"),
    (_extra_column, EVENTS.name, "unexpected column(s) Comment"),
    (_events_without_bold, EVENTS.name, "events file has no matching T1w run"),
    (_bold_without_events, BOLD.name, "T1w run has no matching events file"),
    (_image_absent, ".JPEG", "missing from the stimuli folder"),
    (_image_escapes, EVENTS.name, "escapes the stimuli folder"),
    (_onset_beyond_run, EVENTS.name, "beyond the run's 388 s"),
    (_bold_not_4d, BOLD.name, "is 3D"),
    (_bold_truncated, BOLD.name, "truncated or corrupt gzip"),
    (_bold_truncated_header, BOLD.name, "not a readable NIfTI"),
    (_grid_differs, "_preproc.nii.gz", "runs of one subject must share one grid"),
    (_response_not_number, EVENTS.name, "column Response row 1 is not a number"),
])
def test_bad_input_fails_in_one_line_and_writes_nothing(dataset_copy, tmp_path, capsys, damage, file_part, problem):
    out = tmp_path / "interim"
    out.mkdir()
    (out / "trials.parquet").write_bytes(b"the user's previous output")
    damage(dataset_copy)
    code, _ = run_trials_cli(dataset_copy, out)
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert len(err.splitlines()) == 1, err
    assert file_part in err and problem in err, err
    assert (out / "trials.parquet").read_bytes() == b"the user's previous output"
    assert sorted(p.name for p in out.iterdir()) == ["trials.parquet"]


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "dataset" in text and "trials" in text
