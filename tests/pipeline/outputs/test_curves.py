"""The few-shot curves: a panel per target, a line per method (its mean over held-out subjects),
the chance level, written as PNG and SVG with the same bytes for the same table."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from neurolatent.pipeline.outputs.curves import fewshot_curves


def _table() -> pd.DataFrame:
    rows = [{"subject": s, "method": m, "k": k, "target": t, "two_way": 0.5 + k / 100 + (m == "srm") * 0.1,
             "ci_low": 0.4, "ci_high": 0.9, "top1": 0.1}
            for s in ("S1", "S2") for m in ("srm", "scratch") for k in (5, 20) for t in ("subjects", "vit")]
    return pd.DataFrame(rows)


def test_a_panel_per_target_and_a_line_per_method(tmp_path, monkeypatch):
    drawn = {}
    save = plt.Figure.savefig

    def keep(figure, path, **kwargs):
        drawn["axes"] = [ax for ax in figure.axes]
        save(figure, path, **kwargs)

    monkeypatch.setattr(plt.Figure, "savefig", keep)
    fewshot_curves(_table(), tmp_path / "fewshot.png")
    assert (tmp_path / "fewshot.png").is_file() and (tmp_path / "fewshot.svg").is_file()
    axes = drawn["axes"]
    assert len(axes) == 2 and axes[0].get_title() == "between subjects"
    lines = {line.get_label(): line for line in axes[0].get_lines()}
    assert set(lines) == {"srm", "scratch", "chance"}
    # the mean over the two held-out subjects at each k
    np.testing.assert_allclose(lines["srm"].get_ydata(), [0.65, 0.8])
    assert list(lines["scratch"].get_xdata()) == [5, 20]
    assert list(lines["chance"].get_ydata()) == [0.5, 0.5]
