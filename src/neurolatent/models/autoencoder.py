"""The autoencoders: the study's conv AE, its 3D and MLP variants, and how they are saved.

- :class:`ConvAutoencoder` with ``dims=2`` is the study's network for rendered pictures: encoder
  ``len(channels) - 1`` x [Conv2d(k3, s2, p1) + ReLU] (3-16-32-64-128-256: 672 px -> 256 x 21 x 21),
  decoder mirrored with ConvTranspose2d(k3, s2, p1, output_padding 1), ReLU between, Sigmoid last.
  ``dims=3`` is the same network in 3D for masked volumes scattered back into their bounding box
  (linear output: the samples are z-scores).
- :class:`MLPAutoencoder` for betas: Linear + ReLU layers down to the latent, mirrored, linear output.

Training is :mod:`neurolatent.models.training`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from neurolatent.errors import NeurolatentError
from neurolatent.science.constraints import Count, checked


class ConvAutoencoder(nn.Module):
    """Strided conv encoder, transposed-conv decoder.

    Parameters
    ----------
    channels : input channels first, then each encoder layer's output (the latent's channels last)
    dims : 2 (pictures, N x C x H x W) or 3 (volumes, N x C x D x H x W); each side must be
        divisible by ``2 ** (len(channels) - 1)``
    output : "sigmoid" (inputs in [0, 1], the study) or "linear"
    """

    @checked(dims=Literal[2, 3], output=Literal["sigmoid", "linear"])
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
        """(N, C, *space) inputs -> (N, channels[-1], *space / 2 ** layers) latents."""
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, *space)`` inputs -> their reconstructions, the same shape."""
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
        """(N, n_inputs) -> (N, widths[-1]) latents."""
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, n_inputs) -> their reconstructions, (N, n_inputs)."""
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


@checked(pooling=Literal["flatten", "avgpool"])
def pool_latents(latents: torch.Tensor, pooling: str) -> torch.Tensor:
    """``(n, C, *space)`` -> (n, C * prod(space)) for ``flatten``, (n, C) for ``avgpool`` (mean over
    space); (n, d) vectors are returned as they are."""
    if latents.ndim == 2 or pooling == "flatten":
        return latents.reshape(len(latents), -1)
    return latents.flatten(2).mean(dim=2)  # avgpool (checked)


def scaled(batch: torch.Tensor) -> torch.Tensor:
    """A batch as a network takes it, float32 on the batch's device: uint8 pictures (0-255) scaled
    to [0, 1], anything else cast."""
    if batch.dtype == torch.uint8:
        return batch.float().div_(255.0)
    return batch.float()


def network_input(batch: np.ndarray) -> torch.Tensor:
    """A batch as stored (a :data:`Reader`'s result) -> the network's float32 input on the CPU."""
    # as laid out: a convolution's bits depend on its input's memory layout (channels-last or not)
    return scaled(torch.from_numpy(batch))


@checked(batch_size=Count)
def encode_pictures(model: nn.Module, pictures: np.ndarray, device: str = "cpu", batch_size: int = 64) -> torch.Tensor:
    """The encoder's full (unpooled) latents of ``pictures`` (n, 3, H, W) uint8, on the CPU:
    (n, C, h, w) float32."""
    with torch.inference_mode():
        return torch.cat([model.encode(network_input(pictures[i:i + batch_size]).to(device)).cpu()
                          for i in range(0, len(pictures), batch_size)])


def decode_latents(model: nn.Module, latents: np.ndarray, latent_shape: list[int], device: str = "cpu") -> np.ndarray:
    """The decoder applied to flattened latents (n, C*h*w): pictures (n, 3, H, W) float32 in [0, 1]."""
    with torch.inference_mode():
        z = torch.from_numpy(latents.astype(np.float32)).reshape(len(latents), *latent_shape).to(device)
        return model.decoder(z).cpu().numpy()
