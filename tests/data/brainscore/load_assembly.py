"""Run by the side environment's Python (tests/io/test_exports.py): load an exported assembly with
Brain-Score's own classes, as the plugin's data/__init__.py does, and print what came back as JSON.

usage: python load_assembly.py <folder with assembly.nc and stimulus_set.csv>
"""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from brainscore_core.supported_data_standards.brainio.assemblies import NeuroidAssembly, StimulusMergeAssemblyLoader
from brainscore_core.supported_data_standards.brainio.stimuli import StimulusSet

folder = Path(sys.argv[1])
table = pd.read_csv(folder / "stimulus_set.csv")
stimuli = StimulusSet(table.drop(columns=["image_path"]))
stimuli.stimulus_paths = {sid: str(folder / path) for sid, path in zip(table["stimulus_id"], table["image_path"])}
stimuli.identifier = stimuli.name = "export_test_Stimuli"
assembly = StimulusMergeAssemblyLoader(cls=NeuroidAssembly, file_path=str(folder / "assembly.nc"),
                                       stimulus_set_identifier=stimuli.identifier, stimulus_set=stimuli).load()
cells = {}
for stimulus_id, repetition in zip(assembly["stimulus_id"].values, assembly["repetition"].values):
    picked = assembly.sel(stimulus_id=stimulus_id, repetition=repetition).isel(time_bin=0)
    cells[f"{stimulus_id}/{repetition}"] = [None if np.isnan(v) else float(v) for v in np.asarray(picked).ravel()]
print(json.dumps({"class": type(assembly).__name__, "dims": list(assembly.dims),
                  "neuroid_id": [str(v) for v in assembly["neuroid_id"].values],
                  "category": sorted({str(v) for v in assembly["category"].values}),
                  "stimulus_path": stimuli.get_stimulus(str(assembly["stimulus_id"].values[0])),
                  "cells": cells}))
