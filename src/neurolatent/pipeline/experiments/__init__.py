"""Experiments over the pipeline: ``sweep`` (configurations x planted SNR x seeds as queued DVC
experiments) and ``report`` (the sweep's comparison report)."""
