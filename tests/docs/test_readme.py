"""The README's numbers come from the committed outputs: each table or line marked
``<!-- readme-table: NAME -->`` / ``<!-- readme-line: STAGE -->`` is made again here from
metrics/ and plots/ (what `make repro` commits) and must be what the README shows. After a change
that moves a number, `make repro`, then paste what this test prints."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from neurolatent.pipeline.cli import _closing_line

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
ROIS = ("EarlyVis", "LOC", "OPA", "PPA", "RSC")
PLANTED_IN = {"EarlyVis": "lowlevel", "LOC": "object", "OPA": "scene", "PPA": "scene", "RSC": "scene"}


def _metrics(stage: str) -> dict:
    return json.loads((ROOT / "metrics" / f"{stage}.json").read_text())


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _rsa_rois() -> list[str]:
    table = pd.read_csv(ROOT / "plots" / "rsa" / "rois.csv")
    table = table[table["fmri"] == "samples"]
    models = ("planted_lowlevel", "planted_object", "planted_scene", "category", "pixels")
    lines = [_row(["ROI (planted family)", *models, "lower noise ceiling"]), "|" + "---|" * 7]
    for roi in ROIS:
        own = table[table["roi"] == roi].set_index("model")
        cells = [f"**{own.loc[m, 'r']:.3f}**" if m == f"planted_{PLANTED_IN[roi]}" else f"{own.loc[m, 'r']:.3f}"
                 for m in models]
        lines.append(_row([f"{roi} ({PLANTED_IN[roi]})", *cells, f"{own['ceiling_low'].iloc[0]:.3f}"]))
    return lines


def _encode(partition: str, bands: tuple[str, ...], regions: tuple[str, ...], first: str) -> list[str]:
    metrics = _metrics("encode")
    # each band's share (encode.partition: split) or unique R^2 (subsets, with the shared parts)
    kind = "share" if f"encode.{partition}.{regions[0]}.{bands[0]}.share" in metrics else "unique"
    shared = ["shared"] if kind == "unique" else []
    lines = [_row([first, *(b if b != "noise" else "noise (control)" for b in bands), *shared, "all bands"]),
             "|" + "---|" * (len(bands) + 2 + len(shared))]
    for roi in regions:
        cells = []
        for band in bands:
            key = f"encode.{partition}.{roi}.{band}"
            cell = f"{metrics[f'{key}.{kind}']:.3f} [{metrics[key + '.ci_low']:.3f}, {metrics[key + '.ci_high']:.3f}]"
            cells.append(f"**{cell}**" if partition == "planted" and band == PLANTED_IN[roi] else cell)
        name = f"{roi} ({PLANTED_IN[roi]})" if partition == "planted" else roi
        lines.append(_row([name, *cells, *(f"{metrics[f'encode.{partition}.{roi}.shared']:.3f}" for _ in shared),
                           f"{metrics[f'encode.{partition}.{roi}.full']:.3f}"]))
    return lines


def _ablation() -> list[str]:
    """make ablation's reports/ablation/results.csv: r with the planted truth at each SNR and the SVD
    components RSA kept, per configuration and fMRI representation."""
    table = pd.read_csv(ROOT / "reports" / "ablation" / "results.csv")
    planted = table[(table["model"] == "planted") & (table["roi"] == "union")].groupby(["config", "fmri", "snr"])[["r", "components"]].mean()
    snrs = sorted(planted.index.get_level_values("snr").unique())
    lines = [_row(["configuration", "fMRI", *(f"r at SNR {snr:g}" for snr in snrs), "SVD components kept"]),
             "|" + "---|" * (len(snrs) + 3)]
    for (config, fmri), course in planted.groupby(level=["config", "fmri"]):
        course = course.droplevel(["config", "fmri"])
        kept = " / ".join(f"{course.loc[snr, 'components']:.3g}" for snr in snrs)
        lines.append(_row([config, fmri, *(f"{course.loc[snr, 'r']:.3f}" for snr in snrs), kept]))
    return lines


TABLES = {
    "ablation": _ablation,
    "rsa rois": _rsa_rois,
    "encode planted": lambda: _encode("planted", ("lowlevel", "object", "scene", "noise"), ROIS, "ROI (planted family)"),
    "encode models": lambda: _encode("models", ("pixels", "image_ae", "untrained_resources_vit-tiny", "noise"),
                                     (*ROIS, "region"), "ROI"),
}


def _shown(marker: str) -> list[str]:
    after = README.split(f"<!-- {marker} -->\n", 1)
    assert len(after) == 2, f"README has no <!-- {marker} -->"
    return list(re.match(r"((?:\|.*\n)+)", after[1]).group(1).splitlines()) if after[1].startswith("|") else \
        after[1].split("```\n", 2)[1].splitlines()


@pytest.mark.parametrize("name", list(TABLES))
def test_a_readme_table_is_the_committed_outputs(name):
    made = TABLES[name]()
    assert _shown(f"readme-table: {name}") == made, "\n".join(made)


@pytest.mark.parametrize("stage", ["rsa"])
def test_a_readme_closing_line_is_the_committed_metrics(stage):
    made = _closing_line(stage, _metrics(stage))
    assert _shown(f"readme-line: {stage}") == [made], made


def test_every_marked_number_is_tested():
    marked = set(re.findall(r"<!-- readme-(?:table|line): ([^>]+) -->", README))
    assert marked == set(TABLES) | {"rsa"}
