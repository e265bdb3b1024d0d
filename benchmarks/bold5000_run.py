"""A BOLD5000-size scene run for the benchmarks: 106 x 106 x 69 voxels at 2 mm, 194 volumes, int16,
gzip level 1 (as the dataset stage writes), the MNI152 brain resampled onto that grid with noise and
a response to 37 trials (one every 10 s, shown for 1 s: BOLD5000's design). Larger voxels
(``voxel_mm``) give the same field of view on a coarser grid: the benchmarks' ``--smoke`` runs."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from nilearn import datasets
from nilearn.image import resample_img

from neurolatent.io import bids
from neurolatent.io.nifti import write_nifti_gz
from neurolatent.science import synthetic

SHAPE = (106, 106, 69)
N_TRIALS = 37


def bold5000_size_run(folder: Path, voxel_mm: int = 2) -> tuple[Path, np.ndarray, np.ndarray, np.ndarray]:
    """Write the run into ``folder`` once; returns (path, onsets_s, durations_s, visual mask)."""
    shape = tuple(-(-side * 2 // voxel_mm) for side in SHAPE)  # BOLD5000's field of view
    affine = np.diag([float(voxel_mm)] * 3 + [1.0])
    affine[:3, 3] = -np.array(SHAPE) + np.array([0.0, -18.0, 18.0])  # centred on the brain
    template = resample_img(datasets.load_mni152_template(resolution=2), target_affine=affine,
                            target_shape=shape, interpolation="continuous", force_resample=True,
                            copy_header=True).get_fdata()
    brain = template > 0.1 * template.max()
    # the visual region: brain voxels within 12 mm of the ten ROI centres (both hemispheres)
    xyz = (affine[:3, :3] @ np.indices(shape).reshape(3, -1) + affine[:3, 3:]).T
    near = np.zeros(len(xyz), dtype=bool)
    for x, y, z in synthetic.ROI_CENTRES_MM.values():
        for sign in (1.0, -1.0):
            near |= np.linalg.norm(xyz - np.array([sign * x, y, z]), axis=1) <= 12.0
    mask = near.reshape(shape) & brain
    onsets = 6.0 + 10.0 * np.arange(N_TRIALS)
    durations = np.ones(N_TRIALS)
    path = Path(folder) / f"bold5000_size_run_{voxel_mm}mm.nii.gz"
    if not path.exists():
        rng = np.random.default_rng(0)
        response = synthetic.trial_regressors(onsets, durations, bids.N_VOLUMES, bids.TR_S).sum(axis=1)
        series = 1000.0 * template[brain][:, None] / template.max() * (1 + 0.01 * response[None, :])
        series += rng.normal(0, 10.0, series.shape)
        data = np.zeros(shape + (bids.N_VOLUMES,), dtype=np.int16)
        data[brain] = np.clip(np.rint(series), 0, 32767).astype(np.int16)
        write_nifti_gz(nib.Nifti1Image(data, affine), path)
    return path, onsets, durations, mask
