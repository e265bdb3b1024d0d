"""Autoencoders and how they are trained: the study's conv AE, its 3D and MLP variants.

- :class:`ConvAutoencoder` with ``dims=2`` is the study's network for rendered pictures: encoder
  ``len(channels) - 1`` x [Conv2d(k3, s2, p1) + ReLU] (3-16-32-64-128-256: 672 px -> 256 x 21 x 21),
  decoder mirrored with ConvTranspose2d(k3, s2, p1, output_padding 1), ReLU between, Sigmoid last.
  ``dims=3`` is the same network in 3D for masked volumes scattered back into their bounding box
  (linear output: the samples are z-scores).
- :class:`MLPAutoencoder` for betas: Linear + ReLU layers down to the latent, mirrored, linear output.

:func:`train` fits any of them with Adam on MSE, streams mini-batches from a (memmapped) sample
array, stops early on the validation loss, checkpoints every epoch (safetensors + JSON, no pickle)
and resumes from the last checkpoint. :func:`fit_autoencoder` is what the stages ``fmri_ae`` and
``image_ae`` share: split, train, score, save, and report to DVC files and MLflow. On CPU the result is bitwise reproducible: weights are seeded,
the batch order of epoch e is drawn from ``(seed, e)``, and torch runs deterministic algorithms.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from neurolatent.config import TrainParams
from neurolatent.errors import NeurolatentError
from neurolatent.files import atomic_dir, atomic_file, write_json

log = logging.getLogger(__name__)


class ConvAutoencoder(nn.Module):
    """Strided conv encoder, transposed-conv decoder.

    Parameters
    ----------
    channels : input channels first, then each encoder layer's output (the latent's channels last)
    dims : 2 (pictures, N x C x H x W) or 3 (volumes, N x C x D x H x W); each side must be
        divisible by ``2 ** (len(channels) - 1)``
    output : "sigmoid" (inputs in [0, 1], the study) or "linear"
    """

    def __init__(self, channels: list[int], dims: int = 2, output: str = "sigmoid"):
        super().__init__()
        conv, deconv = (nn.Conv2d, nn.ConvTranspose2d) if dims == 2 else (nn.Conv3d, nn.ConvTranspose3d)
        encoder: list[nn.Module] = []
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            encoder += [conv(c_in, c_out, kernel_size=3, stride=2, padding=1), nn.ReLU()]
        decoder: list[nn.Module] = []
        reverse = channels[::-1]
        for i, (c_in, c_out) in enumerate(zip(reverse[:-1], reverse[1:])):
            decoder.append(deconv(c_in, c_out, kernel_size=3, stride=2, padding=1, output_padding=1))
            if i < len(reverse) - 2:
                decoder.append(nn.ReLU())
        if output == "sigmoid":
            decoder.append(nn.Sigmoid())
        self.encoder, self.decoder = nn.Sequential(*encoder), nn.Sequential(*decoder)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class MLPAutoencoder(nn.Module):
    """Fully connected autoencoder: n_inputs -> widths[0] -> ... -> widths[-1] (the latent) and back."""

    def __init__(self, n_inputs: int, widths: list[int]):
        super().__init__()
        sizes = [n_inputs, *widths]

        def stack(pairs):
            layers: list[nn.Module] = []
            for i, (a, b) in enumerate(pairs):
                layers.append(nn.Linear(a, b))
                if i < len(pairs) - 1:
                    layers.append(nn.ReLU())
            return nn.Sequential(*layers)

        self.encoder = stack(list(zip(sizes[:-1], sizes[1:])))
        self.decoder = stack(list(zip(sizes[::-1][:-1], sizes[::-1][1:])))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def build(config: dict) -> nn.Module:
    """An autoencoder from its JSON config (``kind``: conv2d, conv3d or mlp)."""
    if config["kind"] == "mlp":
        return MLPAutoencoder(config["n_inputs"], config["widths"])
    return ConvAutoencoder(config["channels"], dims=2 if config["kind"] == "conv2d" else 3, output=config["output"])


def save_model(model: nn.Module, config: dict, folder: Path) -> None:
    """``model.safetensors`` + ``config.json`` in ``folder`` (no pickle)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def load_model(folder: Path, device: str = "cpu") -> tuple[nn.Module, dict]:
    """The autoencoder saved by :func:`save_model`, in eval mode."""
    folder = Path(folder)
    for name in ("config.json", "model.safetensors"):
        if not (folder / name).is_file():
            raise NeurolatentError(f"{folder / name}: missing (run the autoencoder stage first)")
    config = json.loads((folder / "config.json").read_text())
    model = build(config)
    model.load_state_dict(load_file(folder / "model.safetensors", device="cpu"))
    return model.to(device).eval(), config


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


# ----------------------------------------------------------------------------- training


@dataclass
class History:
    """Per-epoch losses and the early-stopping state; what a checkpoint's JSON holds."""

    key: str
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1
    bad_epochs: int = 0
    stopped_early: bool = False
    seconds: float = 0.0
    samples_seen: int = 0

    @property
    def best_val(self) -> float:
        return self.val_loss[self.best_epoch] if self.best_epoch >= 0 else math.inf


def batches(rows: np.ndarray, batch_size: int, seed: int | None, epoch: int) -> list[np.ndarray]:
    """Mini-batches of ``rows``: shuffled by ``(seed, epoch)`` (None: in order), each sorted so a
    memmap reads it front to back."""
    order = rows if seed is None else np.random.default_rng([seed, epoch]).permutation(rows)
    return [np.sort(order[i:i + batch_size]) for i in range(0, len(order), batch_size)]


def mean_loss(model: nn.Module, load: Callable[[np.ndarray], torch.Tensor], rows: np.ndarray,
              batch_size: int, device: torch.device) -> float:
    """Mean squared error per element over ``rows`` (in order, no gradients)."""
    if len(rows) == 0:
        return math.nan
    model.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for batch in batches(rows, batch_size, None, 0):
            x = load(batch).to(device)
            total += float(nn.functional.mse_loss(model(x), x, reduction="sum"))
            count += x.numel()
    return total / count


def _save_checkpoint(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer, history: History,
                     best: bool) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    state = optimizer.state_dict()
    scalars = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}.{name}"] = value
    meta = {"history": history.__dict__, "param_groups": state["param_groups"], "scalars": scalars}
    for name, payload in (("last.safetensors", tensors), ("last.json", meta)):
        temp = folder / f".{name}.tmp"
        if name.endswith(".json"):
            temp.write_text(json.dumps(payload))
        else:
            save_file(payload, temp)
        temp.replace(folder / name)
    if best:
        save_file({k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")},
                  folder / ".best.tmp")
        (folder / ".best.tmp").replace(folder / "best.safetensors")


def _load_checkpoint(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer, key: str) -> History | None:
    if not (folder / "last.json").is_file() or not (folder / "last.safetensors").is_file():
        return None
    meta = json.loads((folder / "last.json").read_text())
    if meta["history"]["key"] != key:
        return None  # a checkpoint of other params or data: start afresh
    tensors = load_file(folder / "last.safetensors")
    model.load_state_dict({k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")})
    state: dict = {"state": {}, "param_groups": meta["param_groups"]}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, index, field_name = name.split(".", 2)
            state["state"].setdefault(int(index), {})[field_name] = value
    for name, value in meta["scalars"].items():
        index, field_name = name.split(".", 1)
        state["state"].setdefault(int(index), {})[field_name] = value
    optimizer.load_state_dict(state)
    return History(**meta["history"])


def train(model: nn.Module, load: Callable[[np.ndarray], torch.Tensor], train_rows: np.ndarray,
          val_rows: np.ndarray, params: TrainParams, checkpoints: Path, key: str, device: str = "cpu",
          on_epoch: Callable[[int, float, float], None] | None = None,
          stop_after: int | None = None) -> History:
    """Fit ``model`` to reconstruct its inputs; leave the best-validation weights in it.

    Parameters
    ----------
    load : rows (sorted int array) -> float tensor batch, on CPU
    train_rows, val_rows : row indices of the sample array
    device : ``cpu`` or ``cuda`` (see :func:`neurolatent.runtime.resolve_device`)
    checkpoints : folder for ``last.*`` (resume point) and ``best.safetensors``; a checkpoint whose
        ``key`` differs (other params or data) is ignored
    on_epoch : called with (epoch, train loss, validation loss) after each epoch, resumed ones too
    stop_after : stop (as if interrupted) after this many epochs in this call; for tests

    Returns
    -------
    History, with per-epoch mean squared errors per element.
    """
    device = torch.device(device)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    checkpoints = Path(checkpoints)
    checkpoints.mkdir(parents=True, exist_ok=True)
    history = _load_checkpoint(checkpoints, model, optimizer, key)
    if history is None:
        history = History(key=key)
    else:
        log.info("resuming %s from epoch %d", checkpoints, len(history.train_loss))
    if on_epoch is not None:
        for epoch, (tr, va) in enumerate(zip(history.train_loss, history.val_loss)):
            on_epoch(epoch, tr, va)
    done_here = 0
    while len(history.train_loss) < params.epochs and not history.stopped_early:
        if stop_after is not None and done_here >= stop_after:
            return history
        epoch = len(history.train_loss)
        model.train()
        start, total, count = time.perf_counter(), 0.0, 0
        for batch in tqdm(batches(train_rows, params.batch_size, params.seed, epoch), desc=f"epoch {epoch + 1}",
                          unit="batch", leave=False):
            x = load(batch).to(device)
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(x), x)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * x.numel()
            count += x.numel()
        history.seconds += time.perf_counter() - start
        history.samples_seen += len(train_rows)
        history.train_loss.append(total / max(count, 1))
        history.val_loss.append(mean_loss(model, load, val_rows, params.batch_size, device))
        improved = history.val_loss[-1] < history.best_val
        if improved:
            history.best_epoch, history.bad_epochs = epoch, 0
        else:
            history.bad_epochs += 1
            history.stopped_early = history.bad_epochs >= params.patience
        _save_checkpoint(checkpoints, model, optimizer, history, improved)
        if on_epoch is not None:
            on_epoch(epoch, history.train_loss[-1], history.val_loss[-1])
        log.info("epoch %d: train %.5f val %.5f", epoch + 1, history.train_loss[-1], history.val_loss[-1])
        done_here += 1
    model.load_state_dict(load_file(checkpoints / "best.safetensors", device=str(device)))
    return history


# ----------------------------------------------------------------------------- stages' shared training


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


def report_training(stage: str, history: History, plots_csv: Path, metrics_json: Path,
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
                    device: str = "cpu", stop_after: int | None = None) -> dict | None:
    """Train, score and save an autoencoder; log it to the active MLflow run (if any).

    Returns the final metrics, or None when ``stop_after`` interrupted the training.
    """
    import mlflow

    seed_everything(params.seed)
    model = build(model_config)

    def log_epoch(epoch: int, train_loss: float, val_loss: float) -> None:
        if mlflow.active_run() is not None:
            mlflow.log_metrics({"train_loss": train_loss, "val_loss": val_loss}, step=epoch + 1)

    history = train(model, load, splits["train"], splits["val"], params, checkpoints, key, device,
                    on_epoch=log_epoch, stop_after=stop_after)
    if stop_after is not None and len(history.train_loss) < params.epochs and not history.stopped_early:
        return None
    device = next(model.parameters()).device
    test_loss = mean_loss(model, load, splits.get("test", np.array([], int)), params.batch_size, device)
    with torch.inference_mode():
        latent_shape = list(model.encode(load(splits["train"][:1]).to(device)).shape[1:])
    scores = {"n_train": len(splits["train"]), "n_val": len(splits["val"]), "latent_size": int(np.prod(latent_shape))}
    if len(splits.get("test", [])):
        scores.update(test_loss=test_loss, n_test=len(splits["test"]))
    metrics = report_training(stage, history, plots_csv, metrics_json, scores)
    model_config = {**model_config, "latent_shape": latent_shape}
    with atomic_dir(Path(model_dir)) as out:
        save_model(model.cpu(), model_config, out)
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
