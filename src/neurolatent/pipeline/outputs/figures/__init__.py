"""The stages' figures (matplotlib, Agg), one module per stage: functions of arrays and tables
writing one file each. :mod:`.common` holds what every figure shares (the backend, names,
saving), so a figure module never makes one stage's code a dependency of another."""
