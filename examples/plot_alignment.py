"""
One space for every subject
===========================

Each subject's voxels are its own: a voxel of one brain has no counterpart in another, so a map
learnt on one subject does not apply to the next. Functional alignment finds a space the subjects
share from their responses to the same images. The shared response model (SRM; Chen et al. 2015)
models each subject's responses as its own orthonormal map of one shared response; a new subject
then needs only a few images to find its map. On the twin the subjects share exactly one thing, the
planted feature families, each through a random map of its own, so the shared space should be
theirs.
"""

# %%
# Four subjects of the twin, the same 185 images
# ----------------------------------------------
# Every subject sees the same images (BOLD5000's first five runs of session 1, ``same_images``); its
# visual region (all ten ROIs, a 4 mm grid) is planted from the three families (37 features in
# all), each voxel by its subject's own random map, plus unit noise (SNR 1). A fifth of the images
# are kept aside as test images for every subject.
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from neurolatent.io import twin
from neurolatent.science import synthetic
from neurolatent.science.alignment import canonical_correlations
from neurolatent.science.fewshot import (SCRATCH, SUBJECTS, FewShotDesign, common_images, common_test_images,
                                         leave_one_out, planted_space)
from neurolatent.science.stats import zscore
from neurolatent.science.stimuli import StimulusMatrix

NAMES = ["CSI1", "CSI2", "CSI3", "CSI4"]
settings = synthetic.TwinSettings(seed=0, snr=1.0, voxel_size_mm=4, image_size=64, roi_radius_mm=7.0,
                                  noise_percent=1.0, drift_scale=2.0, same_images=True,
                                  families={"EarlyVis": "lowlevel", "LOC": "object", "OPA": "scene",
                                            "PPA": "scene", "RSC": "scene"})
schedule = twin.selected_schedule(NAMES, sessions=[1], runs=[1, 2, 3, 4, 5], seed=settings.seed, same_images=True)
stimuli = twin.stimulus_table(schedule)
with tempfile.TemporaryDirectory() as folder:
    families = twin.write_stimuli(stimuli, Path(folder), settings.image_size)
families_z = {name: zscore(values) for name, values in families.items()}
images = tuple(stimuli["image_name"])
template = twin.mni_template(settings.voxel_size_mm)
rng = np.random.default_rng(0)
responses = {}
for name in NAMES:
    subject = twin.plant_subject(name, template, families_z, settings)
    responses[name] = StimulusMatrix(name, settings.snr * subject.patterns
                                     + rng.standard_normal(subject.patterns.shape), images)
planted = StimulusMatrix("planted features", np.hstack(list(families_z.values())), images)
test = common_test_images(responses, fraction=0.2, min_test=10, seed=0)
print({name: r.matrix.shape[1] for name, r in responses.items()}, "voxels;", len(test), "test images;",
      planted.matrix.shape[1], "planted features")

# %%
# The shared space is the planted features'
# -----------------------------------------
# :func:`~neurolatent.science.fewshot.planted_space` fits an SRM of 20 dimensions on every
# subject's training images and returns the mean of the subjects' shared responses. Its canonical
# correlations with the 37 planted features (the cosines of the angles between the two spaces) say
# how much of the shared space the features span; beside them, the same for one subject's raw voxels
# reduced to its first 20 principal components, a space of the same width found without the others.
design = FewShotDesign(test=test, ks=(5, 10, 20, 40, 80), anchor=planted, targets={"planted features": planted},
                       features=20, n_iter=10, seed=0, bootstrap=200)
shared = planted_space("srm", responses, design)
common = common_images(responses, test)
one = zscore(responses["CSI1"].rows(common))
pcs = one @ np.linalg.svd(one, full_matrices=False)[2][:20].T
fig, ax = plt.subplots(figsize=(7, 3.6))
ax.plot(canonical_correlations(shared.matrix, planted.rows(common)), "o-", label="SRM's shared space (4 subjects)")
ax.plot(canonical_correlations(pcs, planted.rows(common)), "o-", label="CSI1's first 20 principal components")
ax.set_xlabel("canonical dimension")
ax.set_ylabel("canonical correlation with\nthe planted features")
ax.set_ylim(0, 1.02)
ax.legend(frameon=False)
fig.tight_layout()

# %%
# Every dimension of the shared space is almost entirely in the planted features' span: what the
# subjects share is what was planted, and the noise, different in each subject, averages out. One
# subject's own principal components reach the features too, but less closely, as its noise is in
# them.

# %%
# A new subject from a few images
# -------------------------------
# :func:`~neurolatent.science.fewshot.leave_one_out` fits the SRM on three subjects, learns the
# fourth's map from its first k training images, and identifies that subject's test images (2-way,
# chance 0.5): from the planted features decoded in the shared space, and among the other subjects'
# responses to the same test images. Beside it, ``scratch``: ridge from the subject's own k images,
# with no other subject.
rows = pd.DataFrame(leave_one_out("srm", responses, "CSI4", design, rng)
                    + leave_one_out(SCRATCH, responses, "CSI4", design, rng))
fig, ax = plt.subplots(figsize=(7, 4))
for (method, target), curve in rows.groupby(["method", "target"]):
    label = {SUBJECTS: "among the other subjects"}.get(target, f"decoding the {target}")
    line, = ax.plot(curve["k"], curve["two_way"], "o-", label=f"{method}: {label}")
    ax.fill_between(curve["k"], curve["ci_low"], curve["ci_high"], color=line.get_color(), alpha=0.15)
ax.axhline(0.5, color="k", lw=0.5, ls="--")
ax.set_xscale("log")
ax.set_xlabel("k, the new subject's images used")
ax.set_ylabel("2-way identification of CSI4's test images\n(bands: 95% bootstrap CI)")
ax.legend(frameon=False)
fig.tight_layout()

# %%
# With the SRM, five of CSI4's images place it in the shared space well enough to pick out its test
# images among the other subjects' responses to them (above 0.8, chance 0.5), and with twenty the
# identification is near perfect: the other subjects' voxels, which share nothing with CSI4's, are
# now comparable with them, which no fit on CSI4 alone can give. Decoding the planted features
# through the shared space (a decoder learnt on the other three subjects only) catches up with the
# subject's own decoder from about twenty images on. Below that, CSI4's own few images do as well or
# better here: the twin's subjects have a strong signal (SNR 1 in a few hundred voxels), so a ridge
# fit from five images already finds much of it, while an SRM map of a few hundred voxels is poorly
# determined by five images. That is the planted truth read honestly: what the shared space buys a
# new subject is a place among the others and a decoder it never trained, not, at this SNR, fewer
# images to decode from.
print(rows.pivot_table(index="k", columns=["method", "target"], values="two_way").round(3))
plt.show()
