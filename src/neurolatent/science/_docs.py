"""The text of the parameters that several of the library's docstrings describe, written once.

A docstring names a shared parameter as ``%(permutations)s`` on a line of its own and
:func:`fill_doc` puts the entry of :data:`DOCS` there, indented as the placeholder is (nilearn's
``@fill_doc``). Kinds and bounds are those of :mod:`neurolatent.science.constraints`, which checks
them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

#: each shared parameter's numpydoc entry: ``name : kind`` and its explanation (4-space indented)
DOCS: dict[str, str] = {
    "permutations": """permutations : int >= 1
    Relabellings of the stimuli drawn for the permutation null; the smallest p is
    1 / (permutations + 1).""",
    "bootstrap": """bootstrap : int >= 1
    Resamples of the stimuli (with replacement) for the bootstrap distribution.""",
    "random_state": """random_state : int >= 0 or numpy Generator
    Seed of the random draws, or the Generator to draw from (advanced by the call).""",
    "device": """device : str
    ``cpu`` (the numba kernels) or a torch CUDA device (``cuda``, ``cuda:0``).""",
    "chunk": """chunk : int >= 1
    Relabellings drawn at a time (memory: chunk * n_stimuli * 4 bytes); the nulls are the same
    bits for any chunk.""",
    "triangle": """triangle : upper | full
    Compare the RDMs' upper triangles, or the whole squares (each subject's null is then the
    exact affine image of its upper-triangle null).""",
    "method_comparison": """method : pearson | spearman | kendall_tau_a | cosine
    How two RDMs are compared (:func:`neurolatent.science.rsa.compare.compare`).""",
    "progress": """progress : callable or None
    Called with the number of replicates done after each chunk (a progress bar's ``update``).""",
    "alphas": """alphas : sequence of float > 0
    Overall ridge penalties tried (on z-scored features).""",
    "n_iter": """n_iter : int >= 1
    Band weightings tried, drawn on the simplex (himalaya's random search; the first is equal
    weights); ignored with one band.""",
    "cv": """cv : int >= 2 or scikit-learn splitter
    Folds of the training rows for choosing the penalties; an int is a KFold shuffled with
    ``random_state``.""",
    "backend": """backend : numpy | torch | torch_cuda
    himalaya's array backend; results come back as numpy arrays either way.""",
    "bands": """bands : mapping of name -> ndarray (n_images, n_features_k)
    The feature spaces, in the order the results name them.
responses : ndarray (n_images, n_voxels)
    Each image's response per voxel (betas, or samples, in any unit).
train, test : boolean mask (n_images,) or index array
    The images fitted on and those scored; they must not overlap.""",
    "banded_random_state": """random_state : int >= 0
    Seed of :class:`~neurolatent.science.banded.BandedRidgeCV`'s search and folds (the same for
    every fit, so every fit is searched on the same folds).""",
    "fit_progress": """progress : callable or None
    Called with a number of steps as they finish (:meth:`BandedRidgeCV.steps` is their total for
    a fit).""",
}

F = TypeVar("F", bound=Callable[..., Any])
_PLACEHOLDER = re.compile(r"^(?P<indent>[ \t]*)%\((?P<name>\w+)\)s[ \t]*$", re.MULTILINE)


def fill_doc(thing: F) -> F:
    """Put the :data:`DOCS` entry of each ``%(name)s`` placeholder line into ``thing``'s docstring,
    indented as the placeholder; a name :data:`DOCS` lacks is a KeyError at import."""
    def entry(match: re.Match) -> str:
        indent = match["indent"]
        return "\n".join(indent + line if line else line for line in DOCS[match["name"]].splitlines())

    if thing.__doc__:
        thing.__doc__ = _PLACEHOLDER.sub(entry, thing.__doc__)
    return thing
