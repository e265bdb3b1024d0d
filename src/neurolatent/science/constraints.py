"""The kinds of value the library's parameters take, each with its bounds, declared once.

params.yaml's model (:mod:`neurolatent.pipeline.params`) builds every parameter on one of these
(adding an upper bound where the pipeline needs one), and the library functions that take the same
values check their own arguments with them, so a benchmark or a notebook calling them gets the
pipeline's errors, as nilearn's ``check_params`` and scikit-learn's ``_parameter_constraints`` give
theirs. A public function declares its arguments' kinds once, with :func:`checked`; an estimator
checks its hyperparameters in ``fit`` with :func:`check_values` (scikit-learn's rule: ``__init__``
only stores them).

One way for functions and estimators alike, rather than scikit-learn's ``_parameter_constraints``:
those serve estimators only (``_validate_params`` in ``fit``), and they would declare a second time
the bounds params.yaml's model already takes from here.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import numbers
import reprlib
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BeforeValidator, Field, TypeAdapter, ValidationError

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


def _as_tuple(value: Any) -> Any:
    # a list or an array of penalties is a grid as much as a tuple is
    return tuple(value) if hasattr(value, "__iter__") and not isinstance(value, str | bytes | dict) else value


#: a grid of penalties or sizes, each above 0, at least one
Grid = Annotated[tuple[Positive, ...], BeforeValidator(_as_tuple), Field(min_length=1)]


def _seed_or_generator(value: Any) -> Any:
    # a numpy Generator passes as it is (checked by duck type: this module must not import numpy,
    # params.py imports it before the CLI pins the numerics)
    if isinstance(value, numbers.Integral):
        if value < 0:
            raise ValueError("Input should be greater than or equal to 0")
        return value
    if value is None or hasattr(value, "bit_generator"):
        return value
    raise ValueError("Input should be a seed (an integer >= 0), a numpy Generator or None")


def _folds_or_splitter(value: Any) -> Any:
    if isinstance(value, numbers.Integral):
        if value < 2:
            raise ValueError("Input should be greater than or equal to 2")
        return value
    if hasattr(value, "split") and hasattr(value, "get_n_splits"):
        return value
    raise ValueError("Input should be a number of folds (an integer >= 2) or a scikit-learn splitter")


#: a cross-validation: a number of folds, or a scikit-learn splitter
CrossValidation = Annotated[Any, AfterValidator(_folds_or_splitter)]
#: a seed, a numpy Generator to draw from, or None (fresh entropy: not reproducible)
RandomState = Annotated[Any, AfterValidator(_seed_or_generator)]


#: set while a :func:`checked` function runs: the checked functions it calls trust their arguments
_CHECKING: contextvars.ContextVar[bool] = contextvars.ContextVar("checking", default=False)


@functools.cache
def _adapter(kind: Any) -> TypeAdapter:
    return TypeAdapter(kind)


def check_values(**named: tuple[Any, Any]) -> None:
    """Check each ``name=(value, kind)``; raise ValueError naming the first argument whose value is
    not of its kind (``permutations: Input should be greater than or equal to 1 (got 0)``).

    A bool is refused where a number is expected (Python counts True as 1). Inside a
    :func:`checked` function's call the arguments were checked at its entry: nothing is checked
    again (an estimator's ``fit`` that such a function calls with its arguments trusts them).
    """
    if _CHECKING.get():
        return
    for name, (value, kind) in named.items():
        if isinstance(value, bool) and kind is not bool:
            raise ValueError(f"{name}: {value} is not a number")
        try:
            _adapter(kind).validate_python(value)
        except ValidationError as exc:
            # reprlib: an array or a long list shown in one short line
            got = " ".join(reprlib.repr(value).split())
            raise ValueError(f"{name}: {exc.errors()[0]['msg'].removeprefix('Value error, ')} (got {got})") from None


F = TypeVar("F", bound=Callable[..., Any])


def checked(**kinds: Any) -> Callable[[F], F]:
    """Check the decorated function's named arguments against their kinds (:func:`check_values`)
    when it is called from outside the library; a checked function that another calls with
    arguments it was given (or made) trusts them, so each argument is checked once on a path.

    >>> @checked(permutations=Count)
    ... def mantel(x, permutations): ...
    """
    def decorate(function: F) -> F:
        signature = inspect.signature(function)
        missing = set(kinds) - set(signature.parameters)
        if missing:
            raise TypeError(f"{function.__qualname__} has no argument {sorted(missing)[0]}")

        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            if _CHECKING.get():
                return function(*args, **kwargs)
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            check_values(**{name: (bound.arguments[name], kind) for name, kind in kinds.items()})
            token = _CHECKING.set(True)
            try:
                return function(*args, **kwargs)
            finally:
                _CHECKING.reset(token)

        return run  # type: ignore[return-value]

    return decorate
