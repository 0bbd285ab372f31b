"""tests/codegen/rounding_bounds.py: the propagated bound covers what rounding can do
and no more than the chain's condition explains."""
from __future__ import annotations

import numpy as np

from ir import Builder, DType, TensorType
from rounding_bounds import UNIT_ROUNDOFF, discrepancy_bounds

F32 = DType.f32


def _exp_of_a_sum():
    b = Builder("exp_of_sum")
    x = b.input(TensorType((3,), F32))
    b.output(b.exp(b.add(x, x)))
    return b.build()


def test_an_upstream_ulp_amplified_by_exp_is_inside_the_bound_not_inside_8_ulps():
    """exp(x + x) at x + x ~ 10: another evaluation whose sum is one ulp off (allowed:
    either side may round the sum differently) moves the result by ~10 ulps."""
    x = np.array([5.0, 5.02, -1.0], np.float32)
    (bound,) = discrepancy_bounds(_exp_of_a_sum(), [x])
    total = x + x
    nudged = np.exp(np.nextafter(total, np.float32(np.inf)))
    drift = np.abs(nudged.astype(np.float64) - np.exp(total).astype(np.float64))
    fixed_bound = 8 * np.spacing(np.abs(np.exp(total))).astype(np.float64) + 1e-5
    assert drift[0] > fixed_bound[0]                       # the old test's flake
    assert np.all(drift <= bound)
    assert np.all(bound <= 16 * np.spacing(np.abs(np.exp(total))).astype(np.float64))


def test_a_sum_bound_counts_the_terms_not_the_result():
    """Cancellation: the sum is ~0.5 but reordering may err by n * u * sum|x|."""
    b = Builder("cancel")
    x = b.input(TensorType((4,), F32))
    b.output(b.reduce_sum(x, axes=(0,)))
    x_values = np.array([1e4, -1e4, 0.25, 0.25], np.float32)
    (bound,) = discrepancy_bounds(b.build(), [x_values])
    assert bound == 2 * 3 * UNIT_ROUNDOFF * np.sum(np.abs(x_values.astype(np.float64)))


def test_data_movement_adds_nothing_and_keeps_positions():
    b = Builder("moves")
    x = b.input(TensorType((2, 3), F32))
    e = b.exp(x)
    b.output(b.neg(b.transpose(e, perm=(1, 0))))
    x_values = np.arange(6, dtype=np.float32).reshape(2, 3)
    (bound,) = discrepancy_bounds(b.build(), [x_values])
    expected = 4 * np.spacing(np.exp(x_values)).astype(np.float64).T
    np.testing.assert_array_equal(bound, expected)
