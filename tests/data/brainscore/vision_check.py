"""Run by a side environment with brain-score/vision installed (tests/io/test_exports.py): the export's
plugin inside a brain-score/vision clone, as its README tells a user, through Brain-Score's own code.
Copies ``<export>/plugin/{data,benchmarks}/<identifier>`` into the clone's ``brainscore_vision/``,
loads the data plugin (``load_dataset``, ``load_stimulus_set``) and every benchmark the benchmark
plugin registers (``load_benchmark``), takes each one's ceiling, and scores a model-like stand-in on
each: ``PrecomputedFeatures`` holding every image's pixels (8 x 8, RGB, 192 features). Prints JSON:
{"presentations", "neuroids", "stimuli", "benchmarks": {identifier: {"ceiling", "score", "raw"}}}.

usage: python vision_check.py <brain-score/vision clone> <export's brainscore folder> <identifier> [<region>]
(with a region, only that region's benchmarks: Brain-Score's split-half ceiling takes minutes a region at the
demo's size)
"""

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

clone, export, identifier = Path(sys.argv[1]), Path(sys.argv[2]).resolve(), sys.argv[3]
os.environ["NEUROLATENT_EXPORTS"] = str(export)
for kind in ("data", "benchmarks"):
    target = clone / "brainscore_vision" / kind / identifier
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(export / "plugin" / kind / identifier, target)

from brainscore_core.supported_data_standards.brainio.assemblies import NeuroidAssembly  # noqa: E402
from brainscore_vision import benchmark_registry, load_benchmark, load_dataset, load_stimulus_set  # noqa: E402
from brainscore_vision.benchmark_helpers import PrecomputedFeatures  # noqa: E402
from brainscore_core.plugin_management.import_plugin import import_plugin  # noqa: E402

assembly = load_dataset(identifier)
stimuli = load_stimulus_set(identifier)
pixels = np.stack([np.asarray(Image.open(stimuli.get_stimulus(sid)).convert("RGB").resize((8, 8)), dtype=float).ravel()
                   for sid in stimuli["stimulus_id"]])
# two coords a dim: brainio collapses a dim with one coord into a plain index, without the coord's name
features = NeuroidAssembly(pixels[:, :, None], coords={
    "stimulus_id": ("presentation", stimuli["stimulus_id"].values),
    "image_file_name": ("presentation", stimuli["image_file_name"].values),
    "neuroid_id": ("neuroid", [f"pixel{i}" for i in range(pixels.shape[1])]),
    "layer": ("neuroid", ["pixels"] * pixels.shape[1]),
    "time_bin_start": ("time_bin", [70]), "time_bin_end": ("time_bin", [170])},
    dims=["presentation", "neuroid", "time_bin"])
model = PrecomputedFeatures(features, visual_degrees=8)
import_plugin("brainscore_vision", "benchmarks", f"{identifier}.EarlyVis-ridge")
found = {}
prefix = f"{identifier}.{sys.argv[4]}-" if len(sys.argv) > 4 else f"{identifier}."
for name in sorted(key for key in benchmark_registry if key.startswith(prefix)):
    benchmark = load_benchmark(name)
    score = benchmark(model)
    found[name] = {"ceiling": float(benchmark.ceiling), "score": float(score),
                   "raw": float(score.attrs["raw"])}
print(json.dumps({"presentations": int(assembly.sizes["presentation"]), "neuroids": int(assembly.sizes["neuroid"]),
                  "stimuli": len(stimuli), "benchmarks": found}))
