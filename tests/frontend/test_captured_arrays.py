"""NumPy arrays a compiled function reads without taking them as arguments (closures,
globals): big ones are graph inputs passed at every call, so the graph text stays
small and the function sees the array's values at call time (propc/tracing.py)."""
from __future__ import annotations

import numpy as np
import pytest

import propc as pc
from propc.tracing import HIDDEN_MIN_ELEMENTS

RNG = np.random.default_rng(3)
WEIGHTS = RNG.standard_normal((64, 32)).astype(np.float32)       # 2,048 elements
SMALL = np.arange(4, dtype=np.float32)                            # a constant


def _model(x):
    return pc.tanh(x @ WEIGHTS)[:, :4] * SMALL


def test_a_big_captured_array_is_an_input_not_constant_text():
    x = RNG.standard_normal((3, 64)).astype(np.float32)
    graph = pc.compile(_model).lower(x).graph
    assert [v.type.shape for v in graph.inputs] == [(3, 64), (64, 32)]
    text = str(graph)
    assert len(text) < 2_000                          # 2,048 weights would be ~20 KB
    assert WEIGHTS.size >= HIDDEN_MIN_ELEMENTS > SMALL.size


@pytest.mark.parametrize("make", [pc.compile, pc.interpret], ids=["compiled", "interpreted"])
def test_captured_arrays_are_read_at_call_time(make):
    weights = WEIGHTS.copy()
    f = make(lambda x: (x @ weights).sum(axis=1))
    x = RNG.standard_normal((2, 64)).astype(np.float32)
    np.testing.assert_allclose(f(x), (x @ weights).sum(axis=1), rtol=1e-5)
    np.testing.assert_allclose(f(x), (x @ weights).sum(axis=1), rtol=1e-5)  # fast path
    weights *= -3.0                                   # changed in place
    np.testing.assert_allclose(f(x), (x @ weights).sum(axis=1), rtol=1e-5)
    if make is pc.compile:
        assert f.compile_count == 1


def test_calls_with_captured_arrays_take_the_fast_path():
    f = pc.compile(_model)
    x = RNG.standard_normal((3, 64)).astype(np.float32)
    f(x)
    slow = f.slow_calls
    for _ in range(3):
        got = f(x)
    assert f.slow_calls == slow
    np.testing.assert_allclose(got, np.tanh(x @ WEIGHTS)[:, :4] * SMALL, rtol=1e-5, atol=1e-6)


def test_gradients_through_a_captured_array_inside_transforms():
    weights = WEIGHTS.copy()
    loss = lambda x: pc.tanh(x @ weights).sum()        # noqa: E731
    x = RNG.standard_normal((3, 64)).astype(np.float32)
    got = pc.compile(pc.grad(loss))(x)
    want = (1 - np.tanh(x @ weights) ** 2) @ weights.T
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    weights[:] = 0.5 * weights
    want = (1 - np.tanh(x @ weights) ** 2) @ weights.T
    np.testing.assert_allclose(pc.compile(pc.grad(loss))(x), want, rtol=1e-4, atol=1e-5)


def test_a_captured_array_that_changed_shape_is_a_clear_error():
    weights = WEIGHTS.copy()
    f = pc.compile(lambda x: x @ weights)
    x = np.ones((1, 64), np.float32)
    f(x)
    weights.shape = (32, 64)
    with pytest.raises(ValueError, match=r"traced as f32\[64,32\].*pass it as an argument"):
        f(x)
