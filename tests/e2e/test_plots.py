"""`dvc plots show` on this project's own plots (in git): each file drawn by one definition, the bar
charts' templates from .dvc/plots/ with their chance line, CI and noise ceiling, rendered offline by
vl-convert (what DVC's HTML draws) into ``test-artifacts/`` to be looked at."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def shown() -> dict:
    result = subprocess.run([sys.executable, "-m", "dvc", "plots", "show", "--json"], cwd=ROOT, capture_output=True,
                            text=True, check=True)
    return json.loads(result.stdout)["data"]


def test_every_plot_file_is_drawn_once(shown):
    """dvc.yaml's top-level definitions name each file once, no stage declares plots of its own,
    and `dvc plots show` draws exactly those definitions (no second one DVC made of a stage output)."""
    import yaml

    dvc_yaml = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    ids, files = [], []
    for entry in dvc_yaml["plots"]:
        if isinstance(entry, str):
            ids.append(entry)
            files.append(entry)
        else:
            (name, definition), = entry.items()
            ids.append(name)
            files += list(definition["y"])
    assert len(files) == len(set(files)), Counter(files)
    assert not [name for name, stage in dvc_yaml["stages"].items() if "plots" in stage]
    assert sorted(shown) == sorted(ids)


def _layers(spec: dict) -> list[dict]:
    return spec.get("spec", spec).get("layer", [spec.get("spec", spec)])


def test_identification_has_its_chance_line_and_null_tick_and_is_faceted(shown):
    spec = shown["identification"][0]["content"]
    layers = _layers(spec)
    assert {"datum": 0.5} in [layer["encoding"].get("x") for layer in layers]
    assert any(layer["encoding"].get("x", {}).get("field") == "chance_high" for layer in layers)
    assert spec["facet"]["row"]["field"] == "fmri"  # 36 bars as three short panels, not one column
    assert "<DVC_METRIC" not in json.dumps(spec)  # every anchor of the template filled


def test_rsa_per_model_has_ci_and_noise_ceiling(shown):
    spec = shown["rsa_per_model"][0]["content"]
    fields = {json.dumps(layer["encoding"].get("x", {})) + json.dumps(layer["encoding"].get("x2", {}))
              for layer in _layers(spec)}
    assert any('"ci_low"' in f and '"ci_high"' in f for f in fields)
    assert any("lower" in f and "upper" in f for f in fields)


def test_the_roi_heatmap_is_a_grid_of_regions_by_models_with_corrected_stars(shown):
    spec = shown["roi_heatmap"][0]["content"]
    marks = {layer["mark"]["type"] for layer in _layers(spec)}
    assert marks == {"rect", "text"} and "p_fwe" in json.dumps(spec["transform"])
    assert spec["facet"]["row"]["field"] == "fmri"


@pytest.mark.parametrize("name", ["identification", "rsa_per_model", "fmri_ae_loss", "roi_heatmap"])
def test_the_vega_lite_specs_render(shown, name, artifacts):
    import vl_convert

    png = vl_convert.vegalite_to_png(shown[name][0]["content"], scale=1.5)
    assert len(png) > 20_000
    (artifacts / f"dvc_plot_{name}.png").write_bytes(png)
    svg = vl_convert.vegalite_to_svg(shown[name][0]["content"])
    if name == "fmri_ae_loss":
        assert "loss (MSE per element)" in svg and ">y<" not in svg
    if name == "identification":
        assert "2-way identification accuracy" in svg
