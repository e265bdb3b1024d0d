"""compute.device for a stage whose CPU path runs no torch (rsa's numba kernels): torch, ~200 MB of
the stage's memory, is loaded only where a GPU could be used; where one is asked for and torch sees
none, the error says so. Each case runs in a fresh process: torch, once loaded, stays."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PROGRAM = """
import sys
from pathlib import Path
from neurolatent.errors import NeurolatentError
from neurolatent.pipeline.numerics import kernel_device
try:
    device = kernel_device({choice!r}, 1, tuple(Path(p) for p in {drivers!r}))
except NeurolatentError as exc:
    device = f"error: {{exc}}"
print(device, "torch" in sys.modules)
"""


def _device(choice: str, drivers: list[str]) -> str:
    done = subprocess.run([sys.executable, "-c", PROGRAM.format(choice=choice, drivers=drivers)],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.mark.parametrize("choice", ["cpu", "auto"])
def test_without_a_gpu_driver_the_cpu_is_chosen_without_loading_torch(tmp_path, choice):
    assert _device(choice, [str(tmp_path / "no-driver")]) == "cpu False"


@pytest.mark.skipif(any(Path(p).exists() for p in ("/proc/driver/nvidia", "/dev/kfd")),
                    reason="a GPU machine: torch may see a device")
def test_with_a_gpu_driver_torch_decides(tmp_path):
    # this machine's driver folder is a stand-in: torch itself sees no CUDA device here
    assert _device("auto", [str(tmp_path)]) == "cpu True"
    assert _device("cuda", []) == ("error: compute.device: cuda was asked for, but torch sees no CUDA device True")
