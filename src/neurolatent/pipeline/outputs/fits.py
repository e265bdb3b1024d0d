"""What a trained autoencoder leaves behind: the DVC files (loss curve, metrics JSON) and, in MLflow,
its throughput, the model (an MLflow pytorch model) and a figure of reconstructions. Shared by the ``fmri_ae`` and ``image_ae`` stages."""

from __future__ import annotations

from pathlib import Path

import torch

from neurolatent.pipeline import tracking
from neurolatent.pipeline.outputs.figures import autoencoder as autoencoder_figures
from neurolatent.io.files import write_csv, write_metrics
from neurolatent.models.training import Fit


def report_fit(stage: str, fit: Fit, plots_csv: Path, metrics_json: Path, originals: torch.Tensor) -> dict:
    """Write ``plots_csv`` (loss per epoch) and ``metrics_json`` (``<stage>.<name>`` keys), log the
    throughput and a reconstruction figure of ``originals`` (a few input samples) to MLflow, and
    return the metrics."""
    write_csv(fit.curve(), plots_csv)
    metrics = fit.metrics(stage)
    write_metrics(metrics, metrics_json)
    tracking.log_metrics({f"{stage}.train_samples_per_s": fit.samples_per_s})
    tracking.log_model(fit.model, stage, originals[:2])
    with torch.inference_mode():
        reconstructions = fit.model(originals).numpy()
    tracking.log_figure(lambda path: autoencoder_figures.autoencoder_reconstructions(
        originals.numpy(), reconstructions, path, f"{stage}: originals (top) and reconstructions (bottom)"),
        f"{stage}_reconstructions.png")
    return metrics
