"""Net2Brain's RSA (cvai-roig-lab/Net2Brain, net2brain/evaluations/rsa.py, noiseceiling.py,
eval_helper.py), transcribed for the tests with squared=False and the spearman distance: the
reference the export's numbers and files are checked against. Net2Brain itself is not on PyPI."""

from __future__ import annotations

import os
import re

import numpy as np
from scipy import stats
from scipy.spatial.distance import squareform


def numbers(model: np.ndarray, brain: np.ndarray) -> dict:
    """RSA.rsa_fmri, NoiseCeiling.get_lowernoiseceiling / get_uppernoiseceiling and evaluate_roi."""
    def nc_spearman(a, b):
        n = a.shape[0]
        return stats.spearmanr(a[np.triu_indices(n, 1)], b[np.triu_indices(n, 1)])[0]

    corr = [stats.spearmanr(squareform(rdm, force="tovector", checks=False),
                            squareform(model, force="tovector", checks=False))[0] for rdm in brain]
    lnc = sum(nc_spearman(brain[i], np.mean(np.delete(brain, i, axis=0), axis=0)) for i in range(len(brain))) / len(brain)
    unc = sum(nc_spearman(brain[i], np.mean(brain, axis=0)) for i in range(len(brain))) / len(brain)
    r = np.mean(corr)
    return {"R": r, "%R": r / lnc * 100.0, "Significance": stats.ttest_1samp(corr, 0)[1], "SEM": stats.sem(corr),
            "LNC": lnc, "UNC": unc}


def _listing(path):
    """RSA.folderlookup: every file but .json ones."""
    return [f for f in os.listdir(path) if ".json" not in f and ".DS_Store" not in f and f != ".ipynb_checkpoints"]


def _natural(text):
    return [int(c) if c.isdigit() else c for c in re.split(r"(\d+)", text)]


def evaluate(model_rdms_path, brain_rdms_path, model_name) -> list[dict]:
    """RSA(model_rdms_path, brain_rdms_path, model_name, squared=False).evaluate(): a row per ROI
    file x layer file, ROI and Layer without Net2Brain's "(i) " prefixes and file suffixes."""
    rows = []
    layers = sorted(_listing(model_rdms_path), key=_natural)
    for roi in sorted(_listing(brain_rdms_path)):
        brain = np.load(os.path.join(brain_rdms_path, roi))
        brain = brain[list(brain.keys())[0]]
        assert brain.ndim == 3 and brain.shape[1] == brain.shape[2]  # RSA.find_datatype: fMRI
        for layer in layers:
            model = np.load(os.path.join(model_rdms_path, layer))
            model = model[list(model.keys())[0]]
            name = layer.split("RDM_")[1].split(".npz")[0] if "RDM_" in layer else layer.split(".npz")[0]
            rows.append({"ROI": roi[:-4], "Layer": name, "Model": model_name, **numbers(model, brain)})
    return rows
