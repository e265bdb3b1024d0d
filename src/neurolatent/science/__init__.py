"""The science, as pure functions and estimators on arrays with plain arguments.

Nothing here reads or writes files, reads params or imports a stage. ``synthetic`` (the generative
model of the synthetic BOLD5000), ``sampling`` (a trial's response from a BOLD series), ``glm``
(single-trial GLM betas), ``render`` and ``raster`` (the study's pictures of volumes, and
matplotlib's placement and colours of them), ``stats`` (z-scores, permutation p-values, named random
streams), ``stimuli`` (per-stimulus matrices joined by name), ``constraints`` (the kinds of value
parameters take), ``rsa`` (RDMs, their comparison and inference), ``cka`` (linear CKA), ``mapping``
(between latent spaces), ``stitching`` (held-out identification, reconstruction and encoding
scores), ``banded`` and ``encoding`` (banded ridge and each band's share of R^2), ``alignment`` and
``fewshot`` (one space for every subject; a new subject from few images), ``peers`` (the field's
tools' statistics).
"""
