"""The comparison report of a sweep, on experiments with known numbers."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from PIL import Image

from neurolatent.pipeline.experiments.report import false_positive_rates, results_table, write_report


def _experiments():
    """Two configurations x SNR {0, 1} x 4 seeds: 'study' sees little, 'corrected' the planted truth;
    at SNR 0 the study's naive p is always tiny and its permutation p is not."""
    rng = np.random.default_rng(0)
    out = []
    for config, snr, seed in itertools.product(("study", "corrected"), (0.0, 1.0), range(4)):
        r = (0.02 if config == "study" else 0.8) * snr + rng.normal(0, 0.005)
        metrics = {"rsa.stimuli_per_subject": 100.0, "rsa.ae.noise_ceiling_lower": 0.9, "rsa.ae.noise_ceiling_upper": 1.0,
                   "rsa.ae.components": 10 + seed, "fmri_ae.best_epoch": 3 + snr}
        # a per-ROI comparison with its own ceiling and components: in results.csv, not in the figures
        metrics.update({"rsa.ae.EarlyVis.planted.r": r, "rsa.ae/EarlyVis.noise_ceiling_lower": 0.5,
                        "rsa.ae/EarlyVis.components": 3})
        for model in ("planted", "pixels"):
            metrics.update({f"rsa.ae.{model}.r": r, f"rsa.ae.{model}.p": 0.5 if snr == 0 else 0.001,
                            f"rsa.ae.{model}.ci_low": r - 0.05, f"rsa.ae.{model}.ci_high": r + 0.05,
                            f"rsa.ae.{model}.r_pearson": r, f"rsa.ae.{model}.cka": r, f"rsa.ae.{model}.cka_p": 0.5,
                            f"rsa.ae.{model}.p_naive_wrong_df": 1e-6 if config == "study" else 0.5,
                            f"stitch.decode.ae.{model}.ridge.two_way": 0.5 + r / 2,
                            f"stitch.decode.ae.{model}.ridge.chance_high": 0.6})
        out.append({"name": f"cmp-{config}-snr{snr:g}-seed{seed}", "rev": "x", "params": {}, "metrics": metrics})
    out.append({"name": "other-experiment", "rev": "y", "params": {}, "metrics": {}})
    return out


def test_report_tables_count_false_positives_and_read_the_names():
    table = results_table(_experiments())
    table = table[table["roi"] == "union"]
    assert len(table) == 2 * 2 * 4 * 2 and set(table["config"]) == {"study", "corrected"}
    rates = false_positive_rates(table).set_index("config")
    assert rates.loc["study", "naive_p"] == 1.0 and rates.loc["study", "permutation_p"] == 0.0
    assert rates.loc["corrected", "naive_p"] == 0.0 and rates.loc["study", "tests"] == 8


def test_report_is_written_with_its_figures(tmp_path):
    path = write_report(_experiments(), tmp_path / "compare", "cmp", notes=["a note"])
    text = path.read_text()
    assert text.startswith("# corrected vs study on the planted truth: sweep `cmp`")
    assert "| study | ae | planted |" in text and "a note" in text and "0.0167" in text
    assert "naive p is below 0.05 in 4 of 8 tests" not in text and "below 0.05 in 8 of 8 tests" in text
    for name in ("rsa_vs_snr.png", "two_way_vs_snr.png"):
        with Image.open(tmp_path / "compare" / name) as picture:
            assert picture.size[0] > 800
    written = pd.read_csv(tmp_path / "compare" / "results.csv")
    assert len(written) == 48 and set(written["roi"]) == {"union", "EarlyVis"}
    area = written[written["roi"] == "EarlyVis"]
    assert set(area["model"]) == {"planted"} and (area["ceiling_low"] == 0.5).all() and (area["components"] == 3).all()
    assert "EarlyVis" not in text
    # the planted truth's course over SNR, with the components kept (mean of 10..13) and the AE's best epoch
    assert "| corrected | ae | 1 | 4 | 0.79" in text and "| 11.500 | 4.000 |" in text


def test_a_sweep_without_the_study_has_no_word_on_its_r(tmp_path):
    """An ablation of the corrected configuration: its title names what it compares, and the
    section on the study's r = 0.0167 is left out."""
    corrected = [exp for exp in _experiments() if "-corrected-" in exp["name"]]
    text = write_report(corrected, tmp_path / "ablation", "abl").read_text()
    assert text.startswith("# corrected on the planted truth: sweep `abl`") and "0.0167" not in text
    assert "## The planted truth at each SNR" in text
