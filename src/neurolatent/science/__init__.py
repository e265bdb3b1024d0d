"""The science, as pure functions and estimators on arrays with plain arguments.

Nothing here reads or writes files, reads params or imports a stage. The modules:

- data: ``synthetic`` (the generative model of the synthetic BOLD5000), ``sampling`` (a trial's
  response from a BOLD series), ``glm`` (single-trial GLM betas), ``render`` and ``raster`` (the
  study's pictures, and how matplotlib rasterises them), ``stimuli`` (per-stimulus matrices);
- comparing representations: ``rsa`` (RDMs, their comparison, Mantel tests and bootstraps), ``cka``
  (linear CKA), ``peers`` (the statistics of the field's shared frames);
- between latent spaces: ``mapping`` (the mappings, as scikit-learn estimators), ``identification``
  (identifying stimuli from predictions), ``splits`` (the held-out images), ``stitching`` (mappings
  fitted and scored on held-out stimuli), ``prediction`` (voxelwise prediction from one feature space), ``alignment`` (one space for every subject), ``fewshot``
  (a new subject from few images);
- encoding: ``banded`` (banded ridge), ``encoding`` (each band's share of held-out R^2),
  ``voxelwise`` (r per voxel and the noise ceiling);
- shared: ``stats`` (z-scores, permutation p-values, named random streams), ``constraints`` (the
  kinds of value the arguments take, checked once at the public entry points), ``_docs`` (the
  text of the parameters several docstrings share, ``@fill_doc``).
"""
