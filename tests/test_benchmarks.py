"""Every benchmark keeps working: each ``benchmarks/*.py`` script with a ``main`` runs with
``--smoke`` (a tiny size, the same code path, seconds) and prints its result line, the ratio or
rate its measurement is for. A new benchmark must be listed here (the first test says so)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

#: each benchmark and the line its smoke run must print
RESULT_LINES = {
    "align_snr_k.py": r"\| \('planted', 1\.0, 0, 'srm'\) +\| +[\d.]+",
    "bench_autoencoder.py": r"AE train \(128 px\) +CPU +[\d.]+ samples/s",
    "bench_encoding.py": r"\| smoke \|.*\| banded ridge, numpy \| [\d.]+ \| [\d.]+ \|",
    "bench_fmri_throughput.py": r"betas +[\d.]+ s +throughput ratio [\d.]+x of reading",
    "bench_numerics.py": r"Mantel kernel \(200 permutations, n = 300\) .*\( *[\d.]+x\)",
    "bench_render.py": r"64 px +nilearn .* = +[\d.]+x, 37 trial volumes",
    "bench_rsa.py": r"spearman +ours .* rsatoolbox .* [\d.]+x +\(\|difference\| [\d.e+-]+\)",
    "render_study_match.py": r"\| all \| 6 \| [\d.]+ \| [\d.]+ \| [\d.-]+ \| [\d.-]+ \|",
    "full_size.py": r"every stage after the twin [\d.]+ min \(target <= 45 min",
}


def test_every_benchmark_has_a_smoke_run_listed():
    scripts = {path.name for path in BENCHMARKS.glob("*.py") if "def main(" in path.read_text()}
    assert scripts == set(RESULT_LINES)


@pytest.mark.parametrize("script", sorted(RESULT_LINES))
def test_benchmark_smoke_run_exits_0_and_prints_its_result(script):
    env = {**os.environ, "PYTHONPATH": str(BENCHMARKS)}
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), "--smoke"], capture_output=True, text=True,
                          env=env, timeout=600, cwd=BENCHMARKS.parent)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert re.search(RESULT_LINES[script], done.stdout), done.stdout[-2000:]


def test_the_readme_table_is_the_committed_full_size_run(tmp_path):
    """README.md's full-size table is what `full_size.py --readme` writes from the committed JSON."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import full_size
    finally:
        sys.path.remove(str(BENCHMARKS))
    result = json.loads((BENCHMARKS / "results" / "full_size.json").read_text())
    readme = (BENCHMARKS.parent / "README.md").read_text()
    copy = tmp_path / "README.md"
    copy.write_text(readme)
    full_size.write_readme(result, copy)
    assert copy.read_text() == readme, "README.md's full-size table is stale: run full_size.py --readme"
    assert "full size (CSI1-CSI4, 2 mm)" in readme and result["scale"]["runs"] > 500
