"""Benchmark: throughput of the study's fMRI autoencoder at 672 px and of ViT-B/16 embedding.

Reports samples/s on CPU and, when torch sees CUDA, on the GPU with the GPU/CPU ratio, all in this
process: AE training steps (Adam, MSE, forward + backward) and inference, and ViT-B/16
(``google/vit-base-patch16-224-in21k``'s architecture, built from its config with random weights:
the same arithmetic as the trained model, no download) embedding 224 px images.

    python benchmarks/bench_autoencoder.py [--batch 8] [--steps 3]
"""

from __future__ import annotations

import argparse
import time

import torch
from transformers import ViTConfig, ViTModel

from neurolatent.models.autoencoder import ConvAutoencoder


def rate(work, samples: int, steps: int, device: torch.device) -> float:
    work()  # warm-up (cuDNN autotune, allocations)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        work()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return samples * steps / (time.perf_counter() - start)


def measure(device: torch.device, batch: int, steps: int) -> dict[str, float]:
    torch.manual_seed(0)
    model = ConvAutoencoder([3, 16, 32, 64, 128, 256]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-5)
    pictures = torch.rand(batch, 3, 672, 672, device=device)

    def train_step():
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(pictures), pictures).backward()
        optimizer.step()

    def encode():
        with torch.inference_mode():
            model.encode(pictures)

    vit = ViTModel(ViTConfig(), add_pooling_layer=False).to(device).eval()  # ViT-B/16, 224 px
    images = torch.rand(2 * batch, 3, 224, 224, device=device)

    def embed():
        with torch.inference_mode():
            vit(pixel_values=images).last_hidden_state.reshape(len(images), -1)

    return {"AE train (672 px)": rate(train_step, batch, steps, device),
            "AE encode (672 px)": rate(encode, batch, steps, device),
            "ViT-B/16 embed (224 px)": rate(embed, 2 * batch, steps, device)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    results = {"cpu": measure(torch.device("cpu"), args.batch, args.steps)}
    if torch.cuda.is_available():
        results["cuda"] = measure(torch.device("cuda"), args.batch, max(args.steps, 10))
        print(f"GPU: {torch.cuda.get_device_name()}")
    print(f"CPU threads: {torch.get_num_threads()}")
    for name, cpu in results["cpu"].items():
        line = f"{name:26s} CPU {cpu:8.2f} samples/s"
        if "cuda" in results:
            gpu = results["cuda"][name]
            line += f"   GPU {gpu:9.1f} samples/s   GPU/CPU {gpu / cpu:6.1f}x"
        print(line)


if __name__ == "__main__":
    main()
