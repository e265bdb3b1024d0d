"""neurolatent's BOLD5000 export as a Brain-Score vision data plugin (written by `neurolatent export`).

Copy this folder to brainscore_vision/data/{identifier}/ in a brain-score/vision clone and set
NEUROLATENT_EXPORTS to the export's brainscore folder (the one holding assembly.nc and
stimulus_set.csv; image_path in the CSV is relative to it).
"""

import os
from pathlib import Path

import pandas as pd

from brainscore_vision import data_registry, stimulus_set_registry
from brainscore_core.supported_data_standards.brainio.assemblies import NeuroidAssembly, StimulusMergeAssemblyLoader
from brainscore_core.supported_data_standards.brainio.stimuli import StimulusSet

EXPORTS = Path(os.environ.get("NEUROLATENT_EXPORTS", "exports/brainscore"))


def load_stimulus_set() -> StimulusSet:
    """The export's images: stimulus_set.csv, each image's file resolved from its folder."""
    table = pd.read_csv(EXPORTS / "stimulus_set.csv")
    stimuli = StimulusSet(table.drop(columns=["image_path"]))
    stimuli.stimulus_paths = {stimulus_id: str((EXPORTS / path).resolve())
                              for stimulus_id, path in zip(table["stimulus_id"], table["image_path"])}
    stimuli.identifier = stimuli.name = "{identifier}_Stimuli"
    return stimuli


def load_assembly() -> NeuroidAssembly:
    """assembly.nc as a NeuroidAssembly, the stimulus set merged into its presentations."""
    stimuli = load_stimulus_set()
    assembly = StimulusMergeAssemblyLoader(cls=NeuroidAssembly, file_path=str(EXPORTS / "assembly.nc"),
                                           stimulus_set_identifier=stimuli.identifier, stimulus_set=stimuli).load()
    assembly.attrs["identifier"] = "{identifier}_Assembly"
    return assembly


stimulus_set_registry["{identifier}"] = load_stimulus_set
data_registry["{identifier}"] = load_assembly
