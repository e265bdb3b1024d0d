"""neurolatent: do fMRI responses and the images that caused them share structure in
artificial-network latent spaces? A DVC + MLflow pipeline on BOLD5000 (or a synthetic copy of it)."""

__version__ = "0.1.0"
