"""The gallery's examples (examples/plot_*.py) run as sphinx-gallery runs them: each in a fresh
process, its figures saved afterwards (sphinx-gallery's matplotlib scraper collects the open
figures); each must exit 0, draw at least one figure that is not blank, and be in sphinx-gallery's
format (a module docstring with an RST title, and the gallery's README beside them)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCRIPTS = sorted(EXAMPLES.glob("plot_*.py"))
#: run the example as __main__, then save every figure it left open, as sphinx-gallery's scraper does
RUN_AND_SAVE = """
import runpy, sys
import matplotlib.pyplot as plt
runpy.run_path(sys.argv[1], run_name="__main__")
for number in plt.get_fignums():
    plt.figure(number).savefig(f"figure_{number}.png", dpi=50)
"""


def test_gallery_has_its_examples():
    """The gallery's README (title and intro) is there, and the six topics issue #40 asks for."""
    lines = (EXAMPLES / "README.rst").read_text().splitlines()
    assert any(title.strip() and underline == "=" * len(title) for title, underline in zip(lines, lines[1:]))
    assert len(SCRIPTS) >= 6


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_example_runs_and_draws(script, tmp_path):
    docstring = ast.get_docstring(ast.parse(script.read_text()), clean=False)
    title = docstring.strip().splitlines()
    assert title[1] == "=" * len(title[0]), f"{script.name}: the docstring must open with an RST title"
    env = os.environ | {"MPLBACKEND": "Agg"}
    result = subprocess.run([sys.executable, "-c", RUN_AND_SAVE, str(script)], cwd=tmp_path, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, f"{script.name} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    figures = sorted(tmp_path.glob("figure_*.png"))
    assert figures, f"{script.name} drew no figure"
    for figure in figures:
        pixels = np.asarray(Image.open(figure).convert("L"))
        assert pixels.std() > 5, f"{script.name}: {figure.name} is blank"
    assert sorted(p.name for p in tmp_path.iterdir()) == [f.name for f in figures], \
        f"{script.name} left files in its working directory"
