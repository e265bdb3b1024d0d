"""
Two RDMs and their Spearman comparison
======================================

The smallest use of :mod:`neurolatent.science.rsa`: the correlation-distance RDM of two sets of
patterns over the same 20 images, one a noisy copy of the other, and the Spearman r of their upper
triangles.
"""

import matplotlib.pyplot as plt
import numpy as np
from scipy.spatial.distance import squareform

from neurolatent.science.rsa.compare import compare
from neurolatent.science.rsa.rdm import rdm_upper

rng = np.random.default_rng(0)
features = rng.standard_normal((20, 50))  # 20 images x 50 features
voxels = features @ rng.standard_normal((50, 200)) + 2.0 * rng.standard_normal((20, 200))  # 20 images x 200 voxels

model, brain = rdm_upper(features), rdm_upper(voxels)
print(f"Spearman r of the two RDMs: {compare(model, brain, 'spearman'):.3f}")

fig, axes = plt.subplots(1, 2, figsize=(7, 3.2))
for ax, rdm, title in zip(axes, (model, brain), ("model RDM", "fMRI-like RDM")):
    shown = ax.imshow(squareform(rdm), cmap="viridis")
    ax.set_title(title)
    fig.colorbar(shown, ax=ax, shrink=0.8)
fig.tight_layout()
