"""Representational similarity analysis, split as rsatoolbox is: :mod:`.rdm` (RDMs and the
reduction before them), :mod:`.compare` (comparing two RDMs), :mod:`.kernels` (the permutation and
bootstrap kernels), :mod:`.inference` (Mantel tests, bootstrap CIs, noise ceilings, per subject and
group) and :mod:`.results` (one fMRI representation against every model, as the rsa stage reports it)."""
