"""The fmri stage's output (``data/processed/fmri``), opened read-only: the samples as stored, by row."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from neurolatent.errors import NeurolatentError
from neurolatent.io.bids import TR_S
from neurolatent.science.sampling import anchor_times, lag_centre, volume_index


@dataclass
class FmriSamples:
    """The fmri stage's output, opened read-only.

    samples : memmap ``(n, *sample_shape)``; index : one row per sample (trial, or volume with every-TR
    pictures); meta : samples.json (method, sample_shape, dtype, voxels per subject)
    """

    samples: np.ndarray
    index: pd.DataFrame
    meta: dict
    folder: Path
    grid: dict | None = None  # volume: per-subject flat positions in the common box

    @classmethod
    def open(cls, folder: Path) -> "FmriSamples":
        """The fmri stage's ``folder`` (samples.npy memmapped read-only, index.parquet, samples.json);
        NeurolatentError when a file is missing or the index does not match the samples."""
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

    def trial_rows(self, trials: pd.DataFrame, lag_s: float | tuple[float, float], anchor: str,
                   rounding: str = "nearest") -> np.ndarray:
        """The sample row of each trial of ``trials`` (trials.parquet rows): the row itself when the
        fmri stage wrote one sample per trial; with every-TR samples, the volume of the trial's
        anchor + lag (a window's middle), picked by ``rounding`` (see
        :func:`neurolatent.science.sampling.volume_index`)."""
        return _trial_rows(self, trials, lag_s, anchor, rounding)

    def use_depth(self, depth: int) -> None:
        """Volume samples: scatter into a box whose sides are multiples of 2 ** depth."""
        self.grid = _volume_grid(self.folder, self.meta, depth)

    def read(self, rows: np.ndarray) -> np.ndarray:
        """Rows (sorted int array) -> their samples as stored: pictures (n, 3, H, W) uint8 (a
        quarter of float32's bytes to move to a GPU, scaled there:
        :func:`neurolatent.models.training.network_input`), volumes (n, 1, D, H, W) float32 in their
        box (:meth:`use_depth`), betas (n, voxels) float32."""
        block = np.asarray(self.samples[rows])
        method = self.meta["method"]
        if method == "rendered":
            return block
        if method == "volume":
            grid = self.grid
            boxes = np.zeros((len(rows), int(np.prod(grid["shape"]))), dtype=np.float32)
            for i, subject in enumerate(self.index["subject"].to_numpy()[rows]):
                positions = grid["positions"][subject]
                boxes[i, positions] = block[i, : len(positions)]
            return boxes.reshape((len(rows), 1, *grid["shape"]))
        return block.astype(np.float32, copy=False)


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


def _trial_rows(data: "FmriSamples", trials: pd.DataFrame, lag_s: float | tuple[float, float],
                anchor: str, rounding: str) -> np.ndarray:
    index = data.index
    if "volume" not in index.columns:
        if len(index) != len(trials) or not (index["image_name"].to_numpy() == trials["image_name"].to_numpy()).all():
            raise NeurolatentError(f"{data.folder / 'index.parquet'}: rows do not match trials.parquet (rerun fmri)")
        return np.arange(len(trials))
    times = anchor_times(trials["onset"].to_numpy(), trials["duration"].to_numpy(), anchor) + lag_centre(lag_s)
    wanted = pd.DataFrame({"subject": trials["subject"].to_numpy(), "session": trials["session"].to_numpy(),
                           "run": trials["run"].to_numpy(), "volume": volume_index(times, TR_S, np.iinfo(int).max, rounding)})
    keyed = index[["subject", "session", "run", "volume"]].reset_index(names="row")
    last = keyed.groupby(["subject", "session", "run"])["volume"].transform("max")
    wanted = wanted.merge(keyed.assign(last=last).groupby(["subject", "session", "run"])["last"].max().reset_index(),
                          on=["subject", "session", "run"], how="left")
    wanted["volume"] = np.minimum(wanted["volume"], wanted["last"])
    rows = wanted.merge(keyed, on=["subject", "session", "run", "volume"], how="left")["row"]
    if rows.isna().any():
        raise NeurolatentError(f"{data.folder / 'index.parquet'}: some trials have no volume (rerun fmri)")
    return rows.to_numpy(dtype=int)
