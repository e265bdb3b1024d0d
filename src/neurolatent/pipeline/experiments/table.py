"""``make show``: every DVC experiment's headline in one table that fits a terminal, with the
params each experiment changed from its baseline commit.

DVC's own ``dvc exp show`` prints every param and dependency (collapsing columns to "..." when they
do not fit) and never says which param an experiment changed; this reads its JSON and prints one
row per experiment: the headline (metrics/summary.json, 3 significant digits), the planted SNR,
and the changed params, wrapped to the width left.

    python -m neurolatent.pipeline.experiments.table [--width 200]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import textwrap
from typing import Any

from neurolatent.pipeline.tracking import flatten

#: the headline's columns, in the order shown (metrics/summary.json's short names)
COLUMNS = ("samples.r", "samples.lo", "samples.hi", "samples.p", "samples.nc", "ae.r", "ae.p", "2way", "top1",
           "enc.r", "fmri_ae.loss", "image_ae.loss")
SNR = "data.synthetic.snr"


def _state(entry: dict) -> tuple[dict[str, Any], dict[str, Any]]:
    """(params by dotted name, headline metrics) of one ``dvc exp show --json`` state."""
    data = entry.get("data") or {}
    params = flatten(((data.get("params") or {}).get("params.yaml") or {}).get("data") or {})
    metrics = ((data.get("metrics") or {}).get("metrics/summary.json") or {}).get("data") or {}
    return params, metrics


def rows(shown: list[dict]) -> list[dict[str, Any]]:
    """One row per baseline and experiment of ``dvc exp show --json``'s output: ``Experiment``, the
    SNR, each of :data:`COLUMNS`, and ``changed`` ("key=value, ..." against the baseline)."""
    out = []
    for baseline in shown:
        base_params, base_metrics = _state(baseline)
        name = baseline.get("name") or ("workspace" if baseline.get("rev") == "workspace" else baseline["rev"][:7])
        out.append({"Experiment": name, "snr": base_params.get(SNR), **{c: base_metrics.get(c) for c in COLUMNS},
                    "changed": ""})
        for group in baseline.get("experiments") or []:
            for state in group.get("revs", [])[:1]:
                params, metrics = _state(state)
                changed = [f"{key}={json.dumps(value)}" for key, value in params.items()
                           if base_params.get(key) != value]
                out.append({"Experiment": "  " + (group.get("name") or state.get("name") or state["rev"][:7]),
                            "snr": params.get(SNR), **{c: metrics.get(c) for c in COLUMNS},
                            "changed": ", ".join(changed) or "(none)"})
    return out


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def render(table: list[dict[str, Any]], width: int) -> str:
    """The rows as text at most ``width`` characters wide; the ``changed`` column wraps."""
    names = ["Experiment", "snr", *COLUMNS]
    cells = [[_cell(row[name]) for name in names] for row in table]
    widths = [max(len(name), *(len(r[i]) for r in cells)) for i, name in enumerate(names)]
    fixed = sum(widths) + 2 * len(widths)
    left = max(20, width - fixed)
    lines = ["  ".join(name.ljust(w) for name, w in zip(names, widths)) + "  changed"]
    for row, cell in zip(table, cells):
        first = "  ".join(c.ljust(w) for c, w in zip(cell, widths)) + "  "
        wrapped = textwrap.wrap(row["changed"], left) or [""]
        lines.append(first + wrapped[0])
        lines += [" " * len(first) + more for more in wrapped[1:]]
    return "\n".join(line.rstrip() for line in lines)


def main(argv: list[str] | None = None) -> int:
    """Print the table of this project's experiments; 1 when dvc exp show fails."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=min(200, shutil.get_terminal_size((200, 24)).columns))
    args = parser.parse_args(argv)
    shown = subprocess.run([sys.executable, "-m", "dvc", "exp", "show", "--json"], capture_output=True, text=True)
    if shown.returncode != 0:
        print(f"make show: dvc exp show failed: {shown.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return 1
    print(render(rows(json.loads(shown.stdout)), args.width))
    return 0


if __name__ == "__main__":
    sys.exit(main())
