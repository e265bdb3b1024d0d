"""neurolatent.science.constraints: one kind of value, one check, for params.yaml and the library."""

from __future__ import annotations

import numpy as np
import pytest

from neurolatent.science.constraints import (Count, CrossValidation, Fraction, Grid, NonNegative, RandomState, Seed, Share,
                                             check_values, checked)


@pytest.mark.parametrize("value, kind", [(1, Count), (np.int64(5), Count), (0, Seed), (0.5, Fraction), (1.0, Share),
                                         (0.0, NonNegative), (np.int64(3), RandomState),
                                         (np.random.default_rng(0), RandomState), (None, RandomState),
                                         (5, CrossValidation), ([1.0, 10.0], Grid), (np.array([0.5]), Grid)])
def test_values_of_their_kind_pass(value, kind):
    check_values(value=(value, kind))


@pytest.mark.parametrize("value, kind, message", [
    (0, Count, "permutations: Input should be greater than or equal to 1 (got 0)"),
    (-1, Seed, "permutations: Input should be greater than or equal to 0 (got -1)"),
    (1.0, Fraction, "permutations: Input should be less than 1 (got 1.0)"),
    (0.0, Share, "permutations: Input should be greater than 0 (got 0.0)"),
    (2.5, Count, "permutations: Input should be a valid integer"),
    (True, Count, "permutations: True is not a number"),
    (-1, RandomState, "permutations: Input should be greater than or equal to 0 (got -1)"),
    ("x", RandomState, "permutations: Input should be a seed"),
    (1, CrossValidation, "permutations: Input should be greater than or equal to 2 (got 1)"),
    ((), Grid, "permutations: Value should have at least 1 item after validation, not 0 (got ())"),
    ((1.0, 0.0), Grid, "permutations: Input should be greater than 0"),
])
def test_a_value_not_of_its_kind_is_a_one_line_error_naming_the_argument(value, kind, message):
    with pytest.raises(ValueError) as info:
        check_values(permutations=(value, kind))
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_the_library_and_params_yaml_refuse_a_value_alike():
    """rsa.permutations: 0 in params.yaml and permutations=0 in a notebook give the same reason."""
    from neurolatent.errors import NeurolatentError
    from neurolatent.pipeline.params import validate_params
    from neurolatent.science.rsa.results import compare_models

    with pytest.raises(NeurolatentError) as params_error:
        validate_params({"rsa": {"permutations": 0}})
    with pytest.raises(ValueError) as library_error:
        compare_models([], {}, method="spearman", permutations=0, bootstrap=10, ci=0.95, seed=0, name="x")
    reason = "Input should be greater than or equal to 1 (got 0)"
    assert reason in str(params_error.value) and reason in str(library_error.value)


def test_a_checked_function_checks_at_its_entry_only():
    """The arguments are checked when the call comes from outside; a checked function called inside
    another trusts what it is given (each argument checked once on a path)."""
    seen = []

    @checked(n=Count)
    def inner(n):
        seen.append(n)
        return n

    @checked(n=Count)
    def outer(n):
        return inner(n - 1)  # 0 when n is 1: the outer call vouches for it

    assert outer(1) == 0 and seen == [0]
    with pytest.raises(ValueError, match=r"^n: Input should be greater than or equal to 1 \(got 0\)$"):
        inner(0)
    with pytest.raises(ValueError, match=r"^n: Input should be greater than or equal to 1 \(got 0\)$"):
        outer(n=0)
    assert outer.__name__ == "outer"


def test_a_kind_for_an_argument_the_function_lacks_fails_at_import():
    with pytest.raises(TypeError, match="has no argument m"):
        checked(m=Count)(lambda n: n)
