"""The export files in their frames' formats: Net2Brain's folders read as Net2Brain reads them give
the exported results.csv (tests/peers_reference.py); the Brain-Score assembly has the frame's dims
and coords, and its values are the samples it came from, through a netCDF round trip."""

from __future__ import annotations

import ast
import json
import os
import shutil
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import pdist

import peers_reference
from neurolatent.errors import NeurolatentError
from neurolatent.io.exports import (net2brain_results, neural_assembly, shared_images, write_assembly,
                                    write_brain_rdms, write_model_rdms, write_plugin, write_stimulus_set)
from neurolatent.science.peers import NET2BRAIN_COLUMNS
from neurolatent.science.rsa.rdm import RDM
from neurolatent.science.stimuli import StimulusMatrix

IMAGES = tuple(f"img{i:02d}.jpg" for i in range(16))


def _rdm(patterns: np.ndarray, names, name, subject="all") -> RDM:
    return RDM(pdist(patterns, "correlation"), tuple(names), "correlation", name, {"subject": subject})


def _regions(rng):
    """Three subjects, each over the 12 shared images plus 2 of its own, in its own order; a planted
    pattern in EarlyVis, none in LOC."""
    shared = rng.standard_normal((len(IMAGES), 6))
    regions = {"EarlyVis": [], "LOC": []}
    for s in range(3):
        names = list(IMAGES[:12]) + [f"own{s}_{k}.jpg" for k in range(2)]
        order = rng.permutation(len(names))
        names = [names[i] for i in order]
        planted = np.vstack([shared[IMAGES.index(n)] if n in IMAGES else rng.standard_normal(6) for n in names])
        regions["EarlyVis"].append(_rdm(planted + 0.5 * rng.standard_normal(planted.shape), names,
                                        f"samples/EarlyVis/CSI{s + 1}", f"CSI{s + 1}"))
        regions["LOC"].append(_rdm(rng.standard_normal((len(names), 6)), names, f"samples/LOC/CSI{s + 1}",
                                   f"CSI{s + 1}"))
    models = {"pixels": _rdm(shared, IMAGES, "pixels"), "vit_l3": _rdm(rng.standard_normal((16, 6)), IMAGES, "vit_l3")}
    return regions, models


def test_net2brain_folders_give_the_exported_table(tmp_path):
    regions, models = _regions(np.random.default_rng(0))
    images = shared_images([item.stimuli for rdms in regions.values() for item in rdms], IMAGES)
    assert images == IMAGES[:12]
    # a network named as embed.image_models names it: its folder and Model column are file-safe alike
    layers = {"pixels": ("pixels", "output"), "vit_l3": ("untrained:resources/vit", "3")}
    stacks = write_brain_rdms(tmp_path / "brain_rdms", regions, images)
    squares = write_model_rdms(tmp_path / "model_rdms", models, layers, images)
    table = net2brain_results(stacks, squares, layers)
    assert list(table.columns) == list(NET2BRAIN_COLUMNS) == ["ROI", "Layer", "Model", "R", "%R", "Significance",
                                                               "SEM", "LNC", "UNC"]
    # as Net2Brain loads them: the first array, subjects x n x n over the shared images, names beside
    for roi in regions:
        stack = np.load(tmp_path / "brain_rdms" / f"{roi}.npz")["arr_0"]
        assert stack.shape == (3, 12, 12) and np.allclose(stack, stack.transpose(0, 2, 1))
        meta = json.loads((tmp_path / "brain_rdms" / f"{roi}.json").read_text())
        assert meta["images"] == list(images) and meta["subjects"] == ["CSI1", "CSI2", "CSI3"]
        # each subject's cell (i, j) is its own RDM's dissimilarity of those two images
        first = regions[roi][0]
        i, j = first.stimuli.index(images[2]), first.stimuli.index(images[7])
        assert stack[0, 2, 7] == first.square()[i, j]
    reference = pd.DataFrame(peers_reference.evaluate(tmp_path / "model_rdms" / "pixels", tmp_path / "brain_rdms",
                                                      "pixels") +
                             peers_reference.evaluate(tmp_path / "model_rdms" / "untrained_resources__vit",
                                                      tmp_path / "brain_rdms", "untrained_resources__vit"))
    merged = table.merge(reference, on=["ROI", "Layer", "Model"], suffixes=("", "_net2brain"))
    assert len(merged) == len(table) == 4
    for column in NET2BRAIN_COLUMNS[3:]:
        np.testing.assert_allclose(merged[column], merged[f"{column}_net2brain"], rtol=1e-12)
    found = table.set_index(["ROI", "Model"])
    assert found.loc[("EarlyVis", "pixels"), "R"] > 0.4 and found.loc[("EarlyVis", "pixels"), "Significance"] < 0.01
    assert found.loc[("EarlyVis", "pixels"), "%R"] == pytest.approx(
        found.loc[("EarlyVis", "pixels"), "R"] / found.loc[("EarlyVis", "pixels"), "LNC"] * 100)


def test_stored_rdms_write_the_files_of_rdms_in_memory(tmp_path):
    """The export stage hands the writers StoredRDMs (each read when its ROI or model is written):
    the same arrays, names and table as the RDMs themselves."""
    from neurolatent.io.rdms import StoredRDM

    regions, models = _regions(np.random.default_rng(0))
    images = shared_images([item.stimuli for rdms in regions.values() for item in rdms], IMAGES)
    layers = {"pixels": ("pixels", "output"), "vit_l3": ("vit", "3")}
    (tmp_path / "rdms").mkdir()
    stored_regions = {roi: [StoredRDM.saved(item, tmp_path / "rdms")[0] for item in rdms]
                      for roi, rdms in regions.items()}
    stored_models = {name: StoredRDM.saved(item, tmp_path / "rdms")[0] for name, item in models.items()}
    tables = []
    for folder, (brain, model) in {"memory": (regions, models), "stored": (stored_regions, stored_models)}.items():
        stacks = write_brain_rdms(tmp_path / folder / "brain_rdms", brain, images)
        squares = write_model_rdms(tmp_path / folder / "model_rdms", model, layers, images)
        tables.append(net2brain_results(stacks, squares, layers))
    pd.testing.assert_frame_equal(*tables)
    written = sorted(path.relative_to(tmp_path / "memory") for path in (tmp_path / "memory").rglob("*.*"))
    assert written == sorted(path.relative_to(tmp_path / "stored") for path in (tmp_path / "stored").rglob("*.*"))
    for path in written:
        assert (tmp_path / "memory" / path).read_bytes() == (tmp_path / "stored" / path).read_bytes(), path


def test_subjects_who_share_no_image_give_empty_but_valid_files(tmp_path):
    regions, models = _regions(np.random.default_rng(1))
    regions = {roi: [RDM(item.upper, tuple(f"{item.meta['subject']}_{n}" for n in item.stimuli), item.dissimilarity,
                         item.name, item.meta) for item in rdms] for roi, rdms in regions.items()}
    images = shared_images([item.stimuli for rdms in regions.values() for item in rdms], IMAGES)
    assert images == ()
    stacks = write_brain_rdms(tmp_path / "brain", regions, images)
    squares = write_model_rdms(tmp_path / "models", models, {"pixels": ("pixels", "output"), "vit_l3": ("vit", "3")},
                               images)
    assert np.load(tmp_path / "brain" / "EarlyVis.npz")["arr_0"].shape == (3, 0, 0)
    assert np.load(tmp_path / "models" / "vit" / "RDM_3.npz")["arr_0"].shape == (0, 0)
    table = net2brain_results(stacks, squares, {"pixels": ("pixels", "output"), "vit_l3": ("vit", "3")})
    assert table.empty and list(table.columns) == list(NET2BRAIN_COLUMNS)


def _trials(rng):
    """CSI1 sees a, b twice and c; CSI2 sees b, c, d; CSI1 has 3 voxels, CSI2 2."""
    return {"CSI1": StimulusMatrix("trials/CSI1", rng.standard_normal((5, 3)).astype(np.float32),
                                   ("a", "b", "a", "c", "b")),
            "CSI2": StimulusMatrix("trials/CSI2", rng.standard_normal((3, 2)).astype(np.float32), ("d", "b", "c"))}


def _voxels():
    return pd.DataFrame({"subject": ["CSI1"] * 3 + ["CSI2"] * 2, "column": [0, 1, 2, 0, 1],
                         "region": ["EarlyVis", "EarlyVis", "LOC", "EarlyVis", "LOC"],
                         "hemisphere": ["LH", "RH", "LH", "LH", "RH"], "voxel_x": [1, 2, 3, 4, 5],
                         "voxel_y": [0, 0, 0, 1, 1], "voxel_z": [7, 7, 7, 8, 8],
                         "noise_ceiling": [10.0, 20.0, 30.0, np.nan, np.nan]})


def test_the_assembly_holds_every_trial_in_brainscores_layout(tmp_path):
    import xarray as xr

    trials = _trials(np.random.default_rng(2))
    assembly = neural_assembly(trials, _voxels(), ("d", "c", "b", "a"))
    assert assembly.dims == ("presentation", "neuroid", "time_bin")
    assert set(assembly.coords) == {"stimulus_id", "repetition", "neuroid_id", "subject", "region", "hemisphere",
                                    "voxel_x", "voxel_y", "voxel_z", "noise_ceiling", "time_bin_start",
                                    "time_bin_end"}
    # presentations in the stimulus order, then by repetition
    assert list(zip(assembly["stimulus_id"].values, assembly["repetition"].values)) == [
        ("d", 0), ("c", 0), ("b", 0), ("b", 1), ("a", 0), ("a", 1)]
    assert list(assembly["neuroid_id"].values) == ["CSI1.0", "CSI1.1", "CSI1.2", "CSI2.0", "CSI2.1"]
    write_assembly(assembly, tmp_path / "assembly.nc")
    loaded = xr.open_dataarray(tmp_path / "assembly.nc").load()
    assert loaded.dims == assembly.dims and loaded.shape == (6, 5, 1)
    for subject, matrix in trials.items():
        seen: dict[str, int] = {}
        for row, image in enumerate(matrix.stimuli):
            repetition = seen.get(image, 0)
            seen[image] = repetition + 1
            cell = loaded.isel(presentation=(loaded["stimulus_id"].values == image)
                               & (loaded["repetition"].values == repetition),
                               neuroid=loaded["subject"].values == subject, time_bin=0)
            np.testing.assert_array_equal(cell.values[0], matrix.matrix[row])
    # a presentation the subject did not have is NaN: CSI2 never saw a, nor b twice
    csi2 = loaded.isel(neuroid=loaded["subject"].values == "CSI2", time_bin=0)
    assert np.isnan(csi2.values[[3, 4, 5]]).all() and not np.isnan(csi2.values[[0, 1, 2]]).any()
    assert list(loaded["noise_ceiling"].values[:3]) == [10.0, 20.0, 30.0]
    assert list(loaded["voxel_x"].values) == [1, 2, 3, 4, 5]


def test_an_image_outside_the_stimulus_table_is_refused():
    with pytest.raises(NeurolatentError, match="CSI1: image 'a' is not in the stimulus table"):
        neural_assembly(_trials(np.random.default_rng(3)), _voxels(), ("b", "c", "d"))


def test_stimulus_set_paths_resolve_from_its_final_folder(tmp_path):
    raw = tmp_path / "raw"
    (raw / "stimuli").mkdir(parents=True)
    (raw / "stimuli" / "a.jpg").write_bytes(b"jpeg")
    stimuli = pd.DataFrame({"image_name": ["a.jpg"], "category": ["COCO"], "image_path": ["stimuli/a.jpg"]})
    final = tmp_path / "exports" / "brainscore"
    table = write_stimulus_set(stimuli, raw, tmp_path / "scratch.csv", final)
    assert list(table.columns) == ["stimulus_id", "image_file_name", "category", "image_path"]
    assert (final / table.loc[0, "image_path"]).resolve() == (raw / "stimuli" / "a.jpg").resolve()
    assert pd.read_csv(tmp_path / "scratch.csv").equals(table)


def test_the_plugin_skeleton_is_brainscores_layout(tmp_path):
    templates = Path(str(resources.files("neurolatent") / "resources" / "brainscore_plugin"))
    write_plugin(templates, tmp_path, "my_bold", ["EarlyVis", "LOC"])
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.py"))
    assert files == ["benchmarks/my_bold/__init__.py", "benchmarks/my_bold/benchmark.py", "data/my_bold/__init__.py"]
    for path in files:
        text = (tmp_path / path).read_text()
        ast.parse(text)
        assert "{identifier}" not in text and "{REGION}" not in text
    # a literal registration a line, as brainscore_core's import_plugin searches for them
    registrations = [line for line in (tmp_path / "benchmarks/my_bold/__init__.py").read_text().splitlines()
                     if line.startswith("benchmark_registry[")]
    assert registrations == [f'benchmark_registry["my_bold.{roi}-{kind}"] = lambda: Bold5000{cls}("{roi}")'
                             for kind, cls in (("ridge", "Ridge"), ("rdm", "RDM")) for roi in ("EarlyVis", "LOC")]
    assert 'data_registry["my_bold"]' in (tmp_path / "data/my_bold/__init__.py").read_text()


SIDE_PYTHON = Path(__file__).resolve().parents[2] / ".brainscore-env" / "bin" / "python"


@pytest.mark.skipif(not SIDE_PYTHON.is_file(), reason="Brain-Score's classes need numpy < 2: build the side "
                    "environment with `make brainscore-env` (tests/data/brainscore/requirements.txt)")
def test_brainscores_own_classes_load_the_assembly_and_its_stimulus_set(tmp_path):
    import subprocess

    trials = _trials(np.random.default_rng(4))
    write_assembly(neural_assembly(trials, _voxels(), ("d", "c", "b", "a")), tmp_path / "assembly.nc")
    (tmp_path / "images").mkdir()
    for name in "abcd":
        (tmp_path / "images" / f"{name}.jpg").write_bytes(b"jpeg")
    stimuli = pd.DataFrame({"image_name": list("abcd"), "category": ["COCO", "COCO", "Scene", "ImageNet"],
                            "image_path": [f"images/{n}.jpg" for n in "abcd"]})
    write_stimulus_set(stimuli, tmp_path, tmp_path / "stimulus_set.csv", tmp_path)
    script = Path(__file__).resolve().parents[1] / "data" / "brainscore" / "load_assembly.py"
    found = json.loads(subprocess.run([str(SIDE_PYTHON), str(script), str(tmp_path)], capture_output=True, text=True,
                                      check=True).stdout)
    assert found["class"] == "NeuroidAssembly" and found["dims"] == ["presentation", "neuroid", "time_bin"]
    assert found["neuroid_id"] == ["CSI1.0", "CSI1.1", "CSI1.2", "CSI2.0", "CSI2.1"]
    assert found["category"] == ["COCO", "ImageNet", "Scene"]  # the stimulus set merged into the presentations
    assert Path(found["stimulus_path"]).is_file()
    # every cell as the samples: CSI1's second showing of a is its third trial, CSI2 never saw a
    a_twice = found["cells"]["a/1"]
    np.testing.assert_array_equal(a_twice[:3], trials["CSI1"].matrix[2])
    assert a_twice[3:] == [None, None]
    np.testing.assert_array_equal(found["cells"]["d/0"][3:], trials["CSI2"].matrix[0])


VISION_PYTHON = Path(__file__).resolve().parents[2] / ".brainscore-vision-env" / "bin" / "python"
VISION_CLONE = Path(os.environ.get("BRAINSCORE_VISION", "/nonexistent"))


@pytest.mark.skipif(not (VISION_PYTHON.is_file() and (VISION_CLONE / "brainscore_vision").is_dir()),
                    reason="brain-score/vision's own code: set BRAINSCORE_VISION to a clone of it and build the side "
                    "environment with `make brainscore-vision-env BRAINSCORE_VISION=<clone>`")
def test_the_plugin_registers_and_scores_inside_a_brain_score_vision_clone(tmp_path):
    """The export's plugin copied into the clone as its README says, through Brain-Score's own
    load_dataset, load_benchmark, ceilings and scoring (tests/data/brainscore/vision_check.py), on two
    subjects whose 100 EarlyVis voxels each are a linear map of the images' 8 x 8 pixels (mixes of 5
    patterns) plus noise, 12 of 60 images shown 4 times: the pixels stand-in model predicts them, under
    a high ceiling."""
    import subprocess

    from PIL import Image

    rng = np.random.default_rng(5)
    names = [f"img{i:02d}.png" for i in range(60)]
    (tmp_path / "images").mkdir()
    # each image a mix of 5 random patterns: structure a random map of its pixels keeps, as the RDMs need
    patterns = rng.uniform(0, 255, (5, 32, 32, 3))
    pixels = []
    for name in names:
        image = Image.fromarray(np.tensordot(rng.dirichlet(np.ones(5)), patterns, 1).astype(np.uint8))
        image.save(tmp_path / "images" / name)
        pixels.append(np.asarray(image.resize((8, 8)), dtype=float).ravel())  # what the stand-in model sees
    pixels = np.array(pixels)
    pixels = (pixels - pixels.mean(axis=0)) / pixels.std(axis=0)
    shown = names[:12] * 4 + names[12:]
    trials, rows = {}, []
    for subject in ("CSI1", "CSI2"):
        signal = pixels @ rng.standard_normal((pixels.shape[1], 100)) / np.sqrt(pixels.shape[1])
        order = rng.permutation(len(shown))
        seen = [shown[i] for i in order]
        values = signal[[names.index(n) for n in seen]] + 0.5 * rng.standard_normal((len(seen), 100))
        trials[subject] = StimulusMatrix(f"trials/{subject}", values.astype(np.float32), tuple(seen))
        rows.append(pd.DataFrame({"subject": subject, "column": np.arange(100), "region": "EarlyVis",
                                  "hemisphere": "LH", "voxel_x": np.arange(100), "voxel_y": 0, "voxel_z": 0, "noise_ceiling": 80.0}))
    export = tmp_path / "brainscore"
    export.mkdir()
    write_assembly(neural_assembly(trials, pd.concat(rows, ignore_index=True), tuple(names)), export / "assembly.nc")
    write_stimulus_set(pd.DataFrame({"image_name": names, "category": "coco", "image_path": [f"images/{n}" for n in names]}),
                       tmp_path, export / "stimulus_set.csv", export)
    identifier = "neurolatent_vision_check"
    write_plugin(Path(str(resources.files("neurolatent") / "resources" / "brainscore_plugin")), export / "plugin",
                 identifier, ["EarlyVis"])
    script = Path(__file__).resolve().parents[1] / "data" / "brainscore" / "vision_check.py"
    # no pip installs of the metrics' requirements; the caches of ceilings (by benchmark identifier) and of images
    # placed on screen here, not in $HOME (without a cache the ridge benchmark computes its ceiling once a subject)
    environment = {**os.environ, "BS_INSTALL_DEPENDENCIES": "no", "RESULTCACHING_HOME": str(tmp_path / "cache"),
                   "BRAINSCORE_HOME": str(tmp_path / "brain-score")}
    try:
        done = subprocess.run([str(VISION_PYTHON), str(script), str(VISION_CLONE), str(export), identifier],
                              capture_output=True, text=True, env=environment)
    finally:
        for kind in ("data", "benchmarks"):
            shutil.rmtree(VISION_CLONE / "brainscore_vision" / kind / identifier, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["presentations"] == 60 + 12 * 3 and found["neuroids"] == 200 and found["stimuli"] == 60
    benchmarks = found["benchmarks"]
    assert sorted(benchmarks) == [f"{identifier}.EarlyVis-rdm", f"{identifier}.EarlyVis-ridge"]
    ridge, rdm = benchmarks[f"{identifier}.EarlyVis-ridge"], benchmarks[f"{identifier}.EarlyVis-rdm"]
    # split-half consistency of 4 showings at noise sd 0.5 against a unit-variance signal: near 1
    assert 0.8 < ridge["ceiling"] <= 1.0
    # ridge from 48 training images' 192 pixels predicts a linear map of them on the 12 repeated ones
    assert ridge["raw"] > 0.2 and ridge["score"] > 0
    assert 0.3 < rdm["ceiling"] <= 1.0 and rdm["raw"] > 0.3 and rdm["score"] == pytest.approx(rdm["raw"] / rdm["ceiling"])
