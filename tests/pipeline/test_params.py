from pathlib import Path

import pytest

from neurolatent.pipeline.params import load_params, validate_params
from neurolatent.errors import NeurolatentError

ROOT = Path(__file__).resolve().parents[2]


def test_project_params_are_valid():
    params = load_params(ROOT / "params.yaml")
    assert params.data.source == "synthetic"
    assert params.data.subjects == ["CSI1", "CSI2", "CSI3", "CSI4"]


@pytest.mark.parametrize("raw, expected", [
    ({"data": {"synthetic": {"snr": -1}}}, "data.synthetic.snr: Input should be greater than or equal to 0"),
    ({"data": {"synthetic": {"snr": "loud"}}}, "data.synthetic.snr: Input should be a valid number"),
    ({"data": {"subjects": ["CSI5"]}}, "data.subjects.0: Input should be 'CSI1'"),
    ({"data": {"subjects": ["CSI4"], "sessions": [12]}}, "data.sessions: session 12 does not exist for CSI4"),
    ({"data": {"runs": [11]}}, "data.runs.0: Input should be less than or equal to 10"),
    ({"data": {"snr": 1}}, "data.snr: unknown key"),
    ({"stages": {}}, "stages: unknown key"),
    ({"data": {"source": "bids"}}, "data.source: 'bids' needs both data.bids_root and data.stimuli_root"),
    # a mask meets only data in its own space: no SPM ROI masks on raw runs
    ({"preprocess": {"space": "raw", "mask": "region"}},
     "preprocess.mask: region needs preprocess.space: T1w (the SPM ROI masks were drawn on fMRIPrep's T1w-space data"),
    ({"preprocess": {"space": "raw", "mask": "region", "method": "volume"}}, "set space: T1w, or mask: brain with raw runs"),
    ({"data": {"forms": ["raw"]}, "preprocess": {"space": "T1w"}},
     "preprocess.space: T1w runs are read, but data.forms lacks T1w"),
    ({"data": {"forms": ["T1w"]}, "preprocess": {"method": "glmsingle"}},
     "preprocess.method: glmsingle reads the GLMsingle betas, but data.forms lacks glmsingle"),
    ({"data": {"source": "bids", "bids_root": "/d", "stimuli_root": "/s", "forms": ["T1w", "glmsingle"]}},
     "data.forms: glmsingle from a real copy needs data.glmsingle_root"),
    ({"data": {"source": "bids", "bids_root": "/nothing/here", "stimuli_root": "/s"}},
     "data.bids_root: /nothing/here holds neither raw runs"),
    ({"data": {"synthetic": {"roi_radius_mm": 12}}}, "data.synthetic.roi_radius_mm: Input should be less than or equal to 10"),
])
def test_bad_values_name_the_key(raw, expected):
    with pytest.raises(NeurolatentError) as info:
        validate_params(raw)
    message = str(info.value)
    assert message.startswith("params.yaml: ") and expected in message
    assert "\n" not in message


def test_the_studys_pictures_may_come_from_raw_runs():
    """rendered draws whole volumes: no mask, so raw runs are fine (the study's configuration)."""
    params = validate_params({"preprocess": {"space": "raw", "method": "rendered"}})
    assert params.preprocess.space == "raw"
    assert validate_params({"preprocess": {"space": "raw", "mask": "brain", "method": "betas"}}).preprocess.mask == "brain"


def test_bad_files(tmp_path):
    with pytest.raises(NeurolatentError, match="no such params file"):
        load_params(tmp_path / "missing.yaml")
    broken = tmp_path / "params.yaml"
    broken.write_text("data: [unclosed\n")
    with pytest.raises(NeurolatentError, match="not valid YAML"):
        load_params(broken)


def _apply(params: dict, key: str, value) -> None:
    *parents, last = key.split(".")
    section = params
    for part in parents:
        section = section[part]
    assert last in section, key
    section[last] = value


@pytest.mark.parametrize("target", ["study", "corrected", "corrected-glmsingle"])
def test_documented_configurations_are_valid_params(target):
    """`make study` / `make corrected`: the configuration files, then the -S overrides, make a
    params.yaml that validates."""
    import shlex
    import subprocess

    import yaml

    from neurolatent.pipeline.experiments.sweep import read_config

    root = Path(__file__).resolve().parents[2]
    command = subprocess.run(["make", "-s", "-n", target, "BOLD5000=/data/ds001499", "STIMULI=/data/BOLD5000_Stimuli",
                              "GLMSINGLE=/data/BOLD5000_GLMsingle", "VENV=.venv-for-dry-run"], cwd=root, capture_output=True,
                             text=True, check=True).stdout
    words = shlex.split(command.strip().replace("\\\n", " ").splitlines()[-1])
    assert words[1:3] == ["experiment", target]
    files = [root / w for w in words[3:] if w.endswith(".yaml")]
    overrides = [words[i + 1] for i, word in enumerate(words) if word == "-S"]
    assert files and len(overrides) >= 5
    params = yaml.safe_load((root / "params.yaml").read_text())
    for path in files:
        for key, value in read_config(path).items():
            _apply(params, key, value)
    for override in overrides:
        key, value = override.split("=", 1)
        _apply(params, key, yaml.safe_load(value))
    validate_params(params)


@pytest.mark.parametrize("config", ["study", "corrected"])
def test_the_sweeps_points_are_valid_params(config):
    """Every point of `make compare`: the configuration, the sweep's scale, an SNR and a seed."""
    import yaml

    from neurolatent.pipeline.experiments.sweep import Point, exp_run_args

    root = Path(__file__).resolve().parents[2]
    files = [root / "configs" / f"{config}.yaml"] + ([root / "configs/study-as-run.yaml"] if config == "study" else [])
    args = exp_run_args(Point("compare", config, 0.25, 2), files, [root / "configs/synthetic-sweep.yaml"])
    params = yaml.safe_load((root / "params.yaml").read_text())
    for pair in args[args.index("-S"):][1::2]:
        key, value = pair.split("=", 1)
        _apply(params, key, yaml.safe_load(value))
    checked = validate_params(params)
    assert checked.data.synthetic.snr == 0.25 and checked.rsa.seed == 2 and checked.data.source == "synthetic"


@pytest.mark.parametrize("layers, expected", [
    (["first"], "embed.layers: 'first' is not a layer (last, or a hidden state's index"),
    ([-1], "embed.layers: -1 is not a layer"),
    ([True], "embed.layers: True is not a layer"),
    (["2"], "embed.layers: '2' is not a layer"),
    ([1.0], "embed.layers: 1.0 is not a layer"),
    (["last", 3, 3], "embed.layers: a layer is listed twice"),
    (["last", "last"], "embed.layers: a layer is listed twice"),
    ([], "embed.layers: List should have at least 1 item"),
    # the default tokens: cls; layer 0's CLS token is the same vector for every image
    ([0, 1], "embed.layers: 0 with tokens: cls is one vector for every image"),
])
def test_embed_layers_are_last_or_hidden_state_indices(layers, expected):
    assert validate_params({}).embed.layers == ["last"]
    assert validate_params({"embed": {"layers": ["last", 0, 12], "tokens": "mean"}}).embed.layers == ["last", 0, 12]
    with pytest.raises(NeurolatentError) as info:
        validate_params({"embed": {"layers": layers}})
    assert str(info.value).startswith("params.yaml: ") and expected in str(info.value)


def _copy(root: Path, raw: bool, t1w: bool) -> Path:
    """A BOLD5000 copy with the file names of each form (the detection reads names only)."""
    func = root / "sub-CSI1" / "ses-01" / "func"
    func.mkdir(parents=True)
    (func / "sub-CSI1_ses-01_task-5000scenes_run-01_events.tsv").write_text("onset\n")
    if raw:
        (func / "sub-CSI1_ses-01_task-5000scenes_run-01_bold.nii.gz").write_bytes(b"")
    if t1w:
        prep = root / "derivatives" / "fmriprep" / "sub-CSI1" / "ses-01" / "func"
        prep.mkdir(parents=True)
        (prep / "sub-CSI1_ses-01_task-5000scenes_run-01_bold_space-T1w_preproc.nii.gz").write_bytes(b"")
    return root


@pytest.mark.parametrize("raw, t1w, glmsingle, forms, space, mask", [
    (True, False, False, ["raw"], "raw", "brain"),  # OpenNeuro's ds001499 without derivatives
    (True, True, False, ["raw", "T1w"], "T1w", "region"),
    (False, True, True, ["T1w", "glmsingle"], "T1w", "region"),
])
def test_a_real_copy_runs_with_its_folders_alone(tmp_path, raw, t1w, glmsingle, forms, space, mask):
    copy = _copy(tmp_path / "ds001499", raw, t1w)
    data = {"source": "bids", "bids_root": str(copy), "stimuli_root": str(tmp_path / "stimuli")}
    if glmsingle:
        data["glmsingle_root"] = str(tmp_path / "glmsingle")
    params = validate_params({"data": data})
    assert (params.data.forms, params.preprocess.space, params.preprocess.mask) == (forms, space, mask)
    # what the user sets wins
    assert validate_params({"data": {**data, "forms": ["raw"]}}).data.forms == ["raw"]


def test_the_synthetic_twin_has_every_form_by_default():
    params = validate_params({})
    assert (params.data.forms, params.preprocess.space, params.preprocess.mask) == (
        ["raw", "T1w", "glmsingle"], "T1w", "region")
    assert validate_params({"data": {"forms": ["raw"]}}).preprocess.space == "raw"
