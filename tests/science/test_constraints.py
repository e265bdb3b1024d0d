"""neurolatent.science.constraints: one kind of value, one check, for params.yaml and the library."""

from __future__ import annotations

import numpy as np
import pytest

from neurolatent.science.constraints import Count, Fraction, NonNegative, Seed, Share, check_values


@pytest.mark.parametrize("value, kind", [(1, Count), (np.int64(5), Count), (0, Seed), (0.5, Fraction), (1.0, Share),
                                         (0.0, NonNegative)])
def test_values_of_their_kind_pass(value, kind):
    check_values(value=(value, kind))


@pytest.mark.parametrize("value, kind, message", [
    (0, Count, "permutations: Input should be greater than or equal to 1 (got 0)"),
    (-1, Seed, "permutations: Input should be greater than or equal to 0 (got -1)"),
    (1.0, Fraction, "permutations: Input should be less than 1 (got 1.0)"),
    (0.0, Share, "permutations: Input should be greater than 0 (got 0.0)"),
    (2.5, Count, "permutations: Input should be a valid integer"),
    (True, Count, "permutations: True is not a number"),
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
