"""A real copy's subset linked in: the selected runs' files by form, the images their events name,
a truth that plants nothing; a missing form, a link out of the dataset and a bad argument named."""

from __future__ import annotations

import json

import pytest

from neurolatent.errors import NeurolatentError
from neurolatent.io import bids
from neurolatent.io.bids_subset import link_subset
from test_events import _rows, _write


def _copy(tmp_path):
    """A BOLD5000 copy with two runs of CSI1 (raw only) and the one image their events name."""
    root, stimuli = tmp_path / "ds001499", tmp_path / "BOLD5000_Stimuli"
    for run in (1, 2):
        _write(_rows((0.0, "a.jpg", "coco")), root / bids.events_path("CSI1", 1, run))
        (root / bids.bold_path("CSI1", 1, run)).write_bytes(b"bold")
    image = stimuli / bids.stimulus_path("coco", "a.jpg").relative_to("BOLD5000_Stimuli")
    image.parent.mkdir(parents=True)
    image.write_bytes(b"jpeg")
    (root / "dataset_description.json").write_text("{}")
    return root, stimuli


def test_the_selected_runs_and_their_images_are_linked(tmp_path):
    root, stimuli = _copy(tmp_path)
    counts = link_subset(root, stimuli, None, tmp_path / "out", tmp_path / "truth", subjects=["CSI1"], sessions=None,
                         runs=[2], forms=["raw"], link="copy")
    assert counts == {"runs": 1, "images": 1}
    out = tmp_path / "out"
    assert (out / bids.bold_path("CSI1", 1, 2)).read_bytes() == b"bold"
    assert not (out / bids.bold_path("CSI1", 1, 1)).exists()
    assert (out / bids.stimulus_path("coco", "a.jpg")).read_bytes() == b"jpeg"
    assert (out / "dataset_description.json").is_file()
    assert json.loads((tmp_path / "truth" / "truth.json").read_text())["planted"] is False


def test_a_missing_form_a_link_out_of_the_dataset_and_a_bad_argument(tmp_path):
    root, stimuli = _copy(tmp_path)
    arguments = {"subjects": ["CSI1"], "sessions": None, "runs": None, "link": "copy"}
    with pytest.raises(NeurolatentError, match="_bold_space-T1w_preproc.nii.gz: missing \\(data.forms asks for it\\)"):
        link_subset(root, stimuli, None, tmp_path / "o1", tmp_path / "t1", forms=["T1w"], **arguments)
    outside = tmp_path / "elsewhere.nii.gz"
    outside.write_bytes(b"x")
    bold = root / bids.bold_path("CSI1", 1, 1)
    bold.unlink()
    bold.symlink_to(outside)
    with pytest.raises(NeurolatentError, match="outside the dataset"):
        link_subset(root, stimuli, None, tmp_path / "o2", tmp_path / "t2", forms=["raw"], **arguments)
    with pytest.raises(ValueError, match="^link: Input should be 'hardlink' or 'copy' \\(got 'symlink'\\)$"):
        link_subset(root, stimuli, None, tmp_path / "o3", tmp_path / "t3", forms=["raw"],
                    **(arguments | {"link": "symlink"}))
