"""The documentation site's generated parts: each stage's guide shows the params the stage declares
(from the one declaration in pipeline/params.py) and its files (from pipeline/registry.py), every
stage has a guide in the toctree, and the package docstrings that list modules list them all."""

from __future__ import annotations

import importlib.util
import pkgutil
import re
from pathlib import Path

import pytest

import neurolatent.science
from neurolatent.pipeline.params_docs import explain, table
from neurolatent.pipeline.registry import STAGES

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("neurolatent_docs", ROOT / "docs" / "_ext" / "neurolatent_docs.py")
neurolatent_docs = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(neurolatent_docs)


@pytest.mark.parametrize("name", list(STAGES))
def test_a_stage_guides_params_are_the_keys_its_help_lists(name):
    """The table and `neurolatent <stage> --help` come from the same declaration: same keys, same order."""
    shown = re.findall(r"^\| `([\w.]+)` \|", table(STAGES[name].params), flags=re.MULTILINE)
    assert shown == [line.split(" (", 1)[0] for line in explain(STAGES[name].params)]
    page = neurolatent_docs.stage_page(name)
    assert all(f"`{key}`" in page for key in shown)


def test_a_stage_guide_lists_every_file_it_reads_and_writes():
    page = neurolatent_docs.stage_page("rsa")
    assert all(f"`{file.path}`" in page for file in STAGES["rsa"].files)
    assert "| `metrics/rsa.json` |" in page


def test_every_stage_has_a_guide_in_the_toctree():
    index = (ROOT / "docs" / "stages" / "index.md").read_text()
    toctree = index.split("```{toctree}", 1)[1].split("```", 1)[0].split()
    assert [entry for entry in toctree if not entry.startswith(":")] == list(STAGES)
    for name in STAGES:
        assert f"_generated/{name}.md" in (ROOT / "docs" / "stages" / f"{name}.md").read_text()


def test_the_science_package_docstring_names_every_module():
    modules = {module.name for module in pkgutil.iter_modules(neurolatent.science.__path__)}
    named = set(re.findall(r"``(\w+)``", neurolatent.science.__doc__))
    assert modules <= named, sorted(modules - named)


def test_writing_the_generated_parts_replaces_what_a_previous_build_wrote(tmp_path):
    (tmp_path / "rsa.md").write_text("stale")
    neurolatent_docs.write(tmp_path)
    assert (tmp_path / "rsa.md").read_text() == neurolatent_docs.stage_page("rsa")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{n}.md" for n in STAGES] + [f"{n}-help.md" for n in STAGES] + ["index.md"])
