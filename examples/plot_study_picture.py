"""
The study's picture of a volume
===============================

The reference study (Dalbagno et al.) did not give its fMRI autoencoder the voxels: it gave it a
picture of each volume, drawn by nilearn's ``plot_stat_map`` (three orthogonal cuts, no background,
threshold 100, the colour scale of each volume its own) and squashed to a 672 x 672 square.
:func:`~neurolatent.science.render.render_study_picture` draws that picture. Here it is beside the
slices it was drawn from, for one volume of a twin run, and the planted response is traced through
it.
"""

# %%
# One volume of a twin run
# ------------------------
# CSI1's anatomy and planted responses, and the first run of session 1: every brain voxel's BOLD is
# its baseline intensity (the MNI template's, about 1000 in the brain) plus, in the visual ROIs, the
# trial responses, with slow drift and noise of 1 % of the baseline. The SNR is the twin's default, 1:
# a trial's response is as large as the voxel's noise.
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np
from nilearn.plotting import find_xyz_cut_coords

from neurolatent.io import bids, twin
from neurolatent.science import synthetic
from neurolatent.science.render import render_study_picture
from neurolatent.science.stats import zscore

settings = synthetic.TwinSettings(seed=0, snr=1.0, voxel_size_mm=2, image_size=64, roi_radius_mm=7.0,
                                  noise_percent=1.0, drift_scale=2.0,
                                  families={"EarlyVis": "lowlevel", "LOC": "object", "OPA": "scene",
                                            "PPA": "scene", "RSC": "scene"})
trials = twin.selected_schedule(["CSI1"], sessions=[1], runs=[1], seed=settings.seed)
stimuli = twin.stimulus_table(trials)
with tempfile.TemporaryDirectory() as folder:
    families = twin.write_stimuli(stimuli, Path(folder), settings.image_size)
subject = twin.plant_subject("CSI1", twin.mni_template(settings.voxel_size_mm),
                             {name: zscore(values) for name, values in families.items()}, settings)
anatomy = subject.anatomy
design = synthetic.trial_regressors(trials["onset"].to_numpy(float), trials["duration"].to_numpy(float),
                                    bids.N_VOLUMES, bids.TR_S)
row_of_image = {name: i for i, name in enumerate(stimuli["image_name"])}
responses = subject.patterns[[row_of_image[name] for name in trials["ImgName"]]]


def run_at(snr: float) -> np.ndarray:
    """The run's BOLD of every brain voxel, (n_volumes, n_brain): the same drift and noise at any SNR."""
    return synthetic.bold_timeseries(design, responses, subject.region_columns, subject.baseline,
                                     subject.noise_sd, snr, settings.drift_scale, np.random.default_rng(0),
                                     bids.TR_S)


def volume(values: np.ndarray) -> np.ndarray:
    """One volume's brain values on the T1w grid (zero outside the brain)."""
    grid = np.zeros(anatomy.brain.shape, dtype=np.float32)
    grid[anatomy.brain] = values
    return grid


t = int(np.argmax(design.sum(axis=1)))  # a volume near a trial's peak response
bold = volume(run_at(settings.snr)[t])
picture = render_study_picture(bold, anatomy.t1w_affine, size=336)
print(f"volume {t} of {bids.N_VOLUMES}: T1w grid {bold.shape}, brain values "
      f"{bold[anatomy.brain].min():.0f} to {bold.max():.0f}; picture {picture.shape}")

# %%
# The picture beside its slices
# -----------------------------
# The slices are where nilearn cuts (``find_xyz_cut_coords``, which ``plot_stat_map`` calls: the
# centre of the largest blob above the threshold), drawn in grey with the planted ROIs outlined.
# The picture puts the coronal, sagittal and axial cuts side by side in the study's nilearn 0.10.4
# layout and ``cold_hot`` colours, then squashes the 660 x 350 figure into a square, which is why
# the coronal and axial cuts look tall and narrow.
x, y, z = find_xyz_cut_coords(nib.Nifti1Image(bold, anatomy.t1w_affine), activation_threshold=100)
i, j, k = np.rint(np.linalg.inv(anatomy.t1w_affine) @ [x, y, z, 1])[:3].astype(int)
region = anatomy.region
cuts = {"coronal (y)": (bold[:, j, :], region[:, j, :]), "sagittal (x)": (bold[i, :, :], region[i, :, :]),
        "axial (z)": (bold[:, :, k], region[:, :, k])}
fig, axes = plt.subplots(1, 4, figsize=(13, 3.8), gridspec_kw={"width_ratios": [1, 1.25, 1, 1.6]},
                         layout="constrained")
for ax, (title, (cut, rois)) in zip(axes, cuts.items()):
    ax.imshow(cut.T, origin="lower", cmap="gray")
    ax.contour(rois.T, levels=[0.5], colors="C1", linewidths=0.8)
    ax.set_title(title)
    ax.axis("off")
axes[-1].imshow(picture)
axes[-1].set_title("the study's picture (render_study_picture)")
axes[-1].axis("off")
fig.suptitle(f"CSI1, run 1, volume {t}: the source slices (ROIs in orange) and the picture the study's "
             "AE saw")

# %%
# Every brain voxel's value is near 1000, far above the threshold of 100, so the picture draws the
# whole brain: what the study's autoencoder saw was first of all the anatomy, the baseline
# intensities, coloured by ``cold_hot`` from blue (the lowest values: the ventricles, the midline)
# through red (grey matter) to yellow (white matter).

# %%
# Where is the planted response?
# ------------------------------
# The same volume with the SNR set to 0 has the same drift and noise and no trace of the images.
# Its picture is drawn the same way; the difference of the two pictures is all the picture says
# about the stimulus.
blank = render_study_picture(volume(run_at(0.0)[t]), anatomy.t1w_affine, size=336)
difference = np.abs(picture.astype(int) - blank.astype(int)).sum(axis=2)
changed = np.mean(difference > 0)
fig, axes = plt.subplots(1, 3, figsize=(12, 4.2), layout="constrained")
axes[0].imshow(picture)
axes[0].set_title(f"SNR {settings.snr}")
axes[1].imshow(blank)
axes[1].set_title("SNR 0 (no response at all)")
shown = axes[2].imshow(difference, cmap="magma")
axes[2].set_title(f"|difference|, summed over RGB: {changed:.1%} of pixels change")
fig.colorbar(shown, ax=axes[2], shrink=0.8)
for ax in axes:
    ax.axis("off")

# %%
# The response is 1 % of the baseline, and the colour scale spans the volume's whole range, so the
# stimulus moves a few pixels by a level or two of the colour map, within the ROIs' few slices that
# a cut passes through. Whatever an autoencoder learns from these pictures, it learns mostly the
# anatomy, which is the same for every trial of a subject: the planted truth says the pictures carry
# next to nothing of the image that was seen.
print(f"pixels changed by the response: {changed:.2%}; largest change {difference.max()} (of 765)")
plt.show()
