"""How an autoencoder is trained: Adam on MSE, mini-batches streamed from a (memmapped) sample
array, early stopping on the validation loss, a checkpoint every epoch (safetensors + JSON, no
pickle) that an interrupted training resumes from, and the subject-wise split.

On CPU the result is bitwise reproducible: weights are seeded, the batch order of epoch e is
drawn from ``(seed, e)``, torch runs deterministic algorithms, and the CLI pins the numeric
libraries (:mod:`neurolatent.pipeline.numerics`).

Batches are read ahead by a background thread as stored (uint8 pictures), through pinned memory on
CUDA, and scaled on the device (:func:`device_batches`); on CUDA the forward pass and loss run under
bf16 autocast. The CPU path has neither autocast nor pinning: its arithmetic is unchanged.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from neurolatent.io.files import atomic_dir, atomic_file
from neurolatent.models.autoencoder import build, network_input, save_model, scaled
from neurolatent.science.constraints import Count, Fraction, NonNegative, Positive, Seed, check_values, checked

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    """What a training run is told: the ``train`` section of an AE stage's params, minus the split."""

    epochs: int = 30
    batch_size: int = 32
    #: Adam, as the study: lr 1e-3, weight decay 1e-5
    lr: float = 1e-3
    weight_decay: float = 1e-5
    #: epochs without a better monitored loss before training stops
    patience: int = 5
    seed: int = 0
    #: the monitored loss: ``validation`` (its best epoch's weights are kept) or ``last_batch`` (the
    #: study's rule: the epoch's last mini-batch training loss, and the final epoch's weights)
    stop_on: str = "validation"

    def __post_init__(self) -> None:
        check_values(epochs=(self.epochs, Count), batch_size=(self.batch_size, Count), lr=(self.lr, Positive),
                     weight_decay=(self.weight_decay, NonNegative), patience=(self.patience, Count),
                     seed=(self.seed, Seed), stop_on=(self.stop_on, Literal["validation", "last_batch"]))


def seed_everything(seed: int) -> None:
    """Seed torch's generator (the weights) and ask for its deterministic algorithms."""
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


@dataclass
class History:
    """Per-epoch losses and the early-stopping state; what a checkpoint's JSON holds."""

    key: str
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    #: the loss early stopping watches, per epoch (the validation loss, or the last mini-batch's)
    monitored: list[float] = field(default_factory=list)
    best_epoch: int = -1
    bad_epochs: int = 0
    stopped_early: bool = False
    seconds: float = 0.0
    samples_seen: int = 0

    @property
    def best_val(self) -> float:
        """The validation loss (MSE per element) at the best epoch; inf before any."""
        return self.val_loss[self.best_epoch] if self.best_epoch >= 0 else math.inf

    @property
    def best_monitored(self) -> float:
        """The monitored loss at the best epoch; inf before any."""
        return self.monitored[self.best_epoch] if self.best_epoch >= 0 else math.inf


def batches(rows: np.ndarray, batch_size: int, seed: int | None, epoch: int) -> list[np.ndarray]:
    """Mini-batches of ``rows``: shuffled by ``(seed, epoch)`` (None: in order), each sorted so a
    memmap reads it front to back."""
    order = rows if seed is None else np.random.default_rng([seed, epoch]).permutation(rows)
    return [np.sort(order[i:i + batch_size]) for i in range(0, len(order), batch_size)]


#: rows (sorted int array) -> that batch as stored: uint8 pictures (0-255) or float32 values
Reader = Callable[[np.ndarray], np.ndarray]


def device_batches(read: Reader, row_batches: list[np.ndarray], device: torch.device,
                   ahead: int = 2) -> Iterator[torch.Tensor]:
    """The network inputs of ``row_batches`` on ``device``, in order.

    A background thread reads up to ``ahead`` batches ahead (``read``: rows -> the batch as
    stored, uint8 for pictures) and, for CUDA, pins them, so the copy is asynchronous and the GPU
    does not wait for the memmap; each batch crosses as stored and is scaled there
    (:func:`scaled`). A reading error is raised here, in order."""
    pin = device.type == "cuda"
    ready: queue.Queue = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def produce() -> None:
        for rows in row_batches:
            try:
                item = torch.from_numpy(read(rows))
                item = item.pin_memory() if pin else item
            except BaseException as exc:  # handed to the consumer, which raises it
                item = exc
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if stop.is_set() or isinstance(item, BaseException):
                return

    reader = threading.Thread(target=produce, name="batch-reader", daemon=True)
    reader.start()
    try:
        for _ in row_batches:
            item = ready.get()
            if isinstance(item, BaseException):
                raise item
            yield scaled(item.to(device, non_blocking=pin))
    finally:
        stop.set()  # a consumer that stops early (an error, an interrupt) ends the reader
        reader.join()


def autocast(device: torch.device):
    """bf16 autocast on CUDA (tensor cores; the loss is computed in float32 by autocast's rules);
    nothing on CPU, whose results stay bitwise."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def mean_loss(model: nn.Module, read: Reader, rows: np.ndarray,
              batch_size: int, device: torch.device) -> float:
    """Mean squared error per element over ``rows`` (in order, no gradients)."""
    if len(rows) == 0:
        return math.nan
    model.eval()
    total, count = 0.0, 0
    with torch.inference_mode(), autocast(device):
        for x in device_batches(read, batches(rows, batch_size, None, 0), device):
            total += float(nn.functional.mse_loss(model(x).float(), x, reduction="sum"))
            count += x.numel()
    return total / count


#: the one file a training's resume point lives in (weights, optimizer state, best weights, history)
CHECKPOINT = "checkpoint.safetensors"


def _save_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, history: History,
                     best: dict[str, torch.Tensor]) -> None:
    """Write the resume point as one file, renamed into place: a kill at any moment leaves the
    previous epoch's checkpoint or this one, never a mix."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update({f"best.{k}": v for k, v in best.items()})
    state = optimizer.state_dict()
    scalars = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}.{name}"] = value
    meta = {"history": history.__dict__, "param_groups": state["param_groups"], "scalars": scalars}
    with atomic_file(path) as temp:
        save_file(tensors, temp, metadata={"neurolatent": json.dumps(meta)})


def _load_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                     key: str) -> tuple[History, dict[str, torch.Tensor]] | None:
    """The history and best weights of a checkpoint of this ``key``, with its state loaded into
    ``model`` and ``optimizer``; None when there is none. A checkpoint of another key (other code,
    params or data) or one that cannot be read is deleted with one warning: training starts over."""
    if not path.is_file():
        return None
    # a load that fails half way (one tensor of the wrong shape) must not leave a mixed model
    fresh_model, fresh_optimizer = copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict())
    try:
        with safe_open(path, "pt") as handle:
            meta = json.loads(handle.metadata()["neurolatent"])
        if meta["history"]["key"] != key:
            log.warning("%s: checkpoint of other code, params or data, discarded; training starts over", path)
            path.unlink()
            return None
        tensors = load_file(path)
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
        history = History(**meta["history"])
        best = {k.removeprefix("best."): v for k, v in tensors.items() if k.startswith("best.")}
        if history.best_epoch >= 0 and not best:
            raise ValueError("no best weights")
    except Exception as exc:  # safetensors, JSON, torch and our own checks each raise their own type
        log.warning("%s: unreadable checkpoint (%s: %s), discarded; training starts over",
                    path, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
        path.unlink(missing_ok=True)
        model.load_state_dict(fresh_model)
        optimizer.load_state_dict(fresh_optimizer)
        return None
    return history, best


def train(model: nn.Module, read: Reader, train_rows: np.ndarray,
          val_rows: np.ndarray, settings: Settings, checkpoints: Path, key: str, device: str = "cpu",
          on_epoch: Callable[[int, float, float], None] | None = None,
          stop_after: int | None = None, progress: Callable[..., Iterable] | None = None) -> History:
    """Fit ``model`` to reconstruct its inputs; leave the best-validation weights in it (with
    ``settings.stop_on == "last_batch"``, the final epoch's: the study's rule).

    Parameters
    ----------
    read : rows (sorted int array) -> the batch as stored (uint8 pictures: 0-255; see
        :func:`device_batches`)
    train_rows, val_rows : row indices of the sample array
    settings : epochs, batch size, Adam's lr and weight decay, patience, seed
    device : ``cpu`` or ``cuda`` (see :func:`neurolatent.pipeline.numerics.resolve_device`)
    checkpoints : folder of the resume point (``checkpoint.safetensors``, one file); a checkpoint
        whose ``key`` differs (other code, params or data) or that cannot be read is discarded
    on_epoch : called with (epoch, train loss, validation loss) after each epoch, resumed ones too
    stop_after : stop (as if interrupted) after this many epochs in this call; for tests
    progress : wraps each epoch's batches to show progress (tqdm-like: ``total``, ``desc``,
        ``unit``, ``leave``), or None

    Returns
    -------
    History, with per-epoch mean squared errors per element.
    """
    device = torch.device(device)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    checkpoint = Path(checkpoints) / CHECKPOINT
    resumed = _load_checkpoint(checkpoint, model, optimizer, key)
    if resumed is None:
        history, best = History(key=key), {}
    else:
        history, best = resumed
        log.info("resuming %s from epoch %d", checkpoint, len(history.train_loss))
    if on_epoch is not None:
        for epoch, (tr, va) in enumerate(zip(history.train_loss, history.val_loss)):
            on_epoch(epoch, tr, va)
    done_here = 0
    while len(history.train_loss) < settings.epochs and not history.stopped_early:
        if stop_after is not None and done_here >= stop_after:
            return history
        epoch = len(history.train_loss)
        model.train()
        start, total, count = time.perf_counter(), 0.0, 0
        row_batches = batches(train_rows, settings.batch_size, settings.seed, epoch)
        epoch_batches = device_batches(read, row_batches, device)
        if progress is not None:
            epoch_batches = progress(epoch_batches, total=len(row_batches), desc=f"epoch {epoch + 1}", unit="batch",
                                     leave=False)
        for x in epoch_batches:
            optimizer.zero_grad()
            with autocast(device):
                loss = nn.functional.mse_loss(model(x).float(), x)
            loss.backward()
            optimizer.step()
            last_batch = float(loss.detach())
            total += last_batch * x.numel()
            count += x.numel()
        history.seconds += time.perf_counter() - start
        history.samples_seen += len(train_rows)
        history.train_loss.append(total / max(count, 1))
        history.val_loss.append(mean_loss(model, read, val_rows, settings.batch_size, device))
        history.monitored.append(history.val_loss[-1] if settings.stop_on == "validation" else last_batch)
        improved = history.monitored[-1] < history.best_monitored
        if improved:
            history.best_epoch, history.bad_epochs = epoch, 0
        else:
            history.bad_epochs += 1
            history.stopped_early = history.bad_epochs >= settings.patience
        if improved:
            best = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        _save_checkpoint(checkpoint, model, optimizer, history, best)
        if on_epoch is not None:
            on_epoch(epoch, history.train_loss[-1], history.val_loss[-1])
        log.info("epoch %d: train %.5f val %.5f", epoch + 1, history.train_loss[-1], history.val_loss[-1])
        done_here += 1
    if settings.stop_on == "last_batch":  # the study saved the model as training left it
        history.best_epoch = len(history.train_loss) - 1
    else:
        model.load_state_dict(best)
    return history


@checked(val_fraction=Fraction, seed=Seed)
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
        raise ValueError(f"no samples of {train_subjects} (the data has {sorted(set(subjects))})")
    absent = sorted(set(test_subjects) - set(subjects))
    if absent:
        raise ValueError(f"no samples of test subject(s) {absent} (the data has {sorted(set(subjects))})")
    names = index["image_name"].astype("string").to_numpy()[training]
    groups = np.array([n if isinstance(n, str) else f"row{r}" for n, r in zip(names, training)])
    unique = np.unique(groups)
    n_val = max(1, int(round(val_fraction * len(unique))))
    if n_val >= len(unique):
        raise ValueError(f"a validation fraction of {val_fraction} leaves no training images")
    held = set(np.random.default_rng(seed).choice(unique, size=n_val, replace=False))
    in_val = np.array([g in held for g in groups])
    return {"train": training[~in_val], "val": training[in_val],
            "test": np.flatnonzero(np.isin(subjects, test_subjects))}


def training_key(config: dict, settings: Settings, data_files: list[Path], code: str, extra: str = "") -> str:
    """What a checkpoint must match to be resumed: architecture, training settings, input data
    (size and modification time of ``data_files``), ``code`` (a digest of the source that trains,
    :func:`neurolatent.pipeline.source.source_digest`) and ``extra`` (e.g. the split)."""
    digest = hashlib.sha1(json.dumps([config, asdict(settings), code, extra], sort_keys=True).encode())
    for path in data_files:
        stat = Path(path).stat()
        digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


@dataclass
class Fit:
    """A trained autoencoder: the model (best validation weights, on CPU), its config (with the
    latent shape), its History and its scores (sizes of the splits, latent size, test loss)."""

    model: nn.Module
    config: dict
    history: History
    scores: dict

    def metrics(self, stage: str) -> dict:
        """The stage's metrics: best epoch, epochs run, early stop, train / val loss at the best
        epoch, and the scores; keys ``<stage>.<name>``. (The per-epoch curve is ``train_loss`` /
        ``val_loss``; the best epoch's values are ``best_train_loss`` / ``best_val_loss``.)"""
        history = self.history
        values = {"best_epoch": history.best_epoch + 1, "epochs": len(history.train_loss),
                  "stopped_early": history.stopped_early, "best_train_loss": history.train_loss[history.best_epoch],
                  "best_val_loss": history.best_val, **self.scores}
        return {f"{stage}.{name}": value for name, value in values.items()}

    @property
    def samples_per_s(self) -> float:
        """Training throughput of the epochs run in this process and the resumed ones (not in the
        metrics JSON: a timing would change the DVC output's hash on every rerun)."""
        return self.history.samples_seen / self.history.seconds if self.history.seconds else math.nan

    def curve(self) -> pd.DataFrame:
        """Loss per epoch: columns epoch (from 1), train_loss, val_loss (MSE per element)."""
        return pd.DataFrame({"epoch": np.arange(1, len(self.history.train_loss) + 1),
                             "train_loss": self.history.train_loss, "val_loss": self.history.val_loss})


def fit_autoencoder(config: dict, read: Reader, splits: dict[str, np.ndarray],
                    settings: Settings, model_dir: Path, checkpoints: Path, key: str, device: str = "cpu",
                    on_epoch: Callable[[int, float, float], None] | None = None,
                    stop_after: int | None = None, progress: Callable[..., Iterable] | None = None) -> Fit | None:
    """Build the network of ``config``, train it on ``splits["train"]`` (early stopping on
    ``splits["val"]``), score it on ``splits["test"]`` (if any), save it into ``model_dir``
    (``model.safetensors`` + ``config.json``, atomically) and delete the checkpoint.

    ``read``, ``on_epoch``, ``stop_after``, ``progress`` : as :func:`train`.

    Returns the :class:`Fit`, or None when ``stop_after`` interrupted the training (tests).
    """
    seed_everything(settings.seed)
    model = build(config)
    history = train(model, read, splits["train"], splits["val"], settings, checkpoints, key, device,
                    on_epoch=on_epoch, stop_after=stop_after, progress=progress)
    if stop_after is not None and len(history.train_loss) < settings.epochs and not history.stopped_early:
        return None
    torch_device = next(model.parameters()).device
    test_rows = splits.get("test", np.array([], int))
    with torch.inference_mode():
        latent_shape = list(model.encode(network_input(read(splits["train"][:1])).to(torch_device)).shape[1:])
    scores = {"n_train": len(splits["train"]), "n_val": len(splits["val"]), "latent_size": int(np.prod(latent_shape))}
    if len(test_rows):
        scores.update(test_loss=mean_loss(model, read, test_rows, settings.batch_size, torch_device),
                      n_test=len(test_rows))
    config = {**config, "latent_shape": latent_shape}
    with atomic_dir(Path(model_dir)) as out:
        save_model(model.cpu(), config, out)
    # the model is saved: nothing is left that a later run (of other code, say) could resume
    (Path(checkpoints) / CHECKPOINT).unlink(missing_ok=True)
    return Fit(model, config, history, scores)
