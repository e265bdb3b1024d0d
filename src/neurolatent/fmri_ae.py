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
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import torch

from neurolatent import autoencoder
from neurolatent.config import FmriAEParams
from neurolatent.errors import NeurolatentError


@dataclass
class FmriSamples:
    """The fmri stage's output, opened read-only, with how to feed it to a network.

    samples : memmap (n, *sample_shape); index : one row per sample; meta : samples.json
    """

    samples: np.ndarray
    index: pd.DataFrame
    meta: dict
    folder: Path
    grid: dict | None = None  # volume: per-subject flat positions in the common box

    @classmethod
    def open(cls, folder: Path) -> "FmriSamples":
        folder = Path(folder)
        for name in ("samples.npy", "samples.json", "index.parquet"):
            if not (folder / name).is_file():
                raise NeurolatentError(f"{folder / name}: missing (run the fmri stage first)")
        meta = json.loads((folder / "samples.json").read_text())
        samples = np.load(folder / "samples.npy", mmap_mode="r")
        index = pd.read_parquet(folder / "index.parquet")
        if len(index) != len(samples):
            raise NeurolatentError(f"{folder / 'index.parquet'}: {len(index)} rows for {len(samples)} samples")
        return cls(samples, index, meta, folder)

    def model_config(self, params: FmriAEParams) -> dict:
        method = self.meta["method"]
        if method == "rendered":
            return {"kind": "conv2d", "channels": list(params.channels), "output": "sigmoid",
                    "input_shape": self.meta["sample_shape"]}
        if method == "volume":
            self.use_depth(len(params.channels) - 1)
            return {"kind": "conv3d", "channels": [1, *params.channels[1:]], "output": "linear",
                    "input_shape": [1, *self.grid["shape"]]}
        return {"kind": "mlp", "n_inputs": int(self.meta["sample_shape"][0]), "widths": list(params.widths),
                "input_shape": self.meta["sample_shape"]}

    def use_depth(self, depth: int) -> None:
        """Volume samples: scatter into a box whose sides are multiples of 2 ** depth."""
        self.grid = _volume_grid(self.folder, self.meta, depth)

    def load(self, rows: np.ndarray) -> torch.Tensor:
        """Rows -> the network's float input: pictures in [0, 1], volumes in their box, betas as is."""
        block = np.asarray(self.samples[rows])
        method = self.meta["method"]
        if method == "rendered":
            return torch.from_numpy(block).float().div_(255.0)
        if method == "volume":
            grid = self.grid
            boxes = np.zeros((len(rows), int(np.prod(grid["shape"]))), dtype=np.float32)
            for i, subject in enumerate(self.index["subject"].to_numpy()[rows]):
                positions = grid["positions"][subject]
                boxes[i, positions] = block[i, : len(positions)]
            return torch.from_numpy(boxes.reshape((len(rows), 1, *grid["shape"])))
        return torch.from_numpy(block.astype(np.float32, copy=False))


def _volume_grid(folder: Path, meta: dict, depth: int) -> dict:
    """Where each subject's masked voxels sit in a box shared by all subjects: the largest mask
    bounding box, each side rounded up to a multiple of 2 ** depth. Voxel order is the mask's
    (C order), as the fmri stage gathered them."""
    coords = {}
    for subject in meta["voxels"]:
        mask = np.asanyarray(nib.load(folder / f"mask_sub-{subject}.nii.gz").dataobj) > 0
        points = np.argwhere(mask)
        coords[subject] = points - points.min(axis=0)
    extent = np.max([c.max(axis=0) + 1 for c in coords.values()], axis=0)
    step = 2 ** depth
    shape = tuple(-(-int(side) // step) * step for side in extent)  # rounded up to a multiple
    return {"shape": shape, "positions": {s: np.ravel_multi_index(c.T, shape) for s, c in coords.items()}}


def run_fmri_ae(params: FmriAEParams, samples_dir: Path, model_dir: Path, metrics_json: Path, plots_csv: Path,
                checkpoints: Path, device: str = "cpu", stop_after: int | None = None) -> dict | None:
    """The stage: train the AE that fits ``samples_dir``'s samples; see the module docstring."""
    data = FmriSamples.open(samples_dir)
    config = data.model_config(params)
    splits = autoencoder.split_rows(data.index, params.train_subjects, params.test_subjects, params.train.val_fraction,
                        params.train.seed)
    key = autoencoder.training_key(config, params.train, [Path(samples_dir) / "samples.npy"], json.dumps(
        {k: v.tolist() for k, v in splits.items()}))
    return autoencoder.fit_autoencoder("fmri_ae", config, data.load, splits, params.train, model_dir, checkpoints, key,
                           plots_csv, metrics_json, device, stop_after)
