"""A metric against the planted SNR over a sweep: a panel per (config, fmri), a line per model."""

from __future__ import annotations

import numpy as np
import pandas as pd

from neurolatent.pipeline.outputs.figures.sweep import sensitivity


def test_sensitivity_draws_a_panel_per_config_and_representation_with_ceiling_and_chance(tmp_path):
    rows = [{"config": config, "fmri": "samples", "model": model, "snr": snr, "seed": seed,
             "r": snr / 4 + (model == "planted") * 0.2, "nc_low": 0.6, "nc_high": 0.8,
             "null_high": 0.1}
            for config in ("study", "corrected") for model in ("planted", "pixels")
            for snr in (0.0, 1.0, 2.0) for seed in (0, 1)]
    table = pd.DataFrame(rows).assign(lo=lambda t: t["r"] - 0.1, hi=lambda t: t["r"] + 0.1)
    sensitivity(table, "r", "RSA r", tmp_path / "r.png", band=("nc_low", "nc_high"),
                interval=("lo", "hi"), chance=0.0, chance_high="null_high")
    svg = (tmp_path / "r.svg").read_text()
    for text in ("study: fMRI samples", "corrected: fMRI samples", "planted", "pixels", "noise ceiling", "chance",
                 "95% of the null", "RSA r"):
        assert text in svg
    # a model without any value is left out of the legend
    table = table.assign(r=lambda t: np.where(t["model"] == "pixels", np.nan, t["r"]))
    sensitivity(table, "r", "RSA r", tmp_path / "only.png")
    assert ">pixels<" not in (tmp_path / "only.svg").read_text()
