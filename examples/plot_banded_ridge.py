"""
Banded ridge and the variance partition
=======================================

RSA says which model's geometry an ROI resembles; an encoding model says how much of each voxel's
response a feature space predicts on images it was not fitted on. With several feature spaces at
once, banded ridge fits them together with one penalty per space and voxel, and the held-out
variance it explains can be divided among the spaces. On the twin each ROI was planted from one
family, so that family should take the largest share in its ROI.
"""

# %%
# One subject of the twin, 185 images
# -----------------------------------
# BOLD5000's first five runs of session 1 give 185 images; one subject's ROIs are planted from the
# three families (EarlyVis low-level, LOC object, OPA, PPA and RSC scene) on a 4 mm grid (the test
# suite's twin: a few hundred voxels, so that the fits take seconds), and each image's response is
# its planted pattern plus unit noise (SNR 1). 80 % of the images train, 20 % test.
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from neurolatent.io import twin
from neurolatent.science import synthetic
from neurolatent.science.encoding import band_split, variance_partition, winning_band
from neurolatent.science.stats import zscore

ROIS = ["EarlyVis", "LOC", "OPA", "PPA", "RSC"]
settings = synthetic.TwinSettings(seed=0, snr=1.0, voxel_size_mm=4, image_size=64, roi_radius_mm=7.0,
                                  noise_percent=1.0, drift_scale=2.0,
                                  families={"EarlyVis": "lowlevel", "LOC": "object", "OPA": "scene",
                                            "PPA": "scene", "RSC": "scene"})
schedule = twin.selected_schedule(["CSI1"], sessions=[1], runs=[1, 2, 3, 4, 5], seed=settings.seed)
stimuli = twin.stimulus_table(schedule)
with tempfile.TemporaryDirectory() as folder:
    families = twin.write_stimuli(stimuli, Path(folder), settings.image_size)
families_z = {name: zscore(values) for name, values in families.items()}
subject = twin.plant_subject("CSI1", twin.mni_template(settings.voxel_size_mm), families_z, settings)
rng = np.random.default_rng(0)
responses = settings.snr * subject.patterns + rng.standard_normal(subject.patterns.shape)
roi_of_voxel = np.array([label[2:] for label in subject.region_rois])
test = np.sort(rng.permutation(len(stimuli))[: len(stimuli) // 5])
train = np.setdiff1d(np.arange(len(stimuli)), test)
print(f"{len(stimuli)} images ({len(train)} train, {len(test)} test), {responses.shape[1]} voxels; "
      "features per family:", {name: values.shape[1] for name, values in families.items()})

# %%
# The partition: every subset of the bands fitted
# -----------------------------------------------
# :func:`~neurolatent.science.encoding.variance_partition` fits banded ridge
# (:class:`~neurolatent.science.banded.BandedRidgeCV`, penalties chosen per voxel by 5-fold
# cross-validation on the training images) on each of the 7 non-empty subsets of the three bands,
# scores each on the test images (R^2), and divides the joint R^2 into each band's unique part (what
# only it explains) and the parts bands share, by inclusion-exclusion.
partition = variance_partition(families_z, responses, train=train, test=test, n_iter=10)
parts = partition.parts

fig, ax = plt.subplots(figsize=(9, 4))
colours = {("lowlevel",): "C0", ("object",): "C1", ("scene",): "C2"}
bottom_pos, bottom_neg = np.zeros(len(ROIS)), np.zeros(len(ROIS))
for part, values in parts.items():
    share = np.array([values[roi_of_voxel == roi].mean() for roi in ROIS])
    base = np.where(share >= 0, bottom_pos, bottom_neg)
    ax.bar(range(len(ROIS)), share, bottom=base, color=colours.get(part, None),
           label=("unique: " if len(part) == 1 else "shared: ") + " & ".join(part),
           alpha=1.0 if len(part) == 1 else 0.45)
    bottom_pos += np.clip(share, 0, None)
    bottom_neg += np.clip(share, None, 0)
full = [partition.full[roi_of_voxel == roi].mean() for roi in ROIS]
ax.hlines(full, np.arange(len(ROIS)) - 0.3, np.arange(len(ROIS)) + 0.3, color="k", lw=2,
          label="joint R^2 (all bands)")
ax.axhline(0, color="k", lw=0.5)
ax.set_xticks(range(len(ROIS)), [f"{roi}\n({settings.families[roi]})" for roi in ROIS])
ax.set_xlabel("ROI (its planted family)")
ax.set_ylabel("held-out R^2, mean over the ROI's voxels")
ax.set_title("The variance partition of CSI1's held-out R^2")
ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8)
fig.tight_layout()

# %%
# Each bar is a ROI's joint held-out R^2 cut into parts (the black line: the joint R^2 itself, the
# parts above zero less those below). The planted family's unique part is the
# largest solid block in every ROI: low-level in EarlyVis, object in LOC, scene in OPA, PPA and RSC.
# The shared parts are real too: the families correlate across images (the category shapes both the
# objects and the layout), so part of a ROI's variance is explained by either of two bands, and the
# partition cannot give it to one. The other bands' unique parts are near zero, sometimes below: a
# band that only adds noise to the fit costs held-out R^2, and the partition keeps that rather than
# clipping it.

# %%
# One fit instead of seven, and the winner per voxel
# --------------------------------------------------
# :func:`~neurolatent.science.encoding.band_split` fits all bands once and splits the joint R^2
# among them by the product measure (himalaya's ``r2_score_split``): the shares sum to the joint R^2
# with no shared parts, and its cost does not grow with the subsets. The winning band of each voxel
# (:func:`~neurolatent.science.encoding.winning_band`) is then counted per ROI.
split = band_split(families_z, responses, train=train, test=test, n_iter=10)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for winner_of, ax, title in ((winning_band(partition, min_r2=0.05), axes[0], "unique R^2 (variance_partition)"),
                             (winning_band(split, min_r2=0.05), axes[1], "share (band_split)")):
    counts = np.array([[np.mean(winner_of[roi_of_voxel == roi] == b) for roi in ROIS]
                       for b in range(len(partition.bands))])
    for b, band in enumerate(partition.bands):
        ax.bar(range(len(ROIS)), counts[b], bottom=counts[:b].sum(axis=0), color=f"C{b}", label=band)
    ax.set_xticks(range(len(ROIS)), ROIS)
    ax.set_ylim(0, 1)
    ax.set_title(f"the band with the largest {title}")
axes[0].set_ylabel("fraction of the ROI's voxels\n(the rest: joint R^2 < 0.05)")
axes[1].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
fig.tight_layout()

# %%
# Both measures give most of each ROI's predicted voxels to its planted family; the voxels left
# white are those the model does not predict above R^2 0.05 (at SNR 1 a voxel's best possible R^2
# is 0.5, and noise takes some of it).
for roi in ROIS:
    voxels = roi_of_voxel == roi
    unique = {band: float(partition.unique[band][voxels].mean()) for band in partition.bands}
    print(f"{roi}: largest unique part {max(unique, key=unique.get)} (planted {settings.families[roi]}), "
          + ", ".join(f"{band} {value:+.3f}" for band, value in unique.items()))
plt.show()
