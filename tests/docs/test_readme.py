"""The README is a page: at most 300 lines, its table of stages names every stage of the registry,
and what it links to exists."""

from __future__ import annotations

import re
from pathlib import Path

from neurolatent.pipeline.registry import STAGES

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_the_readme_is_at_most_300_lines():
    assert len(README.splitlines()) <= 300


def test_the_readmes_table_of_stages_names_every_stage_in_order():
    listed = re.findall(r"^\| \[?`(\w+)`", README, flags=re.MULTILINE)
    assert listed == list(STAGES)


def test_every_local_file_the_readme_links_exists():
    links = [link for link in re.findall(r"\]\(([^)#]+)\)", README) if "://" not in link]
    assert links, "the README links no file"
    missing = [link for link in links if not (ROOT / link).exists()]
    assert not missing, missing
