"""The pipeline: everything that knows params.yaml, DVC or MLflow.

``cli`` (the ``neurolatent`` command), ``params`` (params.yaml, each parameter declared once),
``registry`` (every stage declared once: dvc.yaml and MLproject are generated from it), ``numerics``
(the process's CPU code paths, threads and device), ``parallel`` (per-run work on local processes
or a Dask cluster), ``process`` (the dvc process around a stage), ``progress``, ``tracking``
(MLflow), ``source`` (the code a stage runs), ``reproduction`` (did a run reproduce dvc.lock),
``stages/`` (one module per DVC stage, wiring only), ``outputs/`` (what a run writes beside the
data: figures, the headline, an autoencoder's fit) and ``experiments/`` (sweeps and their report).
The library (:mod:`neurolatent.science`, :mod:`neurolatent.io`, :mod:`neurolatent.models`) never
imports it.
"""
