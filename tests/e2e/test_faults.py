"""The fault and bad-input matrix: each case is a damaged input, a dying process or a stale state,
run against the real stages (through the CLI where the user meets it), with its expected one-line
message or recovered result. Cases already covered elsewhere are named at the end of this module.
"""

from __future__ import annotations

import gzip
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import yaml

from neurolatent.pipeline.cli import main
from neurolatent.pipeline.params import validate_params
from neurolatent.errors import NeurolatentError
from neurolatent.io import bids
from conftest import write_dataset
from neurolatent.io.images import read_rgb
from neurolatent.io.nifti import read_nifti
from neurolatent.models import training
from neurolatent.pipeline.parallel import parallel_map

from conftest import run_stage

BIN = Path(sys.executable).parent
BOLD = bids.run_path("T1w", "CSI1", 1, 1)
RAW_BOLD = bids.bold_path("CSI1", 1, 1)
EVENTS = bids.events_path("CSI1", 1, 1)
#: the fmri stage slowed down enough to be stopped half way: every TR drawn by nilearn
SLOW_FMRI = {"method": "rendered", "space": "raw", "jobs": 1,
             "render": {"engine": "nilearn", "samples": "all_trs", "size": 256}}


def messages(stderr: str) -> list[str]:
    """stderr's lines without tqdm's progress bars (``runs:  50%|#####  | 2/4 [00:01<...]``)."""
    lines = [part for line in stderr.splitlines() for part in line.split("\r")]
    return [re.sub(r"^.*\|.*\d+/\d+ \[[^]]*\]", "", line).strip() for line in lines
            if re.sub(r"^.*\|.*\d+/\d+ \[[^]]*\]", "", line).strip()]


def one_line_failure(capsys, code: int, *parts: str) -> str:
    """Assert the CLI failed with ``code`` and one stderr line naming ``parts``; return the line."""
    stderr = capsys.readouterr().err
    err = "\n".join(messages(stderr))
    assert code != 0 and len(err.splitlines()) == 1 and "Traceback" not in stderr, stderr
    assert all(part in err for part in parts), err
    return err


def trials_cli(raw: Path, out: Path, params: Path | None = None) -> int:
    return main(["trials", *(["--params", str(params)] if params else []), "--raw", str(raw),
                 "--trials", str(out / "trials.parquet"), "--stimuli", str(out / "stimuli.parquet")])


def fmri_cli(raw: Path, trials: Path, out: Path, params: Path) -> list[str]:
    return [str(BIN / "neurolatent"), "fmri", "--params", str(params), "--raw", str(raw), "--trials", str(trials),
            "--out", str(out)]


def write_params(path: Path, params: dict) -> Path:
    validate_params(params)
    path.write_text(yaml.safe_dump(params))
    return path


# ------------------------------------------------------------------ bad input: one line each


def _tr_in_milliseconds(raw: Path) -> None:
    image = nib.load(raw / BOLD)
    header = image.header.copy()
    header.set_zooms(header.get_zooms()[:3] + (2000.0,))
    header.set_xyzt_units("mm", "msec")
    nib.save(nib.Nifti1Image(np.asarray(image.dataobj), image.affine, header), raw / BOLD)


def _same_shape_other_affine(raw: Path) -> None:
    image = nib.load(raw / BOLD)
    moved = image.affine.copy()
    moved[1, 3] += 2.0
    nib.save(nib.Nifti1Image(np.asarray(image.dataobj), moved, image.header), raw / BOLD)


def _duplicated_trial_row(raw: Path) -> None:
    lines = (raw / EVENTS).read_bytes().split(b"\r\n")
    (raw / EVENTS).write_bytes(b"\r\n".join([*lines[:3], lines[2], *lines[3:]]))


@pytest.mark.parametrize("damage, file_part, problem", [
    (_tr_in_milliseconds, BOLD.name, "TR is 2000 (msec), BOLD5000's is 2 s"),
    (_same_shape_other_affine, BOLD.name, "affine differs from"),
    (_duplicated_trial_row, EVENTS.name, "row 3 repeats Trial 2 of row 2 (a duplicated trial row)"),
])
def test_bad_run_or_events_is_one_line(dataset_copy, tmp_path, capsys, damage, file_part, problem):
    damage(dataset_copy)
    code = trials_cli(dataset_copy, tmp_path)
    one_line_failure(capsys, code, file_part, problem)
    assert not list(tmp_path.glob("*.parquet")) and not list(tmp_path.glob(".*tmp*"))


def test_a_flipped_byte_in_a_full_length_bold_file_is_caught(dataset_copy, tmp_path, capsys):
    """The gzip trailer's size still matches, so `trials` passes; the CRC does not, and `fmri`
    reads the data: it must fail (nibabel alone read 3.47M wrong values without a word)."""
    assert trials_cli(dataset_copy, tmp_path) == 0
    capsys.readouterr()
    data = bytearray((dataset_copy / BOLD).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (dataset_copy / BOLD).write_bytes(bytes(data))
    with pytest.raises(NeurolatentError, match="corrupt gzip stream"):
        read_nifti(dataset_copy / BOLD)
    params = write_params(tmp_path / "params.yaml", {"preprocess": {"jobs": 1}})
    code = main(["fmri", "--params", str(params), "--raw", str(dataset_copy), "--trials",
                 str(tmp_path / "trials.parquet"), "--out", str(tmp_path / "fmri")])
    one_line_failure(capsys, code, BOLD.name, "corrupt gzip stream")
    assert not (tmp_path / "fmri").exists() and not list(tmp_path.glob(".fmri*"))


def test_a_multi_member_gzip_is_still_read(small_dataset, tmp_path):
    """What libdeflate cannot take but is whole (two gzip members) is read, checked, by Python's gzip."""
    raw = gzip.decompress((small_dataset[0] / BOLD).read_bytes())
    path = tmp_path / "two_members.nii.gz"
    path.write_bytes(gzip.compress(raw[:1000]) + gzip.compress(raw[1000:]))
    data, _ = read_nifti(path)
    np.testing.assert_array_equal(data, np.asanyarray(nib.load(small_dataset[0] / BOLD).dataobj))


@pytest.mark.parametrize("text, problem", [
    ("", "empty params file"),
    ("rsa:\n  permutations: true\n", "rsa.permutations: true is not a valid value"),
])
def test_params_that_mean_nothing_are_one_line(tmp_path, capsys, small_dataset, text, problem):
    (tmp_path / "params.yaml").write_text(text)
    code = trials_cli(small_dataset[0], tmp_path, tmp_path / "params.yaml")
    one_line_failure(capsys, code, "params.yaml", problem)


def test_a_test_subject_absent_from_the_data_is_one_line(small_dataset, tmp_path, capsys):
    run_stage("trials", raw=small_dataset[0], trials=tmp_path / "trials.parquet", stimuli=tmp_path / "stimuli.parquet")
    run_stage("fmri", {"preprocess": {"jobs": 1}}, raw=small_dataset[0], trials=tmp_path / "trials.parquet",
              out=tmp_path / "fmri")
    params = write_params(tmp_path / "params.yaml", {"fmri_ae": {"train_subjects": ["CSI1"], "test_subjects": ["CSI3"]}})
    code = main(["fmri_ae", "--params", str(params), "--samples", str(tmp_path / "fmri"), "--model",
                 str(tmp_path / "model"), "--metrics", str(tmp_path / "m.json"), "--plots", str(tmp_path / "p.csv"),
                 "--checkpoints", str(tmp_path / "ckpt")])
    one_line_failure(capsys, code, "no samples of test subject(s) ['CSI3']", "fmri_ae.test_subjects")
    assert not (tmp_path / "model").exists()


def test_a_16_bit_png_keeps_its_grey_levels(tmp_path):
    from PIL import Image

    levels = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    Image.fromarray(levels).save(tmp_path / "deep.png")
    Image.fromarray((levels // 257).astype(np.uint8)).save(tmp_path / "eight.png")
    deep, eight = read_rgb(tmp_path / "deep.png"), read_rgb(tmp_path / "eight.png")
    assert deep.mean() < 200  # PIL's own conversion made it 255 everywhere
    assert np.abs(deep.astype(int) - eight.astype(int)).max() <= 1


def test_an_output_path_that_cannot_be_made_is_one_line(small_dataset, tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    code = trials_cli(small_dataset[0], tmp_path / "file")
    one_line_failure(capsys, code, str(tmp_path / "file"), "OSError")


# ------------------------------------------------------------------ a datalad / git-annex copy


def annexed(real: Path, copy: Path) -> Path:
    """``real`` as datalad installs it: every file a relative symlink into ``.git/annex/objects``."""
    shutil.copytree(real, copy)
    for path in sorted(p for p in copy.rglob("*") if p.is_file() and ".git" not in p.parts):
        key = copy / ".git" / "annex" / "objects" / path.name[:2] / f"MD5E-s{path.stat().st_size}--{path.name}" / path.name
        key.parent.mkdir(parents=True, exist_ok=True)
        path.rename(key)
        path.symlink_to(os.path.relpath(key, path.parent))
    return copy


def _bids_data(root: Path) -> object:
    return validate_params({"data": {
        "source": "bids", "subjects": ["CSI1"], "sessions": [1], "runs": [1], "forms": ["raw", "T1w"],
        "bids_root": str(root), "stimuli_root": str(root / "BOLD5000_Stimuli")}}).data


def test_a_datalad_copy_is_followed_into_its_annex(small_dataset, tmp_path):
    root = annexed(small_dataset[0], tmp_path / "datalad")
    write_dataset(_bids_data(root), tmp_path / "raw", tmp_path / "truth")
    written = [p for p in (tmp_path / "raw").rglob("*") if not p.is_dir()]
    assert written and not any(p.is_symlink() for p in written)  # real files: DVC caches the data
    assert (tmp_path / "raw" / RAW_BOLD).read_bytes() == (small_dataset[0] / RAW_BOLD).read_bytes()
    assert run_stage("trials", {"preprocess": {"space": "raw", "mask": "brain"}}, raw=tmp_path / "raw",
                     trials=tmp_path / "t.parquet", stimuli=tmp_path / "s.parquet") is not None


def _annex_content_absent(root: Path) -> tuple[Path, str]:
    (root / RAW_BOLD).resolve().unlink()
    return root / RAW_BOLD, "git-annex content not present; run `datalad get"


def _stimulus_outside(root: Path) -> tuple[Path, str]:
    name = pd.read_csv(root / EVENTS, sep="\t")["ImgName"].iloc[0]  # a stimulus of the selected run
    stimulus = next((root / bids.STIMULI_DIR).rglob(name))
    outside = root.parent / name
    shutil.copy(stimulus.resolve(), outside)
    stimulus.unlink()
    stimulus.symlink_to(outside)
    return stimulus, "outside the dataset"


@pytest.mark.parametrize("damage", [_annex_content_absent, _stimulus_outside])
def test_a_symlink_that_leads_nowhere_or_out_is_one_line(small_dataset, tmp_path, capsys, damage):
    root = annexed(small_dataset[0], tmp_path / "datalad")
    path, problem = damage(root)
    data = {"source": "bids", "subjects": ["CSI1"], "sessions": [1], "runs": [1], "forms": ["raw", "T1w"],
            "bids_root": str(root), "stimuli_root": str(root / "BOLD5000_Stimuli")}
    params = write_params(tmp_path / "params.yaml", {"data": data})
    code = main(["dataset", "--params", str(params), "--raw", str(tmp_path / "raw"), "--truth", str(tmp_path / "truth")])
    one_line_failure(capsys, code, str(path), problem)
    assert not (tmp_path / "raw").exists() and not (tmp_path / "truth").exists()


# ------------------------------------------------------------------ checkpoints through the stage


def test_a_garbage_checkpoint_is_discarded_and_the_stage_trains(small_dataset, tmp_path, caplog):
    run_stage("trials", raw=small_dataset[0], trials=tmp_path / "trials.parquet", stimuli=tmp_path / "stimuli.parquet")
    run_stage("fmri", {"preprocess": {"jobs": 1}}, raw=small_dataset[0], trials=tmp_path / "trials.parquet",
              out=tmp_path / "fmri")
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / training.CHECKPOINT).write_bytes(b"\0" * 100)
    fmri_ae = {"fmri_ae": {"train_subjects": ["CSI1"], "train": {"epochs": 2}}}
    with caplog.at_level("WARNING"):
        metrics = run_stage("fmri_ae", fmri_ae, samples=tmp_path / "fmri", model=tmp_path / "model",
                            metrics=tmp_path / "m.json", plots=tmp_path / "p.csv", checkpoints=tmp_path / "ckpt")
    assert metrics["fmri_ae.epochs"] == 2
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"][0].endswith("training starts over")
    assert not any((tmp_path / "ckpt").iterdir())  # and a finished fit leaves no resume point


# ------------------------------------------------------------------ processes that die


def test_a_worker_crash_is_one_line():
    with pytest.raises(NeurolatentError) as info:
        parallel_map(_die_on_three, list(range(6)), 2, desc="runs", unit="run")
    assert "runs: a worker process died" in str(info.value) and "\n" not in str(info.value)


def _die_on_three(item: int) -> int:
    if item == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return item


@pytest.fixture
def slow_fmri(small_dataset, tmp_path) -> tuple[list[str], Path]:
    """The fmri command line of a run that takes minutes, and its output folder."""
    params = write_params(tmp_path / "params.yaml", {"preprocess": SLOW_FMRI})
    run_stage("trials", {"preprocess": SLOW_FMRI}, raw=small_dataset[0], trials=tmp_path / "trials.parquet",
              stimuli=tmp_path / "stimuli.parquet")
    return fmri_cli(small_dataset[0], tmp_path / "trials.parquet", tmp_path / "out" / "fmri", params), tmp_path / "out"


def _wait_for_temporary(folder: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not list(folder.glob(".fmri.tmp-*")):
        assert process.poll() is None and time.time() < deadline, "the stage never started writing"
        time.sleep(0.2)
    time.sleep(1.0)


def test_sigterm_cleans_up_and_ends_the_run_killed(slow_fmri):
    from mlflow import MlflowClient

    command, out = slow_fmri
    out.mkdir()
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    _wait_for_temporary(out, process)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130
    assert "Traceback" not in err and messages(err)[-1] == (
        "neurolatent fmri: interrupted (SIGTERM); temporary outputs removed")
    assert list(out.iterdir()) == []
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    runs = client.search_runs([client.get_experiment_by_name("neurolatent").experiment_id],
                              order_by=["attributes.start_time DESC"], max_results=1)
    assert runs[0].info.run_name == "fmri" and runs[0].info.status == "KILLED"


def test_a_stage_ends_with_the_dvc_process_that_ran_it(slow_fmri):
    """Killing dvc (here: a parent that stands for it, with the DVC_STAGE it sets) must not leave the
    stage running as an orphan that writes its outputs later."""
    command, out = slow_fmri
    out.mkdir()
    # as dvc does with SHELL=/bin/sh: through a shell that stays the stage's parent (dash does not exec)
    parent = subprocess.Popen([sys.executable, "-c", "import subprocess, sys; subprocess.run(sys.argv[1:])",
                               "/bin/sh", "-c", f"{shlex.join(command)}; true"], env={**os.environ, "DVC_STAGE": "fmri"})
    _wait_for_temporary(out, parent)
    parent.kill()
    parent.wait()
    deadline = time.time() + 60
    while list(out.iterdir()) and time.time() < deadline:
        time.sleep(0.5)
    assert list(out.iterdir()) == []  # the stage got SIGTERM, cleaned up and ended
    time.sleep(2)
    assert list(out.iterdir()) == []


def test_a_killed_stages_leftovers_are_removed_by_the_next_run(small_dataset, tmp_path):
    out = tmp_path / "fmri"
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".fmri.tmp-{dead.pid}-abc"
    stale.mkdir()
    (stale / "samples.npy").write_bytes(b"\0" * 1000)
    run_stage("trials", raw=small_dataset[0], trials=tmp_path / "trials.parquet", stimuli=tmp_path / "stimuli.parquet")
    run_stage("fmri", {"preprocess": {"jobs": 1}}, raw=small_dataset[0], trials=tmp_path / "trials.parquet", out=out)
    assert not stale.exists() and (out / "samples.npy").is_file()


def test_a_full_disk_is_one_line_and_leaves_nothing(small_dataset, tmp_path):
    """Writing past a limit fails as a full disk does (OSError, here EFBIG from RLIMIT_FSIZE): the
    19 MB samples file is allocated up front, so it fails there with a message, not later by SIGBUS."""
    import resource

    volume = {"method": "volume", "mask": "brain", "jobs": 1}
    params = write_params(tmp_path / "params.yaml", {"preprocess": volume})
    run_stage("trials", {"preprocess": volume}, raw=small_dataset[0], trials=tmp_path / "trials.parquet",
              stimuli=tmp_path / "stimuli.parquet")
    (tmp_path / "out").mkdir()

    def limit() -> None:  # above a fresh MLflow store (1 MB), below the samples
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (8 << 20, 8 << 20))

    result = subprocess.run(fmri_cli(small_dataset[0], tmp_path / "trials.parquet", tmp_path / "out" / "fmri", params),
                            preexec_fn=limit, capture_output=True, text=True,
                            env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"})
    lines = messages(result.stderr)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1 and lines[0].startswith(f"neurolatent fmri: error: {tmp_path / 'out'}/.fmri.tmp-"), lines
    assert lines[0].endswith("samples.npy: File too large (OSError 27); temporary outputs removed"), lines
    assert list((tmp_path / "out").iterdir()) == []


def test_a_store_that_cannot_be_written_is_one_line(small_dataset, tmp_path):
    (tmp_path / "mlflow.db").write_text("not a database")
    result = subprocess.run([str(BIN / "neurolatent"), "trials", "--raw", str(small_dataset[0]), "--trials",
                             str(tmp_path / "trials.parquet"), "--stimuli", str(tmp_path / "stimuli.parquet")],
                            capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2],
                            env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"})
    lines = messages(result.stderr)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1 and lines[0].startswith(f"neurolatent trials: error: MLflow store sqlite:///{tmp_path}"), lines
    assert not (tmp_path / "trials.parquet").exists()


# ------------------------------------------------------------------ permissions


def test_outputs_follow_the_umask(small_dataset, tmp_path):
    old = os.umask(0o022)
    try:
        run_stage("trials", raw=small_dataset[0], trials=tmp_path / "trials.parquet", stimuli=tmp_path / "stimuli.parquet")
        run_stage("fmri", {"preprocess": {"jobs": 1}}, raw=small_dataset[0], trials=tmp_path / "trials.parquet",
                  out=tmp_path / "fmri")
    finally:
        os.umask(old)
    assert (tmp_path / "trials.parquet").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "fmri").stat().st_mode & 0o777 == 0o755
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in (tmp_path / "fmri").iterdir())


# Covered elsewhere: truncated gzip, 3D run, NaN run, short run, events columns, grid shape,
# image escaping the folder, non-numeric response (tests/pipeline/stages/test_trials.py); every params error
# (tests/pipeline/test_params.py); a kill during fmri_ae resuming bitwise, damaged or foreign checkpoints,
# the code in the checkpoint key, the one-file checkpoint (tests/models/test_training.py); queued
# experiments in the project's MLflow store with no MLFLOW_TRACKING_URI (tests/e2e/test_pipeline.py).


def test_stages_that_open_a_new_store_at_once_all_log(tmp_path):
    """Two queued experiments on a fresh project open its new mlflow.db together; MLflow creating
    the tables twice at once failed both (`table _alembic_tmp_tags already exists`)."""
    script = ("from neurolatent.pipeline import tracking\n"
              "with tracking.stage_run('rsa', {'rsa.permutations': 10}):\n"
              "    tracking.log_metrics({'rsa.x': 1.0})\n")
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    processes = [subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE, text=True)
                 for _ in range(3)]
    errors = [p.communicate(timeout=300)[1] for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], errors
    from mlflow import MlflowClient

    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    runs = client.search_runs([client.get_experiment_by_name("neurolatent").experiment_id])
    stages = [r for r in runs if "neurolatent.stage" in r.data.tags]
    parents = [r for r in runs if r.data.tags.get("neurolatent.role") == "pipeline"]
    assert len(stages) == 3 and all(r.info.status == "FINISHED" for r in runs)
    # the same commit and params outside DVC: one pipeline run, made once although all three raced for it
    assert len(parents) == 1 and {r.data.tags["mlflow.parentRunId"] for r in stages} == {parents[0].info.run_id}
