"""
The noise ceiling: what it bounds
=================================

Measured responses hold noise, so even the true model of a voxel, or of an RDM, does not
correlate perfectly with them. The noise ceiling estimates how high a model can reach from the data
alone: from repeats of the same image (a voxel's ceiling) or from other subjects (an RDM's).
On the twin the true model is known, so both ceilings can be checked against what the true model
actually reaches.
"""

# %%
# Planted EarlyVis voxels, every image shown three times
# ------------------------------------------------------
# Each subject's EarlyVis voxels are planted from the low-level features of BOLD5000's first 111
# images (unit sd per voxel over images). Each presentation of an image gives the planted pattern
# times the SNR plus unit noise, so with three repeats averaged the best any model can correlate
# with a voxel is ``snr / sqrt(snr**2 + 1/3)``: that is the truth the ceiling estimates.
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from neurolatent.io import twin
from neurolatent.science import synthetic
from neurolatent.science.voxelwise import noise_ceiling_r, voxelwise_r
from neurolatent.science.rsa.compare import compare
from neurolatent.science.rsa.inference import noise_ceiling
from neurolatent.science.rsa.rdm import rdm_upper
from neurolatent.science.stats import zscore

SUBJECTS = ["CSI1", "CSI2", "CSI3", "CSI4"]
REPEATS = 3
SNRS = [0.1, 0.25, 0.5, 1.0]
settings = synthetic.TwinSettings(seed=0, snr=1.0, voxel_size_mm=2, image_size=64, roi_radius_mm=7.0,
                                  noise_percent=1.0, drift_scale=2.0, same_images=True,
                                  families={"EarlyVis": "lowlevel", "LOC": "object", "OPA": "scene",
                                            "PPA": "scene", "RSC": "scene"})
schedule = twin.selected_schedule(SUBJECTS, sessions=[1], runs=[1, 2, 3], seed=settings.seed, same_images=True)
stimuli = twin.stimulus_table(schedule)
with tempfile.TemporaryDirectory() as folder:
    families = twin.write_stimuli(stimuli, Path(folder), settings.image_size)
families_z = {name: zscore(values) for name, values in families.items()}
template = twin.mni_template(settings.voxel_size_mm)
patterns = {}
for name in SUBJECTS:
    subject = twin.plant_subject(name, template, families_z, settings)
    patterns[name] = subject.patterns[:, np.char.endswith(subject.region_rois, "EarlyVis")]
n_images = len(stimuli)
image_of_trial = np.tile(np.arange(n_images), REPEATS)
rng = np.random.default_rng(0)


def trials(pattern: np.ndarray, snr: float) -> np.ndarray:
    """Every presentation's response: (REPEATS * n_images, n_voxels)."""
    return snr * pattern[image_of_trial] + rng.standard_normal((len(image_of_trial), pattern.shape[1]))


def averaged(responses: np.ndarray) -> np.ndarray:
    """The mean of each image's repeats: (n_images, n_voxels)."""
    return responses.reshape(REPEATS, n_images, -1).mean(axis=0)


# %%
# A voxel's ceiling, from repeats
# -------------------------------
# :func:`~neurolatent.science.voxelwise.noise_ceiling_r` (NSD's estimate, Allen et al. 2022) reads
# each voxel's noise from the spread of an image's repeats and its signal from what is left. Beside
# it, the true model's own r: the correlation of the planted pattern, noise-free, with the
# repeat-averaged responses.
fig, axes = plt.subplots(1, len(SNRS), figsize=(12, 3.4), sharex=True, sharey=True)
for ax, snr in zip(axes, SNRS):
    responses = trials(patterns["CSI1"], snr)
    ceiling = noise_ceiling_r(responses, image_of_trial)
    reached = voxelwise_r(patterns["CSI1"], averaged(responses))
    ax.scatter(ceiling, reached, s=6, alpha=0.6)
    truth = snr / np.sqrt(snr ** 2 + 1 / REPEATS)
    ax.axvline(truth, color="C3", lw=1, label="planted ceiling")
    ax.axhline(truth, color="C3", lw=1)
    ax.plot([0, 1], [0, 1], color="k", lw=0.5)
    ax.set_title(f"SNR {snr}: median ceiling {np.median(ceiling):.2f}\n(truth {truth:.2f})")
    ax.set_xlabel("noise ceiling r (from repeats)")
axes[0].set_ylabel("the true model's r")
axes[0].legend(loc="upper left", frameon=False)
fig.suptitle(f"{patterns['CSI1'].shape[1]} EarlyVis voxels of CSI1")
fig.tight_layout()

# %%
# Each dot is a voxel. The estimated ceilings gather around the planted value (the red lines), and
# the true model's r gathers around the ceiling: the ceiling is what a perfect model reaches, not a
# value no model may pass. Both scatter by noise, so single voxels pass their ceiling (dots above
# the diagonal); at SNR 0.1 the ceiling of many voxels is estimated as 0 (no signal left after
# the noise), while the true model still reaches about 0.17. A model's r is read against the
# ceiling over many voxels.

# %%
# An RDM's ceiling, from other subjects
# -------------------------------------
# Each subject's EarlyVis RDM (repeats averaged) is compared with the mean RDM of the others (the
# lower bound, no overfitting to the subject) and of all subjects including itself (the upper bound)
# by :func:`~neurolatent.science.rsa.inference.noise_ceiling`. The models: the true RDM (the mean of
# the subjects' noise-free RDMs, known only on the twin), the planted low-level family's RDM, a family
# planted elsewhere (scene), and random features.
true_rdm = np.mean([rdm_upper(pattern) for pattern in patterns.values()], axis=0)
model_rdms = {"true RDM (noise-free responses)": true_rdm}
model_rdms |= {name: rdm_upper(values) for name, values in
               {"planted family: low-level": families_z["lowlevel"], "scene family": families_z["scene"],
                "null (random)": rng.standard_normal((n_images, 18))}.items()}
snr_grid = np.linspace(0.1, 1.0, 7)
lower, upper, model_r = [], [], {name: [] for name in model_rdms}
for snr in snr_grid:
    subject_rdms = np.stack([rdm_upper(averaged(trials(patterns[name], snr))) for name in SUBJECTS])
    low, high = noise_ceiling(subject_rdms, "spearman")
    lower.append(low)
    upper.append(high)
    for name, rdm in model_rdms.items():
        model_r[name].append(np.mean([compare(rdm, own, "spearman") for own in subject_rdms]))

fig, ax = plt.subplots(figsize=(7, 4))
ax.fill_between(snr_grid, lower, upper, color="0.8", label="noise ceiling (lower to upper)")
for name, values in model_r.items():
    ax.plot(snr_grid, values, "o-", label=name)
ax.axhline(0, color="k", lw=0.5)
ax.set_xlabel("planted SNR")
ax.set_ylabel("Spearman r with subjects' RDMs (mean)")
ax.set_title(f"EarlyVis, {len(SUBJECTS)} subjects, {REPEATS} repeats averaged")
ax.legend(frameon=False)
fig.tight_layout()

# %%
# The true RDM climbs with the SNR inside the grey band: the ceiling is what the true model
# reaches, and it is estimated from the subjects alone. The planted family's RDM follows it at low
# SNR, where noise dominates, then levels off below the band: the family is the right one, but the
# correlation distance between images' 18 feature values is not quite the geometry of the voxels,
# each a random mix of those features scaled to unit sd. That gap is the model's, not the noise's,
# and only the ceiling shows it. The scene family rises a little (scene and low-level features
# correlate across images) and the random model stays at zero at every SNR. A model above the upper
# bound would be fitting noise.
print("ceiling at SNR 1:", f"[{lower[-1]:.3f}, {upper[-1]:.3f}];",
      ", ".join(f"{name} {values[-1]:.3f}" for name, values in model_r.items()))
plt.show()
