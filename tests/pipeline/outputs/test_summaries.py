"""The closing lines and tables a reader sees: the best image model (never a reference), the best
decoding, an AE's fit, a short or counted summary, and metrics as tables."""

from __future__ import annotations

import math

from neurolatent.pipeline.outputs.summaries import (best_decoding, best_rsa_model, fit_line, is_reference, rsa_line,
                                                    summary_line)

RSA = {"rsa.ae.vit.r": 0.3, "rsa.ae.vit.ci_low": 0.2, "rsa.ae.vit.ci_high": 0.4, "rsa.ae.vit.p": 0.001,
       "rsa.ae.pixels.r": 0.1, "rsa.ae.planted.r": 0.9, "rsa.ae.category.r": 0.8, "rsa.ae.noise_ceiling_lower": 0.5,
       "rsa.ae.EarlyVis.vit.r": 0.95}


def test_references_are_never_the_best_model():
    assert is_reference("planted") and is_reference("planted_scene") and is_reference("category")
    assert not is_reference("planted2vec") and not is_reference("vit")
    assert best_rsa_model(RSA, "ae") == "vit"  # planted (0.9), category (0.8) and a ROI's r (0.95) left out
    assert best_rsa_model(RSA, "samples") is None


def test_the_rsa_line_gives_r_ci_p_ceiling_and_truth():
    assert rsa_line(RSA) == ("rsa: fMRI ae: best image model vit r 0.300 [0.200, 0.400] p 0.001, noise ceiling "
                             "0.500 (planted truth r 0.900)")


def test_best_decoding_skips_chance_and_references():
    details = {"stitch.decode.ae.vit.ridge.two_way": 0.7, "stitch.decode.ae.planted.ridge.two_way": 0.99,
               "stitch.decode.chance.vit.ridge.two_way": 0.9, "stitch.decode.ae.pixels.ridge.two_way": math.nan}
    assert best_decoding(details) == "stitch.decode.ae.vit.ridge"


def test_summary_and_fit_lines():
    assert summary_line("x", {"x.a": 0.123456, "x.b": 2}) == "x: a 0.1235, b 2"
    assert summary_line("x", {f"x.{i}": i for i in range(16)}) == "x: 16 metrics (see the stage's metrics JSON)"
    fit = {"ae.best_val_loss": 0.01234, "ae.best_epoch": 3, "ae.epochs": 5, "ae.stopped_early": True,
           "ae.test_loss": 0.02}
    assert fit_line("ae", fit) == "ae: best validation loss 0.01234 (MSE per element) at epoch 3 of 5, stopped early; " \
                                  "test loss 0.02"
    assert fit_line("ae", {"ae.epochs": 5}) == "ae: epochs 5"
