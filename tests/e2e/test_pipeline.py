"""`dvc repro` for real: a throwaway git + DVC project made from this one, on small params."""

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from projects import ROOT, failing, lineage, make_project, out_hashes, output_files, run as _run, user_files


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The project this module's tests share, in order: reproduced, then changed, pushed and
    experimented on (make test runs pytest-xdist with --dist loadfile: one worker runs a module)."""
    return make_project(tmp_path_factory.mktemp("project"))


@pytest.mark.slow
def test_dvc_repro_runs_and_reruns_identically(project):
    _run(["dvc", "repro"], project)
    trials = pd.read_parquet(project / "data/interim/trials.parquet")
    assert len(trials) == 2 * 37 and set(trials["subject"]) == {"CSI1", "CSI2"}
    assert (project / "data/raw/truth/truth.json").is_file()
    first = out_hashes(project)
    assert set(first) >= {"data/raw/bold5000", "data/raw/truth", "data/interim/trials.parquet",
                          "data/interim/stimuli.parquet", "data/processed/fmri", "models/fmri_ae",
                          "metrics/fmri_ae.json", "plots/fmri_ae_loss.csv", "data/embeddings/fmri.npy",
                          "models/image_ae", "data/embeddings/images", "data/rdms", "metrics/rsa.json",
                          "plots/rsa", "metrics/stitch.json", "plots/stitch", "data/align", "metrics/align.json",
                          "plots/align"}
    rsa = json.loads((project / "metrics/rsa.json").read_text())
    assert rsa["rsa.samples.planted.p"] < 0.01 and rsa["rsa.samples.planted.r"] > 0.3
    stitch = json.loads((project / "metrics/stitch.json").read_text())
    assert stitch["stitch.decode.samples.planted.ridge.two_way"] > stitch["stitch.decode.samples.planted.ridge.chance_high"]
    assert stitch["stitch.encode.planted.median_r"] > stitch["stitch.encode.planted.median_r_shuffled"]
    assert (project / "plots/stitch/reconstructions.png").is_file() and (project / "plots/stitch/encoding_r.png").is_file()
    # per ROI: the rsa table, and decoding and encoding from each ROI
    rois = pd.read_csv(project / "plots/rsa/rois.csv")
    assert {"union", "EarlyVis", "LOC", "PPA"} <= set(rois["roi"]) and rois["p_fwe"].between(0, 1).all()
    assert "stitch.decode.samples.LOC.planted_object.ridge.two_way" in stitch
    assert "stitch.encode.pixels.EarlyVis.median_r" in stitch
    first_execution = _lineage(project, first, {"dataset", "trials", "fmri", "fmri_ae", "embed_fmri", "image_ae",
                                                 "embed_images", "align", "rsa", "stitch", "encode", "export",
                                                 "summary", "page"})
    # rerun a training, the permutation tests and the encoding fits (the rest is covered by
    # tests/pipeline/test_numerics.py): the same bytes, to the last archive member's time stamp
    _run(["dvc", "repro", "-f", "-s", "image_ae", "rsa", "encode"], project)
    assert out_hashes(project) == first
    assert "up to date" in _run(["dvc", "status"], project)
    second = _lineage(project, first, {"image_ae", "rsa", "encode"}, skip={first_execution})
    # rsa's input came from DVC's workspace/cache this time: docs/getting-started.md's search finds the run that made it
    import mlflow

    fmri = second["rsa"].data.tags["dvc.in.data/embeddings/fmri.npy"]
    made_it = mlflow.search_runs(experiment_names=["neurolatent"], output_format="list",
                                 filter_string=f"tags.`dvc.out.data/embeddings/fmri.npy` = '{fmri}'")
    assert [run.info.run_name for run in made_it] == ["embed_fmri"]
    assert made_it[0].data.tags["mlflow.parentRunId"] == first_execution


def _lineage(project: Path, hashes: dict[str, str], stages: set[str], skip: set[str] = frozenset()) -> dict | str:
    """:func:`projects.lineage`, and on a whole pipeline the headline on the parent, the dataset
    input and the logged model; returns the parent's id, or (with ``skip``) its stage runs by name."""
    import mlflow

    parent, children = lineage(project, hashes, stages, skip)
    if "summary" in stages:
        assert parent.data.metrics["ae.r"] == pytest.approx(json.loads((project / "metrics/summary.json").read_text())["ae.r"], rel=1e-5)
        assert mlflow.get_run(children["rsa"].info.run_id).inputs.dataset_inputs[0].dataset.name.startswith("BOLD5000 synthetic")
        model = mlflow.pytorch.load_model(f"runs:/{children['fmri_ae'].info.run_id}/fmri_ae")
        assert model is not None
    return children if skip else parent.info.run_id


def _edit_params(project: Path, key: str, value) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    *sections, last = key.split(".")
    node = params
    for section in sections:
        node = node.setdefault(section, {})
    node[last] = value
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


#: one bad value per params.yaml section, an unknown key, a cross-section inconsistency and a path that
#: does not exist: (key set, value, the key the one-line error names)
BAD_PARAMS = [
    ("compute.threads", 0, "compute.threads"),
    ("data.synthetic.snr", -1, "data.synthetic.snr"),
    ("preprocess.method", "betaz", "preprocess.method"),
    ("fmri_ae.train.batch_size", 0, "fmri_ae.train.batch_size"),
    ("image_ae.size", 63, "image_ae.size"),
    ("embed.tokens", "first", "embed.tokens"),
    ("rsa.compare", "spearmann", "rsa.compare"),
    ("stitch.methods", ["ridge", "lasso"], "stitch.methods"),
    ("encode.folds", 1, "encode.folds"),
    ("align.method", "hyperalignment", "align.method"),
    ("align.k", [10, 5000], "align.k"),  # valid as a value; more images than a subject has: the stage says so
    ("export.frames", ["net2brain", "algonauts2025"], "export.frames"),
    ("rsa.compar", "pearson", "rsa.compar"),
    ("preprocess", {"space": "raw", "mask": "region"}, "preprocess.mask"),
    ("data", {"source": "bids", "bids_root": "/nonexistent/ds001499", "stimuli_root": "/nonexistent/stimuli",
              "forms": ["T1w"]}, "data.bids_root"),
]


@pytest.fixture(scope="module")
def reproduced(project) -> Path:
    """The project after a complete `dvc repro` (a no-op when the first test ran it)."""
    _run(["dvc", "repro"], project)
    _run(["git", "checkout", "--", "params.yaml"], project)
    return project


@pytest.mark.slow
def test_the_docs_rsatoolbox_example_runs_as_written_on_the_output(reproduced):
    """docs/results.md's example, on the default's outputs (the synthetic twin: its planted truth is a
    model), before any other test changes them."""
    page = (ROOT / "docs" / "results.md").read_text()
    code = page.split("<!-- docs-example: rsatoolbox -->\n```python\n", 1)[1].split("```", 1)[0]
    out = _run([sys.executable, "-c", code], reproduced)
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == ["CSI1", "CSI2"], out
    metrics = json.loads((reproduced / "metrics" / "rsa.json").read_text())
    pixels = [float(line.split("[")[1].split()[0]) for line in lines]
    # the mean over subjects is the rsa stage's group r
    assert sum(pixels) / len(pixels) == pytest.approx(metrics["rsa.samples.pixels.r"], abs=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("key, value, named", BAD_PARAMS, ids=[case[0] for case in BAD_PARAMS])
def test_a_bad_param_stops_dvc_repro_and_every_file_keeps_its_bytes(reproduced, key, value, named):
    before = user_files(reproduced)
    if isinstance(value, dict):
        params = yaml.safe_load((reproduced / "params.yaml").read_text())
        params[key].update(value)
        (reproduced / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    else:
        _edit_params(reproduced, key, value)
    try:
        output = failing(["dvc", "repro"], reproduced)
    finally:
        _run(["git", "checkout", "--", "params.yaml"], reproduced)
    ours = [line for line in output.splitlines() if line.startswith("neurolatent ") and ": error: " in line]
    assert len(ours) == 1 and named in ours[0], output
    assert user_files(reproduced) == before


@pytest.mark.slow
def test_a_yaml_syntax_error_names_its_line_and_column(reproduced):
    before = user_files(reproduced)
    text = (reproduced / "params.yaml").read_text()
    (reproduced / "params.yaml").write_text(text.replace("\n  seed: 0", "\n\tseed: 0", 1))
    line = next(number for number, row in enumerate(text.splitlines(), 1) if row == "  seed: 0")
    try:
        dvc = failing(["dvc", "repro"], reproduced)
        ours = failing(["neurolatent", "rsa"], reproduced)
    finally:
        _run(["git", "checkout", "--", "params.yaml"], reproduced)
    assert f"line {line}, column 1" in dvc
    assert ours.strip().splitlines()[-1] == (f"neurolatent rsa: error: params.yaml: line {line}, column 1: not valid "
                                             "YAML (found character '\\t' that cannot start any token)")
    assert user_files(reproduced) == before


@pytest.mark.slow
@pytest.mark.parametrize("setting, named", [("rsa.compare=spearmann", "rsa.compare"),
                                            ("rsa.permutation=100", "rsa.permutation")], ids=["value", "key"])
def test_a_typo_in_dvc_exp_run_set_param_loses_nothing(reproduced, setting, named):
    """A value DVC writes and the stage refuses, and a key DVC itself refuses (its own message)."""
    before = user_files(reproduced)
    try:
        output = failing(["dvc", "exp", "run", "-S", setting], reproduced)
    finally:
        _run(["git", "checkout", "--", "params.yaml"], reproduced)
    first = next(line for line in output.splitlines() if "error" in line.lower())
    assert named in first, output
    assert user_files(reproduced) == before


@pytest.mark.slow
def test_outputs_travel_through_a_local_remote_to_a_fresh_clone(project, tmp_path):
    _run(["dvc", "remote", "add", "-d", "shared", str(tmp_path / "remote")], project)
    _run(["git", "add", "-A"], project)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "results and remote"], project)
    _run(["dvc", "push"], project)
    clone = tmp_path / "clone"
    _run(["git", "clone", "-q", str(project), str(clone)], tmp_path)
    _run(["dvc", "pull"], clone)
    assert "up to date" in _run(["dvc", "status"], clone)
    theirs, ours = output_files(clone), output_files(project)
    assert theirs.keys() == ours.keys() and len(ours) > 20
    assert all(theirs[name] == ours[name] for name in ours)


@pytest.mark.slow
def test_mlflow_run_uses_the_mlproject_and_parents_the_stage_run(project, monkeypatch):
    import mlflow

    # mlflow.set_experiment (run by stages in this process) exports the id; `mlflow run` takes a name or an id
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    _run(["mlflow", "run", ".", "--env-manager", "local", "-e", "trials", "--experiment-name", "neurolatent"], project)
    runs = mlflow.search_runs(experiment_names=["neurolatent"], output_format="list")
    launchers = {r.info.run_id for r in runs if r.data.tags.get("mlflow.project.entryPoint") == "trials"}
    children = [r for r in runs if r.data.tags.get("neurolatent.stage") == "trials"
                and r.data.tags.get("mlflow.parentRunId") in launchers]
    assert launchers and children and children[0].info.status == "FINISHED"
    assert "up to date" in _run(["dvc", "status"], project)  # the stage rewrote the same bytes


@pytest.fixture
def s3_server(monkeypatch):
    """moto's S3 server on 127.0.0.1 with a bucket, and fake credentials in the environment."""
    pytest.importorskip("dvc_s3", reason="the dvc-s3 plugin is not installed")
    pytest.importorskip("moto", reason="moto (S3-compatible test server) is not installed")
    import boto3

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="neurolatent")
                break
            except Exception:  # the server is still starting
                time.sleep(0.3)
        else:
            pytest.fail("moto's S3 server did not start")
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_outputs_travel_through_an_s3_remote(project, tmp_path, s3_server):
    _run(["dvc", "remote", "add", "s3", "s3://neurolatent/dvc"], project)
    _run(["dvc", "remote", "modify", "s3", "endpointurl", s3_server], project)
    _run(["git", "add", ".dvc/config"], project)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "s3 remote"], project)
    _run(["dvc", "push", "-r", "s3"], project)
    clone = tmp_path / "clone"
    _run(["git", "clone", "-q", str(project), str(clone)], tmp_path)
    _run(["dvc", "pull", "-r", "s3"], clone)
    assert "up to date" in _run(["dvc", "status"], clone)
    theirs, ours = output_files(clone), output_files(project)
    assert theirs.keys() == ours.keys() and all(theirs[name] == ours[name] for name in ours)


@pytest.mark.slow
def test_two_queued_experiments_run_in_parallel_and_both_reach_the_projects_store(project):
    """With no MLFLOW_TRACKING_URI (the documented default), the runs of experiments that DVC runs in
    its temporary copies of the project reach the project's own mlflow.db."""
    from mlflow import MlflowClient

    _run(["git", "checkout", "--", "."], project)  # the experiments branch from the committed default
    # both differ from the project's 300 relabellings the gamma fit is made from, so rsa (and what
    # follows it: export, summary, page) rerun with other p's
    names = ["perm200", "perm400"]
    default = ("MLFLOW_TRACKING_URI",)
    for name, count in zip(names, (200, 400)):
        _run(["dvc", "exp", "run", "--queue", "-n", name, "-S", f"rsa.fit_permutations={count}"], project, default)
    _run(["dvc", "queue", "start", "-j", "2"], project, default)
    deadline = time.time() + 900
    while time.time() < deadline:
        status = _run(["dvc", "queue", "status"], project, default)
        if not any(word in status for word in ("Queued", "Running")):
            break
        time.sleep(5)
    assert "Failed" not in status, status
    shown = _run(["dvc", "exp", "show", "--no-pager", "--csv"], project)
    assert all(name in shown for name in names), shown
    client = MlflowClient(tracking_uri=f"sqlite:///{project}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("neurolatent").experiment_id])
    for name in names:
        stages = {r.data.tags.get("neurolatent.stage") for r in runs if r.data.tags.get("dvc.exp_name") == name}
        assert {"rsa", "summary"} <= stages, (name, stages)
        finished = [r for r in runs if r.data.tags.get("dvc.exp_name") == name and r.info.status == "FINISHED"
                    and r.data.tags.get("neurolatent.stage") == "rsa"]
        assert finished
        assert all(any(k.startswith(r.data.tags["neurolatent.stage"] + ".") for k in r.data.metrics) for r in finished)

