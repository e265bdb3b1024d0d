"""The kinds of value the library's parameters take, each with its bounds, declared once.

params.yaml's model (:mod:`neurolatent.pipeline.params`) builds every parameter on one of these
(adding an upper bound where the pipeline needs one), and the library functions that take the same
values check their own arguments with them (:func:`check_values`), so a benchmark or a notebook
calling them gets the pipeline's errors, as nilearn's ``check_params`` and scikit-learn's
``_parameter_constraints`` give theirs.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

#: how many of something: permutations, resamples, epochs, components, jobs (1 or more)
Count = Annotated[int, Field(ge=1)]
#: a random seed (0 or more)
Seed = Annotated[int, Field(ge=0)]
#: a share strictly between 0 and 1: a validation or test fraction, a confidence level
Fraction = Annotated[float, Field(gt=0, lt=1)]
#: a share above 0 and up to 1: the explained variance to keep
Share = Annotated[float, Field(gt=0, le=1)]
#: a size or amount that may be 0: an SNR, a threshold, a drift amplitude, a lag in seconds
NonNegative = Annotated[float, Field(ge=0)]
#: a size that must be above 0: a radius, a learning rate, a noise level
Positive = Annotated[float, Field(gt=0)]


@functools.cache
def _adapter(kind: Any) -> TypeAdapter:
    return TypeAdapter(kind)


def check_values(**named: tuple[Any, Any]) -> None:
    """Check each ``name=(value, kind)``; raise ValueError naming the first argument whose value is
    not of its kind (``permutations: Input should be greater than or equal to 1 (got 0)``).

    A bool is refused where a number is expected (Python counts True as 1).
    """
    for name, (value, kind) in named.items():
        if isinstance(value, bool):
            raise ValueError(f"{name}: {value} is not a number")
        try:
            _adapter(kind).validate_python(value)
        except ValidationError as exc:
            raise ValueError(f"{name}: {exc.errors()[0]['msg']} (got {value!r})") from None
