"""One module per DVC stage, wiring only: ``run(params, paths)`` reads the stage's inputs, calls the
science, models and io packages, writes its outputs and returns its metrics. No stage imports
another; :mod:`neurolatent.pipeline.registry` declares each stage once.
"""
