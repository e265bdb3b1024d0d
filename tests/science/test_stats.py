"""The shared small statistics: z-scores in the input's dtype, per-group z-scores, the permutation
p (Phipson & Smyth), named random streams and unit rows, each against a value worked by hand."""

from __future__ import annotations

import numpy as np

from neurolatent.science.stats import named_rng, permutation_p, unit_rows, zscore, zscore_groups


def test_zscore_keeps_the_dtype_and_zeroes_a_constant_column():
    matrix = np.array([[1.0, 5.0], [3.0, 5.0]], dtype=np.float32)
    z = zscore(matrix)
    assert z.dtype == np.float32
    np.testing.assert_array_equal(z, [[-1.0, 0.0], [1.0, 0.0]])
    assert zscore(np.array([[1], [3]])).dtype == np.float64


def test_zscore_groups_standardises_each_group_alone():
    matrix = np.array([[1.0], [3.0], [10.0], [30.0]])
    np.testing.assert_array_equal(zscore_groups(matrix, np.array([0, 0, 1, 1])), [[-1.0], [1.0], [-1.0], [1.0]])


def test_permutation_p_counts_the_observed_labelling():
    assert permutation_p(0.5, np.array([0.1, 0.6, 0.2, 0.5])) == 3 / 5  # 0.6, 0.5 reach it, +1
    assert permutation_p(1.0, np.zeros(99)) == 1 / 100
    assert permutation_p(0.5, np.array([0.5 - 1e-7])) == 1.0  # within the float32 tolerance


def test_named_streams_are_reproducible_and_distinct():
    assert named_rng(0, "a", "b").integers(1 << 30) == named_rng(0, "a", "b").integers(1 << 30)
    assert named_rng(0, "a", "b").integers(1 << 30) != named_rng(0, "b", "a").integers(1 << 30)
    assert named_rng(0, "a").integers(1 << 30) != named_rng(1, "a").integers(1 << 30)


def test_unit_rows_leaves_a_zero_row_zero():
    np.testing.assert_array_equal(unit_rows(np.array([[3.0, 4.0], [0.0, 0.0]])), [[0.6, 0.8], [0.0, 0.0]])
