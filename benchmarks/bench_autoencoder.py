"""Benchmark: throughput of the study's fMRI autoencoder at 672 px and of ViT-B/16 embedding.

Reports samples/s on CPU and, when torch sees CUDA, on the GPU with the GPU/CPU ratio, all in this
process: AE training steps (Adam, MSE, forward + backward) and inference, and ViT-B/16
(``google/vit-base-patch16-224-in21k``'s architecture, built from its config with random weights:
the same arithmetic as the trained model, no download) embedding 224 px images.

    python benchmarks/bench_autoencoder.py [--batch 8] [--steps 3]
    python benchmarks/bench_autoencoder.py --smoke    # one sample, one step, 128 px and 32 px (tests)
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


def measure(device: torch.device, batch: int, steps: int, size: int = 672, vit_size: int = 224) -> dict[str, float]:
    torch.manual_seed(0)
    model = ConvAutoencoder([3, 16, 32, 64, 128, 256]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-5)
    pictures = torch.rand(batch, 3, size, size, device=device)

    def train_step():
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(pictures), pictures).backward()
        optimizer.step()

    def encode():
        with torch.inference_mode():
            model.encode(pictures)

    vit = ViTModel(ViTConfig(image_size=vit_size), add_pooling_layer=False).to(device).eval()  # ViT-B/16, 224 px
    images = torch.rand(2 * batch, 3, vit_size, vit_size, device=device)

    def embed():
        with torch.inference_mode():
            vit(pixel_values=images).last_hidden_state.reshape(len(images), -1)

    return {f"AE train ({size} px)": rate(train_step, batch, steps, device),
            f"AE encode ({size} px)": rate(encode, batch, steps, device),
            f"ViT-B/16 embed ({vit_size} px)": rate(embed, 2 * batch, steps, device)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="a tiny size: batch 1, 1 step, 128 px AE, 32 px ViT")
    args = parser.parse_args()
    size, vit_size = (128, 32) if args.smoke else (672, 224)
    if args.smoke:
        args.batch, args.steps = 1, 1
    results = {"cpu": measure(torch.device("cpu"), args.batch, args.steps, size, vit_size)}
    if torch.cuda.is_available():
        results["cuda"] = measure(torch.device("cuda"), args.batch, args.steps if args.smoke else max(args.steps, 10),
                                  size, vit_size)
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
