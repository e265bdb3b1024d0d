"""
RDMs and RSA per ROI
====================

The synthetic twin plants each visual ROI's responses from one family of image features: EarlyVis
from the low-level family (colour, contrast, edges, layout of the pixels), LOC from the object
family (the drawn objects and the image's category), OPA, PPA and RSC from the scene family (the
horizon, the structures, the road). Representational similarity analysis should find that
assignment back from the responses alone: each ROI's RDM should match its own family's model RDM
best, and a model of random features should match none.
"""

# %%
# A small twin: three subjects, the same 111 images
# --------------------------------------------------
# The images are BOLD5000's first three runs of session 1 (the real schedule's names), drawn by the
# twin's generator; :func:`~neurolatent.io.twin.write_stimuli` returns the three feature families
# of every image. :func:`~neurolatent.io.twin.plant_subject` places each subject's ten ROI spheres
# in its own anatomy and plants each ROI's voxels as a random linear map of its family. An image's
# response is then the planted pattern times the SNR plus unit noise: single-trial betas' model.
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from neurolatent.io import twin
from neurolatent.science import synthetic
from neurolatent.science.rsa.rdm import RDM, rdm_upper
from neurolatent.science.rsa.results import compare_regions
from neurolatent.science.stats import zscore

SUBJECTS = ["CSI1", "CSI2", "CSI3"]
ROIS = ["EarlyVis", "LOC", "OPA", "PPA", "RSC"]
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
names = tuple(stimuli["image_name"])
rng = np.random.default_rng(0)

region_rdms = {roi: [] for roi in ROIS}
for subject_name in SUBJECTS:
    subject = twin.plant_subject(subject_name, template, families_z, settings)
    betas = settings.snr * subject.patterns + rng.standard_normal(subject.patterns.shape)
    for roi in ROIS:
        columns = np.char.endswith(subject.region_rois, roi)  # both hemispheres
        region_rdms[roi].append(RDM(rdm_upper(betas[:, columns]), names, "correlation", f"{roi}/{subject_name}",
                                    {"subject": subject_name}))
print(f"{len(names)} images; voxels of CSI3's ROIs:",
      {roi: int(np.char.endswith(subject.region_rois, roi).sum()) for roi in ROIS})

# %%
# The model RDMs: one per family, and a null model
# ------------------------------------------------
# Each family's RDM is 1 - Pearson r between the images' z-scored feature vectors; the null model is
# the RDM of 18 random features per image, which no ROI was planted from.
models = {name: RDM(rdm_upper(values), names, "correlation", name) for name, values in families_z.items()}
models["null (random)"] = RDM(rdm_upper(rng.standard_normal((len(names), 18))), names, "correlation", "null")

fig, axes = plt.subplots(2, 5, figsize=(12, 5.8))
for ax, (title, rdm) in zip(axes[0], [(f"{roi}, CSI1", region_rdms[roi][0]) for roi in ROIS]):
    ax.imshow(rdm.square(), cmap="viridis")
    ax.set_title(title)
for ax, (title, rdm) in zip(axes[1], models.items()):
    ax.imshow(rdm.square(), cmap="viridis")
    ax.set_title(f"model: {title}")
axes[1, -1].axis("off")
for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("RDMs over the same 111 images (1 - Pearson r; rows in image-name order)")
fig.tight_layout()

# %%
# Sorted by name, the images fall into their categories (COCO's names first, then ImageNet's, then
# the scenes'), so the object model, which holds the category, shows blocks, and so does LOC's RDM.
# EarlyVis's RDM has the low-level model's fine stripes, and the three scene ROIs look like the scene
# model and like one another, as they share a family. The families are not independent: the
# category also shapes an image's layout and colours, so the models resemble one another a little,
# and a ROI's RDM will match every family somewhat.

# %%
# Every ROI against every model, over subjects
# --------------------------------------------
# :func:`~neurolatent.science.rsa.results.compare_regions` compares each ROI's subject RDMs with
# each model (Spearman r, the mean over subjects), tests the mean by permuting image labels (the
# same relabellings for every ROI and model), gives a bootstrap interval over images and subjects,
# and the noise ceiling: how well one subject's RDM predicts the others', the best any model can do.
results = compare_regions(region_rdms, models, method="spearman", permutations=1000, bootstrap=200, ci=0.95,
                          seed=0, name="gallery")

fig, ax = plt.subplots(figsize=(10, 4))
width = 0.8 / len(models)
for m, model in enumerate(models):
    rows = [results[roi].models[model].group_row() for roi in ROIS]
    r = np.array([row["r"] for row in rows])
    x = np.arange(len(ROIS)) + (m - (len(models) - 1) / 2) * width
    ax.bar(x, r, width, label=model, color=f"C{m}")
    ax.errorbar(x, r, yerr=[r - [row["ci_low"] for row in rows], [row["ci_high"] for row in rows] - r],
                fmt="none", color="k", lw=1)
    for xi, ri, row in zip(x, r, rows):
        if row["p"] < 0.05:
            ax.text(xi, max(ri, row["ci_high"]) + 0.01, "*", ha="center")
for i, roi in enumerate(ROIS):
    lower, upper = results[roi].ceiling
    ax.fill_between([i - 0.45, i + 0.45], lower, upper, color="0.8", zorder=0,
                    label="noise ceiling" if i == 0 else None)
ax.axhline(0, color="k", lw=0.5)
ax.set_xticks(range(len(ROIS)), [f"{roi}\n(planted: {settings.families[roi]})" for roi in ROIS])
ax.set_ylabel("Spearman r (mean over subjects)")
ax.set_title("Each ROI's RDM against each model (* p < 0.05, permutation; bars: 95% bootstrap CI)")
ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
fig.tight_layout()

# %%
# The check against the planted truth: in every ROI the tallest bar is its planted family's (the
# low-level model in EarlyVis, the object model in LOC, the scene model in OPA, PPA and RSC), and
# the null model's bars sit at zero with no star. The other families score above zero, with stars:
# they correlate with the planted one across images, which is why "significant" is not "the
# answer", and why models are compared with each other. The planted family stays below the grey
# noise ceiling: it is the right family in a slightly wrong geometry (the correlation distance of a
# few feature values, where each voxel is a random mix of them), a gap
# :ref:`the noise ceiling example <sphx_glr_auto_examples_plot_noise_ceiling.py>` measures.
for roi in ROIS:
    best = max(models, key=lambda model: results[roi].models[model].group_row()["r"])
    print(f"{roi}: best model {best} (planted {settings.families[roi]}); "
          f"null r = {results[roi].models['null (random)'].group_row()['r']:+.3f}, "
          f"p = {results[roi].models['null (random)'].group_row()['p']:.2f}")
plt.show()
