"""`dvc exp run` on a copy of BOLD5000 that holds only what release 2.0's users download."""

import json
import shutil
import sys

import numpy as np
import pytest

from projects import make_project, run as _run


@pytest.mark.slow
def test_a_copy_with_only_events_stimuli_and_the_glmsingle_release_runs_end_to_end(tmp_path_factory):
    """The real-data path of most BOLD5000 users: no runs at all, only the events files, the stimuli
    and release 2.0 (laid out flat, as figshare serves it), through every stage, as a `dvc exp run`
    that changes the preprocessing method; then `dvc exp show` and `make show` on it. A project of
    its own (this module runs on its own pytest-xdist worker): the twin's dataset stage makes the
    copy's files."""
    project = make_project(tmp_path_factory.mktemp("glmsingle-project"))
    _run(["dvc", "repro", "dataset"], project)
    synthetic = project / "data/raw/bold5000"
    copy, release = project.parent / "ds001499", project.parent / "BOLD5000_GLMsingle"
    for path in synthetic.rglob("*"):
        rel = path.relative_to(synthetic)
        if path.is_file() and (path.name.endswith("_events.tsv") or rel.parts[0] == "BOLD5000_Stimuli"):
            (copy / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, copy / rel)
    (release / "BOLD5000_GLMsingle_ROI_betas/py").mkdir(parents=True)
    for path in (synthetic / "derivatives/glmsingle").rglob("*"):
        if path.is_file() and not path.name.endswith("_schedule.tsv"):
            target = release / ("BOLD5000_GLMsingle_ROI_betas/py" if path.suffix == ".npy" else "") / path.name
            shutil.copy(path, target)
    _run(["dvc", "exp", "run", "-n", "glmsingle-only", "-S", "data.source=bids", "-S", f"data.bids_root={copy}",
          "-S", f"data.stimuli_root={copy}/BOLD5000_Stimuli", "-S", f"data.glmsingle_root={release}",
          "-S", "data.forms=[glmsingle]", "-S", "preprocess.method=glmsingle"], project)
    assert '"method": "glmsingle"' in (project / "data/processed/fmri/samples.json").read_text()
    assert not list((project / "data/raw/bold5000").rglob("*_bold.nii.gz"))
    rsa_metrics = json.loads((project / "metrics/rsa.json").read_text())
    # a real copy has no planted truth: the image models alone, each with a finite statistic
    assert "rsa.samples.planted.r" not in rsa_metrics
    assert all(np.isfinite(rsa_metrics[f"rsa.samples.{model}.r"]) for model in ("pixels", "image_ae"))
    columns = _run(["dvc", "exp", "show", "--no-pager", "--csv"], project).splitlines()[0].split(",")
    # the headline only: metrics/summary.json's numbers (no noise ceiling here: CSI1 and CSI2 share no
    # image in run 1, so it is null and DVC drops the column); the detail is in the stages' files
    for metric in ("fmri_ae.loss", "ae.r", "ae.p", "samples.hi", "2way", "enc.r"):
        assert metric in columns, (metric, columns)
    assert "rsa.ae.pixels.r" not in columns and not any(column.startswith("stitch.decode") for column in columns)
    # make show: every experiment's headline in 200 columns, with the params it changed
    table = _run([sys.executable, "-m", "neurolatent.pipeline.experiments.table", "--width", "200"], project)
    lines = table.splitlines()
    assert max(len(line) for line in lines) <= 200, table
    assert lines[0].split()[:3] == ["Experiment", "snr", "samples.r"] and "…" not in table
    assert 'preprocess.method="glmsingle"' in table, table
