"""Stage ``fmri_ae``: the autoencoder that fits the fMRI samples, trained subject-wise.

The architecture follows the samples (``samples.json``): the study's 2D conv AE for ``rendered``
pictures, its 3D twin for ``volume`` samples scattered back into their mask's bounding box, an MLP
for ``betas``. Training subjects' images are split into training and validation (every presentation
of an image on one side); test subjects are only scored.

Outputs: ``models/fmri_ae/`` (model.safetensors, config.json), ``metrics/fmri_ae.json``,
``plots/fmri_ae_loss.csv``; MLflow gets the per-epoch losses and a reconstruction figure.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import torch

from neurolatent import autoencoder
from neurolatent.config import FmriAEParams, TrainParams
from neurolatent.errors import NeurolatentError
from neurolatent.files import atomic_dir, atomic_file, write_json


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


def split_rows(index: pd.DataFrame, train_subjects: list[str], test_subjects: list[str], val_fraction: float,
               seed: int) -> dict[str, np.ndarray]:
    """Row indices of the train, val and test splits.

    Test: every row of the test subjects. Validation: ``val_fraction`` of the training subjects'
    images, every presentation of an image on the same side (rows without an image, every-TR
    volumes before the first trial, count one each); at least one image.
    """
    subjects = index["subject"].to_numpy()
    training = np.flatnonzero(np.isin(subjects, train_subjects))
    if len(training) == 0:
        raise NeurolatentError(f"fmri_ae.train_subjects: no samples of {train_subjects} (the data has {sorted(set(subjects))})")
    names = index["image_name"].astype("string").to_numpy()[training]
    groups = np.array([n if isinstance(n, str) else f"row{r}" for n, r in zip(names, training)])
    unique = np.unique(groups)
    n_val = max(1, int(round(val_fraction * len(unique))))
    if n_val >= len(unique):
        raise NeurolatentError("fmri_ae.train.val_fraction: leaves no training images")
    held = set(np.random.default_rng(seed).choice(unique, size=n_val, replace=False))
    in_val = np.array([g in held for g in groups])
    return {"train": training[~in_val], "val": training[in_val],
            "test": np.flatnonzero(np.isin(subjects, test_subjects))}


def training_key(config: dict, params: TrainParams, data_files: list[Path], extra: str = "") -> str:
    """What a checkpoint must match to be resumed: architecture, training params, input data."""
    digest = hashlib.sha1(json.dumps([config, params.model_dump(), extra], sort_keys=True).encode())
    for path in data_files:
        stat = Path(path).stat()
        digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def report_training(stage: str, history: autoencoder.History, plots_csv: Path, metrics_json: Path,
                    metrics: dict) -> dict:
    """Write the loss curve CSV and the metrics JSON (flat keys, NaN as null); return the metrics.

    Timings stay out of the JSON (it is a DVC output whose hash must not change between reruns)."""
    curve = pd.DataFrame({"epoch": np.arange(1, len(history.train_loss) + 1), "train_loss": history.train_loss,
                          "val_loss": history.val_loss})
    with atomic_file(Path(plots_csv)) as temp:
        curve.to_csv(temp, index=False)
    final = {"best_epoch": history.best_epoch + 1, "epochs": len(history.train_loss),
             "stopped_early": history.stopped_early, "train_loss": history.train_loss[history.best_epoch],
             "val_loss": history.best_val, **metrics}
    final = {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in final.items()}
    with atomic_file(Path(metrics_json)) as temp:
        write_json({f"{stage}.{k}" if not k.startswith(stage) else k: v for k, v in final.items()}, temp)
    return final


def reconstruction_figure(originals: torch.Tensor, reconstructions: torch.Tensor, path: Path, title: str) -> None:
    """Originals (top) over their reconstructions (bottom): pictures as pictures, volumes as their
    middle axial slice, vectors as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(originals)
    figure, axes = plt.subplots(2, n, figsize=(2.2 * n, 4.6), squeeze=False)
    for column in range(n):
        for row, tensor in enumerate((originals, reconstructions)):
            item, ax = tensor[column].detach().cpu().numpy(), axes[row, column]
            if item.ndim == 3:
                ax.imshow(np.clip(item.transpose(1, 2, 0), 0, 1))
            elif item.ndim == 4:
                ax.imshow(item[0, :, :, item.shape[3] // 2].T, origin="lower", cmap="RdBu_r")
            else:
                ax.plot(item, lw=0.6)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, column].set_title(f"sample {column + 1}", fontsize=8)
    axes[0, 0].set_ylabel("original")
    axes[1, 0].set_ylabel("reconstruction")
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def fit_autoencoder(stage: str, model_config: dict, load, splits: dict[str, np.ndarray], params: TrainParams,
                    model_dir: Path, checkpoints: Path, key: str, plots_csv: Path, metrics_json: Path,
                    stop_after: int | None = None) -> dict | None:
    """Train, score and save an autoencoder; log it to the active MLflow run (if any).

    Returns the final metrics, or None when ``stop_after`` interrupted the training.
    """
    import mlflow

    autoencoder.seed_everything(params.seed)
    model = autoencoder.build(model_config)

    def log_epoch(epoch: int, train_loss: float, val_loss: float) -> None:
        if mlflow.active_run() is not None:
            mlflow.log_metrics({"train_loss": train_loss, "val_loss": val_loss}, step=epoch + 1)

    history = autoencoder.train(model, load, splits["train"], splits["val"], params, checkpoints, key,
                                on_epoch=log_epoch, stop_after=stop_after)
    if stop_after is not None and len(history.train_loss) < params.epochs and not history.stopped_early:
        return None
    device = next(model.parameters()).device
    test_loss = autoencoder.mean_loss(model, load, splits.get("test", np.array([], int)), params.batch_size, device)
    with torch.inference_mode():
        latent_shape = list(model.encode(load(splits["train"][:1]).to(device)).shape[1:])
    scores = {"n_train": len(splits["train"]), "n_val": len(splits["val"]), "latent_size": int(np.prod(latent_shape))}
    if len(splits.get("test", [])):
        scores.update(test_loss=test_loss, n_test=len(splits["test"]))
    metrics = report_training(stage, history, plots_csv, metrics_json, scores)
    model_config = {**model_config, "latent_shape": latent_shape}
    with atomic_dir(Path(model_dir)) as out:
        autoencoder.save_model(model.cpu(), model_config, out)
    if mlflow.active_run() is not None:
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and v is not None})
        if history.seconds:
            mlflow.log_metric("train_samples_per_s", history.samples_seen / history.seconds)
        rows = np.concatenate([splits.get("test", np.array([], int))[:4], splits["val"][:4]])[:4]
        with tempfile.TemporaryDirectory() as folder, torch.inference_mode():
            x = load(np.sort(rows))
            reconstruction_figure(x, model(x), Path(folder) / f"{stage}_reconstructions.png",
                                  f"{stage}: originals (top) and reconstructions (bottom)")
            mlflow.log_artifact(str(Path(folder) / f"{stage}_reconstructions.png"))
    return metrics


def run_fmri_ae(params: FmriAEParams, samples_dir: Path, model_dir: Path, metrics_json: Path, plots_csv: Path,
                checkpoints: Path, stop_after: int | None = None) -> dict | None:
    """The stage: train the AE that fits ``samples_dir``'s samples; see the module docstring."""
    data = FmriSamples.open(samples_dir)
    config = data.model_config(params)
    splits = split_rows(data.index, params.train_subjects, params.test_subjects, params.train.val_fraction,
                        params.train.seed)
    key = training_key(config, params.train, [Path(samples_dir) / "samples.npy"], json.dumps(
        {k: v.tolist() for k, v in splits.items()}))
    return fit_autoencoder("fmri_ae", config, data.load, splits, params.train, model_dir, checkpoints, key,
                           plots_csv, metrics_json, stop_after)
