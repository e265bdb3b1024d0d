"""Stage ``fmri_ae``: the autoencoder that fits the fMRI samples, trained subject-wise.

The architecture follows the samples (``samples.json``): the study's 2D conv AE for ``rendered``
pictures, its 3D twin for ``volume`` samples scattered back into their mask's bounding box, an MLP
for ``betas``. Training subjects' images are split into training and validation (every presentation
of an image on one side); test subjects are only scored.

Outputs: ``models/fmri_ae/`` (model.safetensors, config.json), ``metrics/fmri_ae.json``,
``plots/fmri_ae_loss.csv``; MLflow gets the per-epoch losses and a reconstruction figure.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from neurolatent.pipeline import tracking
from neurolatent.errors import NeurolatentError
from neurolatent.io.samples import FmriSamples
from neurolatent.models.autoencoder import network_input
from neurolatent.models.training import Settings, fit_autoencoder, split_rows, training_key
from neurolatent.pipeline.outputs.fits import report_fit
from neurolatent.pipeline.outputs.summaries import fit_line
from neurolatent.pipeline.numerics import torch_device
from neurolatent.pipeline.progress import progress
from neurolatent.pipeline.source import source_digest


def network_config(data: FmriSamples, channels: list[int], widths: list[int]) -> dict:
    """The autoencoder config that fits the samples' kind (see the module docstring)."""
    method = data.meta["method"]
    if method == "rendered":
        return {"kind": "conv2d", "channels": list(channels), "output": "sigmoid", "input_shape": data.meta["sample_shape"]}
    if method == "volume":
        data.use_depth(len(channels) - 1)
        return {"kind": "conv3d", "channels": [1, *channels[1:]], "output": "linear", "input_shape": [1, *data.grid["shape"]]}
    return {"kind": "mlp", "n_inputs": int(data.meta["sample_shape"][0]), "widths": list(widths),
            "input_shape": data.meta["sample_shape"]}


def closing_line(metrics: dict) -> str:
    """The line the stage ends with: the best validation loss, its epoch, the test loss."""
    return fit_line("fmri_ae", metrics)


def run(params: SimpleNamespace, paths: SimpleNamespace) -> dict:
    """The stage on its declared ``params`` and ``paths`` (the registry's files); returns its metrics."""
    ae = params.fmri_ae
    device = torch_device(params.compute.device, params.compute.threads)
    data = FmriSamples.open(paths.samples)
    config = network_config(data, ae.channels, ae.widths)
    try:
        splits = split_rows(data.index, ae.train_subjects, ae.test_subjects, ae.train.val_fraction, ae.train.seed)
    except ValueError as exc:
        raise NeurolatentError(f"fmri_ae: {exc} (fmri_ae.train_subjects, fmri_ae.test_subjects, fmri_ae.train.val_fraction)") from None
    settings = Settings(**ae.train.model_dump(exclude={"val_fraction"}))
    key = training_key(config, settings, [Path(paths.samples) / "samples.npy"], source_digest(__name__),
                       json.dumps({k: v.tolist() for k, v in splits.items()}))
    fit = fit_autoencoder(config, data.read, splits, settings, paths.model, paths.checkpoints, key, device,
                          on_epoch=tracking.epoch_logger("fmri_ae"), progress=progress)
    shown = np.sort(np.concatenate([splits["test"][:4], splits["val"][:4]])[:4])
    return report_fit("fmri_ae", fit, paths.plots, paths.metrics, network_input(data.read(shown)))
