"""The numbers of the results page (docs/results.md), made from the committed outputs.

Each table or line marked ``<!-- results-table: NAME -->`` / ``<!-- results-line: STAGE -->`` in
docs/results.md is made here from metrics/, plots/ and reports/ (what ``make repro``, ``make
compare`` and ``make ablation`` commit). ``python docs/results_tables.py --write`` (``make
results-pages``) writes them into the page after a run moved a number; without ``--write`` it prints
the stale ones and exits 1 (``tests/docs/test_results_page.py`` runs the same check).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import pandas as pd

from neurolatent.pipeline.cli import _closing_line

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "results.md"
ROIS = ("EarlyVis", "LOC", "OPA", "PPA", "RSC")
PLANTED_IN = {"EarlyVis": "lowlevel", "LOC": "object", "OPA": "scene", "PPA": "scene", "RSC": "scene"}
#: a marked table is the run of table rows after its marker; a marked line is the fenced block after it
MARKED = re.compile(r"<!-- results-(table|line): ([^>]+) -->\n((?:\|.*\n)+|```\n.*\n```\n)")


def _metrics(root: Path, stage: str) -> dict:
    return json.loads((root / "metrics" / f"{stage}.json").read_text())


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def rsa_rois(root: Path) -> list[str]:
    """Group Spearman r of each ROI's samples with each planted family, the category model and
    pixels, the ROI's own family in bold, and its lower noise ceiling (plots/rsa/rois.csv)."""
    table = pd.read_csv(root / "plots" / "rsa" / "rois.csv")
    table = table[table["fmri"] == "samples"]
    models = ("planted_lowlevel", "planted_object", "planted_scene", "category", "pixels")
    lines = [_row(["ROI (planted family)", *models, "lower noise ceiling"]), "|" + "---|" * 7]
    for roi in ROIS:
        own = table[table["roi"] == roi].set_index("model")
        cells = [f"**{own.loc[m, 'r']:.3f}**" if m == f"planted_{PLANTED_IN[roi]}" else f"{own.loc[m, 'r']:.3f}"
                 for m in models]
        lines.append(_row([f"{roi} ({PLANTED_IN[roi]})", *cells, f"{own['ceiling_low'].iloc[0]:.3f}"]))
    return lines


def encode(root: Path, partition: str, bands: tuple[str, ...], regions: tuple[str, ...], first: str) -> list[str]:
    """Each band's share (encode.partition: split) or unique R^2 (subsets, with the shared part) per
    region with its bootstrap interval, and the joint R^2 (metrics/encode.json)."""
    metrics = _metrics(root, "encode")
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


def ablation(root: Path) -> list[str]:
    """make ablation's reports/ablation/results.csv: r with the planted truth at each SNR and the SVD
    components RSA kept, per configuration and fMRI representation."""
    table = pd.read_csv(root / "reports" / "ablation" / "results.csv")
    planted = table[(table["model"] == "planted") & (table["roi"] == "union")].groupby(
        ["config", "fmri", "snr"])[["r", "components"]].mean()
    snrs = sorted(planted.index.get_level_values("snr").unique())
    lines = [_row(["configuration", "fMRI", *(f"r at SNR {snr:g}" for snr in snrs), "SVD components kept"]),
             "|" + "---|" * (len(snrs) + 3)]
    for (config, fmri), course in planted.groupby(level=["config", "fmri"]):
        course = course.droplevel(["config", "fmri"])
        kept = " / ".join(f"{course.loc[snr, 'components']:.3g}" for snr in snrs)
        lines.append(_row([config, fmri, *(f"{course.loc[snr, 'r']:.3f}" for snr in snrs), kept]))
    return lines


TABLES = {
    "ablation": ablation,
    "rsa rois": rsa_rois,
    "encode planted": lambda root: encode(root, "planted", ("lowlevel", "object", "scene", "noise"), ROIS,
                                          "ROI (planted family)"),
    "encode models": lambda root: encode(root, "models", ("pixels", "image_ae", "untrained_resources_vit-tiny", "noise"),
                                         (*ROIS, "region"), "ROI"),
}


def made(kind: str, name: str, root: Path = ROOT) -> str:
    """What a marked table (its rows) or closing line (its fenced block) is, from the outputs under ``root``."""
    if kind == "table":
        return "\n".join(TABLES[name](root)) + "\n"
    return f"```\n{_closing_line(name, _metrics(root, name))}\n```\n"


def regenerate(page: str, root: Path = ROOT) -> str:
    """``page`` with every marked table and line made again from the outputs under ``root``."""
    return MARKED.sub(lambda m: f"<!-- results-{m[1]}: {m[2]} -->\n{made(m[1], m[2], root)}", page)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="write the tables into docs/results.md")
    page = PAGE.read_text()
    fresh = regenerate(page)
    if parser.parse_args().write:
        PAGE.write_text(fresh)
        return 0
    stale = [m[2] for m in MARKED.finditer(page) if m[0] not in fresh]
    for name in stale:
        print(f"docs/results.md: {name} is not what the committed outputs give (make results-pages)")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
