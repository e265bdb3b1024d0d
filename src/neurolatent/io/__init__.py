"""Readers and writers at the edges: BOLD5000's layout and files, NIfTI, the stages' outputs.

Nothing here computes science beyond what reading needs, and nothing imports a stage.
"""
