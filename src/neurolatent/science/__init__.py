"""The science, as pure functions and estimators on arrays with plain arguments.

Nothing here reads or writes files, reads params or imports a stage: ``synthetic`` (the generative
model of the synthetic BOLD5000), ``sampling`` (a trial's response from a BOLD series), ``glm``
(single-trial GLM betas), ``render`` (the study's pictures), ``rsa``, ``mapping`` (between latent
spaces), ``stats`` (z-scores, permutation p-values).
"""
