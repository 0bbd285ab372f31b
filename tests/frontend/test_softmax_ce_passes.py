"""Softmax cross-entropy compiled: how many passes over the logits, and the values.

The forward should read the logits in two kernels (the logsumexp primitive's
two-pass kernel and the label pick), the gradient in two (logsumexp, then one
elementwise pass writing d logits). Values are checked against NumPy written
here in float64, gradients against central differences of that NumPy loss.
"""
from __future__ import annotations

import numpy as np
import pytest

import propc as pc
from ir.differences import central_differences


def _kernels_reading(compiled: pc.Compiled, args, text: str) -> list[str]:
    kernels = compiled.lower(*args).executable._code.kernels
    return [k["op"] for k in kernels if any(text in buffer for buffer in k["buffers"])]


def _numpy_loss(logits: np.ndarray, labels: np.ndarray) -> float:
    z = logits.astype(np.float64)
    top = z.max(axis=1, keepdims=True)
    lse = top[:, 0] + np.log(np.exp(z - top).sum(axis=1))
    return float(np.mean(lse - z[np.arange(len(labels)), labels]))


def _central_differences(logits: np.ndarray, labels: np.ndarray, h: float = 1e-4) -> np.ndarray:
    return central_differences(lambda z: _numpy_loss(z, labels), logits, step=h)


def loss(logits, labels):
    return pc.nn.cross_entropy(logits, labels)


@pytest.mark.parametrize("scale", [1.0, 100.0])
def test_cross_entropy_reads_the_logits_in_two_passes_each_way(scale):
    rng = np.random.default_rng(3)
    logits = (scale * rng.standard_normal((32, 10))).astype(np.float32)
    labels = rng.integers(0, 10, 32).astype(np.int32)
    forward, backward = pc.compile(loss), pc.compile(pc.grad(loss))
    assert len(_kernels_reading(forward, (logits, labels), "input %0 (f32[32,10])")) == 2
    assert len(_kernels_reading(backward, (logits, labels), "input %0 (f32[32,10])")) == 2
    np.testing.assert_allclose(forward(logits, labels), _numpy_loss(logits, labels),
                               rtol=1e-5)
    grad = backward(logits, labels)
    assert np.all(np.isfinite(grad))
    want = _central_differences(logits, labels) if scale == 1.0 else None
    if want is not None:
        np.testing.assert_allclose(grad, want, rtol=1e-3, atol=1e-5)
    # the softmax form of the same gradient, exact at any scale
    z = logits.astype(np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(32), labels] -= 1.0
    np.testing.assert_allclose(grad, p / 32, rtol=1e-4, atol=1e-7)


def test_minus_inf_logits_of_other_classes_stay_finite():
    logits = np.array([[0.0, -np.inf, 2.0], [-np.inf, 1.0, -np.inf]], np.float32)
    labels = np.array([2, 1], np.int32)
    value, grad = pc.compile(pc.value_and_grad(loss))(logits, labels)
    want = _numpy_loss(np.where(np.isinf(logits), -1e30, logits), labels)
    np.testing.assert_allclose(value, want, rtol=1e-6)
    assert np.all(np.isfinite(grad))
    np.testing.assert_array_equal(grad[1], 0.0)  # one finite logit: certain, no gradient
    assert grad[0, 1] == 0.0                     # a -inf logit has probability 0
