"""Per-stimulus matrices: rows named by the image they are the response or the features of, joined
by name, never by position (:class:`StimulusMatrix`), and what is done to them before any model:
averaging repeated presentations, and the study's pairing by position.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from neurolatent.errors import NeurolatentError


@dataclass(frozen=True)
class StimulusMatrix:
    """matrix : (n_rows, n_features) float32; stimuli : image name of each row."""

    name: str
    matrix: np.ndarray
    stimuli: tuple[str, ...]

    def rows(self, names: list[str] | tuple[str, ...]) -> np.ndarray:
        """The rows of ``names`` in that order; NeurolatentError names the first one missing."""
        position = pd.Series(np.arange(len(self.stimuli)), index=list(self.stimuli))
        missing = [name for name in names if name not in position.index]
        if missing:
            raise NeurolatentError(f"{self.name}: no row for image {missing[0]!r} ({len(missing)} missing)")
        return self.matrix[position.loc[list(names)].to_numpy()]


def average_repeats(trials: StimulusMatrix, name: str) -> StimulusMatrix:
    """One row per image (sorted by name): the mean of its presentations."""
    codes, unique = pd.factorize(np.asarray(trials.stimuli), sort=True)
    sums = np.zeros((len(unique), trials.matrix.shape[1]), dtype=np.float64)
    np.add.at(sums, codes, trials.matrix)
    return StimulusMatrix(name, (sums / np.bincount(codes)[:, None]).astype(np.float32), tuple(unique))


def paired_by_position(sample: StimulusMatrix, shown: list[str], model_order: tuple[str, ...]) -> StimulusMatrix:
    """The study's pairing: the subject's rows in the order its images were first ``shown``, the
    i-th labelled with the i-th image of the model's own row order (``model_order``: the order of
    ``stimuli.parquet``, every image model's), the n first of each (RSA.py stacked the first 4,916
    values of two dicts built in different orders). Row i is then compared with an image it
    was not the response to, unless the two orders happen to agree."""
    rows = sample.rows([name for name in shown if name in set(sample.stimuli)])
    n = min(len(rows), len(model_order))
    return StimulusMatrix(sample.name, rows[:n], tuple(model_order[:n]))


def presentations(trials: pd.DataFrame, stimuli: pd.DataFrame) -> pd.DataFrame:
    """One row per (subject, image) a subject saw, sorted by subject then by ``stimuli``' row:
    columns subject, stimulus_row, presentations (how many trials showed it), image_name.
    trials : a row per trial (subject, image_name); stimuli : a row per image (image_name)."""
    stimulus_row = pd.Series(np.arange(len(stimuli)), index=stimuli["image_name"])
    groups = (trials.assign(stimulus_row=stimulus_row.reindex(trials["image_name"]).to_numpy())
              .groupby(["subject", "stimulus_row"], sort=True).size().rename("presentations").reset_index())
    groups["image_name"] = stimuli["image_name"].to_numpy()[groups["stimulus_row"]]
    return groups
