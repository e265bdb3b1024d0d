"""A skeleton of neurolatent's BOLD5000 benchmarks, after brain-score/vision's Allen2022_fmri.

Every benchmark uses the images every subject saw (presentations where no voxel of the region is
NaN). Ridge: the images' repetitions averaged, BOLD5000's split (the images shown twice or more, its
repeated images, are the test images; the others train), ridge regression per subject (alpha_coord
"subject"), ceiling the split-half consistency of the test images' repetitions (Brain-Score's
internal_consistency, Spearman-Brown corrected). RDM: Spearman of the upper triangles of the model's and each
subject's RDM, mean over subjects, over the leave-one-subject-out ceiling.
"""

import numpy as np
from scipy.stats import spearmanr

from brainscore_core.metrics import Score
from brainscore_core.supported_data_standards.brainio.stimuli import StimulusSet
from brainscore_vision import load_dataset, load_metric
from brainscore_vision.benchmark_helpers.neural_common import (TrainTestNeuralBenchmark, average_repetition,
                                                               timebins_from_assembly)
from brainscore_vision.benchmark_helpers.screen import place_on_screen
from brainscore_vision.benchmarks import BenchmarkBase
from brainscore_vision.metrics.rdm.metric import RDM, RDMSimilarity
from brainscore_vision.utils import LazyLoad

#: BOLD5000's images subtend 4.6 degrees (Chang et al. 2019)
VISUAL_DEGREES = 4.6
BIBTEX = """@article{chang2019bold5000, title={BOLD5000, a public fMRI dataset while viewing 5000 visual images},
  author={Chang, Nadine and Pyles, John A and Marcus, Austin and Gupta, Abhinav and Tarr, Michael J and Aminoff,
  Elissa M}, journal={Scientific Data}, volume={6}, pages={49}, year={2019}}"""


def load_region(region, average_repetitions, split=None):
    """The region's voxels on the images every subject saw; split "test" keeps the images shown
    twice or more (BOLD5000's repeated images), "train" the others; repetitions averaged when asked."""
    assembly = load_dataset("{identifier}")
    assembly = assembly.sel(neuroid=assembly["region"] == region).isel(time_bin=0)
    complete = ~np.isnan(assembly.values).any(axis=1)
    assembly = assembly.isel(presentation=complete)
    if split is not None:
        repeated = np.unique(assembly["stimulus_id"].values[assembly["repetition"].values > 0])
        if len(repeated) < 2:
            raise ValueError(f"{identifier}: {len(repeated)} image(s) shown twice or more in {region}: the ridge "
                             "benchmark's test images and ceiling need BOLD5000's repeated images")
        keep = np.isin(assembly["stimulus_id"].values, repeated)
        assembly = assembly.isel(presentation=keep if split == "test" else ~keep)
    # the model is shown the stimulus set: cut it to the images kept, under a name of its own (Brain-Score
    # caches the images it places on screen by that name)
    stimuli = assembly.stimulus_set
    kept = StimulusSet(stimuli[stimuli["stimulus_id"].isin(np.unique(assembly["stimulus_id"].values))])
    kept.stimulus_paths = stimuli.stimulus_paths
    kept.identifier = f"{stimuli.identifier}.{region}.{split or 'all'}"
    assembly.attrs["stimulus_set"] = kept
    return average_repetition(assembly) if average_repetitions else assembly


def Bold5000Ridge(region):
    """Ridge from the model's features to each subject's voxels, over the split-half ceiling."""
    return TrainTestNeuralBenchmark(
        identifier=f"{identifier}.{region}-ridge", version=1,
        ceiling_func=lambda: load_metric("internal_consistency")(LazyLoad(lambda: load_region(region, False, "test"))),
        train_assembly=LazyLoad(lambda: load_region(region, True, "train")),
        test_assembly=LazyLoad(lambda: load_region(region, True, "test")),
        similarity_metric=load_metric("ridge_split"), alpha_coord="subject", visual_degrees=VISUAL_DEGREES,
        number_of_trials=1, parent=region, bibtex=BIBTEX)


class Bold5000RDM(BenchmarkBase):
    """Spearman of the model's and each subject's RDM, mean over subjects, over the leave-one-subject-out
    ceiling."""

    def __init__(self, region):
        self.region = region
        self._assembly = LazyLoad(lambda: load_region(region, True))
        self._rdm, self._similarity = RDM(), RDMSimilarity()
        super().__init__(identifier=f"{identifier}.{region}-rdm", version=1, ceiling_func=self._rdm_ceiling,
                         parent=region, bibtex=BIBTEX)

    def _subject_rdms(self):
        assembly = self._assembly
        return {s: self._rdm(assembly.sel(neuroid=assembly["subject"] == s)) for s in np.unique(assembly["subject"])}

    def __call__(self, candidate):
        assembly = self._assembly
        candidate.start_recording(self.region, time_bins=timebins_from_assembly(assembly))
        stimuli = place_on_screen(assembly.stimulus_set, target_visual_degrees=candidate.visual_degrees(),
                                  source_visual_degrees=VISUAL_DEGREES)
        model = candidate.look_at(stimuli, number_of_trials=1)
        if "time_bin" in model.dims:
            model = model.squeeze("time_bin")
        model_rdm = self._rdm(model)
        raw = Score(np.mean([float(self._similarity(model_rdm, rdm)) for rdm in self._subject_rdms().values()]))
        ceiled = Score(raw.values / self.ceiling.values)
        ceiled.attrs[Score.RAW_VALUES_KEY], ceiled.attrs["ceiling"] = raw, self.ceiling
        return ceiled

    def _rdm_ceiling(self):
        # not _ceiling: BenchmarkBase's ceiling property calls its own cached _ceiling(identifier)
        rdms = {s: rdm.values for s, rdm in self._subject_rdms().items()}
        upper = np.triu_indices(len(next(iter(rdms.values()))), 1)
        return Score(np.mean([spearmanr(rdm[upper], np.mean([o for t, o in rdms.items() if t != s], axis=0)[upper])[0]
                              for s, rdm in rdms.items()]))
