"""The results page's numbers are the committed outputs: every table and closing line marked in
docs/results.md is made again from metrics/, plots/ and reports/ (docs/results_tables.py) and must
be what the page shows. After a change that moves a number: `make repro`, then `make results-pages`."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("results_tables", ROOT / "docs" / "results_tables.py")
results_tables = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(results_tables)
PAGE = (ROOT / "docs" / "results.md").read_text()
MARKERS = re.findall(r"<!-- results-(table|line): ([^>]+) -->", PAGE)


@pytest.mark.parametrize("kind, name", MARKERS, ids=[name for _, name in MARKERS])
def test_a_marked_table_or_line_is_the_committed_outputs(kind, name):
    shown = re.search(rf"<!-- results-{kind}: {re.escape(name)} -->\n((?:\|.*\n)+|```\n.*\n```\n)", PAGE)
    assert shown is not None, f"docs/results.md: nothing follows <!-- results-{kind}: {name} -->"
    assert shown[1] == results_tables.made(kind, name), results_tables.made(kind, name)


def test_every_table_the_generator_makes_is_on_the_page():
    assert {name for kind, name in MARKERS if kind == "table"} == set(results_tables.TABLES)
    assert ("line", "rsa") in MARKERS


def test_regenerating_rewrites_a_stale_table_and_leaves_the_prose(tmp_path):
    """What `make results-pages` does: a number edited by hand comes back from the outputs, and
    nothing outside the marked blocks moves."""
    for part in ("metrics", "plots/rsa", "reports/ablation"):
        (tmp_path / part).parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(ROOT / part, tmp_path / part)
    first = results_tables.made("table", "rsa rois")
    stale = PAGE.replace(first, first.replace("| EarlyVis (lowlevel) | **", "| EarlyVis (lowlevel) | **9", 1))
    assert stale != PAGE
    assert results_tables.regenerate(stale, tmp_path) == PAGE
