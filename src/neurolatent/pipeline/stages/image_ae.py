"""Stage ``image_ae``: a conv autoencoder on the stimulus images (the study's proposed remedy, and
the decoder that turns predicted latents into pictures in ``stitch``).

Images are read as RGB, resized to ``image_ae.size`` (bilinear) and scaled to [0, 1]; the
network is :class:`neurolatent.models.autoencoder.ConvAutoencoder` (2D, Sigmoid output). Images
are split into training and validation by ``image_ae.train.val_fraction``; there is no test split
(``stitch`` holds out its own test stimuli, which the AE never sees as targets of a mapping).

Outputs: ``models/image_ae/``, ``metrics/image_ae.json``, ``plots/image_ae_loss.csv``; MLflow gets
the per-epoch losses and a reconstruction figure.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from neurolatent.pipeline import tracking
from neurolatent.errors import NeurolatentError
from neurolatent.io.images import load_stimuli
from neurolatent.models.autoencoder import network_input
from neurolatent.models.training import Settings, fit_autoencoder, split_rows, training_key
from neurolatent.pipeline.outputs.fits import report_fit
from neurolatent.pipeline.outputs.summaries import fit_line
from neurolatent.pipeline.numerics import torch_device
from neurolatent.pipeline.progress import progress
from neurolatent.pipeline.source import source_digest


def closing_line(metrics: dict) -> str:
    """The line the stage ends with: the best validation loss, its epoch, the test loss."""
    return fit_line("image_ae", metrics)


def run(params: SimpleNamespace, paths: SimpleNamespace) -> dict:
    """The stage on its declared ``params`` and ``paths`` (the registry's files); returns its metrics."""
    ae = params.image_ae
    device = torch_device(params.compute.device, params.compute.threads)
    stimuli, pictures = load_stimuli(paths.stimuli, paths.raw, ae.size)

    def read(rows: np.ndarray) -> np.ndarray:  # uint8: scaled on the training device
        return pictures[rows]

    index = pd.DataFrame({"subject": "images", "image_name": stimuli["image_name"]})
    try:
        splits = split_rows(index, ["images"], [], ae.train.val_fraction, ae.train.seed)
    except ValueError as exc:
        raise NeurolatentError(f"image_ae.train.val_fraction: {exc}") from None
    config = {"kind": "conv2d", "channels": list(ae.channels), "output": "sigmoid", "input_shape": [3, ae.size, ae.size]}
    settings = Settings(**ae.train.model_dump(exclude={"val_fraction"}))
    key = training_key(config, settings, [Path(paths.stimuli)], source_digest(__name__), str(ae.size))
    fit = fit_autoencoder(config, read, splits, settings, paths.model, paths.checkpoints, key, device,
                          on_epoch=tracking.epoch_logger("image_ae"), progress=progress)
    return report_fit("image_ae", fit, paths.plots, paths.metrics, network_input(read(np.sort(splits["val"][:4]))))
