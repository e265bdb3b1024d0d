"""``make show``'s table from ``dvc exp show --json``: a row per baseline and experiment, the params
each experiment changed, numbers to 3 digits, and the changed column wrapped to the width."""

from __future__ import annotations

from neurolatent.pipeline.experiments.table import COLUMNS, render, rows


def _state(snr: float, r: float, **params) -> dict:
    return {"data": {"params": {"params.yaml": {"data": {"data": {"synthetic": {"snr": snr}}, **params}}},
                     "metrics": {"metrics/summary.json": {"data": {"samples.r": r}}}}}


SHOWN = [{"rev": "workspace", **_state(1.0, 0.25, rsa={"permutations": 10})},
         {"rev": "abcdef123", "name": "main", **_state(1.0, 0.25, rsa={"permutations": 10}),
          "experiments": [{"name": "exp-1", "revs": [_state(2.0, 0.5123, rsa={"permutations": 20})]}]}]


def test_a_row_per_state_with_what_each_experiment_changed():
    table = rows(SHOWN)
    assert [row["Experiment"] for row in table] == ["workspace", "main", "  exp-1"]
    assert table[2]["changed"] == "data.synthetic.snr=2.0, rsa.permutations=20"
    assert table[2]["snr"] == 2.0 and table[2]["samples.r"] == 0.5123 and table[0]["changed"] == ""
    assert set(COLUMNS) <= set(table[0])


def test_render_fits_the_width_and_wraps_the_changes():
    lines = render(rows(SHOWN), 400).splitlines()
    assert len(lines) == 4 and lines[0].startswith("Experiment") and lines[0].endswith("changed")
    assert "0.512 " in lines[3] and " - " in lines[1]  # 3 digits; a missing metric is a dash
    assert lines[3].endswith("data.synthetic.snr=2.0, rsa.permutations=20")
    narrow = render(rows(SHOWN), 120).splitlines()  # 20 characters left for the changes
    column = lines[0].index("changed")
    assert len(narrow) > 4 and all(line[:column].strip() == "" for line in narrow[4:])
