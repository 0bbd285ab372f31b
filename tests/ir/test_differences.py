"""ir/differences.py: central differences against derivatives known in closed form."""
from __future__ import annotations

import numpy as np
import pytest

from ir.differences import central_differences, default_step, directional_difference


def test_gradient_of_a_smooth_function_matches_its_closed_form():
    x = np.random.default_rng(0).standard_normal((3, 4))
    calls = []

    def f(v):
        calls.append(v.copy())
        return float(np.sum(np.sin(v) * v))

    got = central_differences(f, x)
    np.testing.assert_allclose(got, np.cos(x) * x + np.sin(x), rtol=1e-8, atol=1e-9)
    assert got.shape == x.shape and got.dtype == np.float64
    assert len(calls) == 2 * x.size
    assert all(np.count_nonzero(c != x) == 1 for c in calls)   # one element moved a call


def test_directional_derivatives_are_gradient_dot_direction():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(50)
    directions = [rng.standard_normal(50) for _ in range(3)]
    got = central_differences(lambda v: float(np.sum(v ** 3)), x, directions=directions)
    np.testing.assert_allclose(got, [np.dot(3 * x ** 2, d) for d in directions], rtol=1e-7)


def test_the_default_step_follows_the_magnitude_of_the_point():
    assert default_step(np.array([0.5, -0.25])) == 1e-6
    assert default_step(np.array([3.0, -400.0])) == pytest.approx(4e-4)
    assert default_step(np.zeros((0,))) == 1e-6
    # at |x| ~ 1e4 an absolute step of 1e-6 loses most digits to rounding of f;
    # the scaled default keeps the gradient of x**2 accurate
    x = np.array([1.5e4])
    np.testing.assert_allclose(central_differences(lambda v: float(v[0] ** 2), x), 2 * x,
                               rtol=1e-9)


def test_an_explicit_step_is_used_as_given():
    x = np.array([1.0])
    # f(x) = x**3: the central difference is 3x^2 + h^2 exactly, so h shows
    assert central_differences(lambda v: float(v[0] ** 3), x, step=0.5)[0] == 3.25


def test_directional_difference_of_an_array_valued_function():
    x = np.array([1.0, 2.0])
    got = directional_difference(lambda v: v ** 2, x, np.array([1.0, 0.0]), 1e-3)
    np.testing.assert_allclose(got, [2.0, 0.0], atol=1e-9)
