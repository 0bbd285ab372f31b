"""Small models built from IR primitives, shared by the autodiff and partition tests,
and their plain-NumPy references (forward and hand-written backpropagation)."""
from __future__ import annotations

import numpy as np

from ir import Builder, DType, Graph, SourceLoc, TensorType, Value


def linear(b: Builder, x: Value, w: Value, bias: Value) -> Value:
    """x @ w + bias for a [batch, n_in] x and [n_in, n_out] w."""
    product = b.dot(x, w, lhs_batch=(), rhs_batch=(), lhs_contract=(1,), rhs_contract=(0,))
    return b.add(product, b.broadcast_in_dim(bias, shape=product.shape, dims=(1,)))


def softmax_cross_entropy(b: Builder, logits: Value, targets: Value) -> Value:
    """-mean over rows of sum(targets * log_softmax(logits)), max-shifted, max stopped."""
    rows, classes = logits.shape
    shift = b.stop_gradient(b.reduce_max(logits, axes=(1,)))
    shifted = b.sub(logits, b.broadcast_in_dim(shift, shape=logits.shape, dims=(0,)))
    lse = b.log(b.reduce_sum(b.exp(shifted), axes=(1,)))
    log_probs = b.sub(shifted, b.broadcast_in_dim(lse, shape=logits.shape, dims=(0,)))
    total = b.reduce_sum(b.mul(targets, log_probs), axes=(0, 1))
    return b.neg(b.mul(total, b.scalar(1.0 / rows, logits.dtype)))


def mean_squared_error(b: Builder, prediction: Value, target: Value) -> Value:
    diff = b.sub(prediction, target)
    total = b.reduce_sum(b.mul(diff, diff), axes=tuple(range(diff.ndim)))
    return b.mul(total, b.scalar(1.0 / diff.type.size, diff.dtype))


def mlp_graph(sizes: list[int], batch: int, dtype: DType, loss: str = "cross_entropy") -> Graph:
    """inputs: x, (W, b) per layer, targets; output: the scalar loss.

    Hidden layers use tanh; the last layer is linear, then `loss` ("cross_entropy" on
    one-hot targets or "mse"). Each op carries a distinct source line.
    """
    b = Builder("mlp")
    x = b.input(TensorType((batch, sizes[0]), dtype))
    params = [(b.input(TensorType((n_in, n_out), dtype)), b.input(TensorType((n_out,), dtype)))
              for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    targets = b.input(TensorType((batch, sizes[-1]), dtype))
    h = x
    for layer, (w, bias) in enumerate(params):
        with b.at(SourceLoc("model.py", 10 + layer)):
            h = linear(b, h, w, bias)
            if layer < len(params) - 1:
                h = b.tanh(h)
    with b.at(SourceLoc("model.py", 20)):
        value = (softmax_cross_entropy(b, h, targets) if loss == "cross_entropy"
                 else mean_squared_error(b, h, targets))
    b.output(value)
    return b.build()


def mlp_inputs(sizes: list[int], batch: int, dtype, rng: np.random.Generator,
               loss: str = "cross_entropy") -> list[np.ndarray]:
    x = rng.standard_normal((batch, sizes[0]))
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        params += [rng.standard_normal((n_in, n_out)) / np.sqrt(n_in),
                   0.1 * rng.standard_normal(n_out)]
    if loss == "cross_entropy":
        targets = np.eye(sizes[-1])[rng.integers(0, sizes[-1], batch)]
    else:
        targets = rng.standard_normal((batch, sizes[-1]))
    return [np.asarray(a, dtype=dtype) for a in [x, *params, targets]]


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def mlp_backprop(inputs: list[np.ndarray], loss: str = "cross_entropy") -> list[np.ndarray]:
    """Gradients of the loss for every input, by the per-layer error-signal recurrence
    delta_l = (delta_{l+1} @ W_{l+1}.T) * tanh'(a_l), written in plain NumPy."""
    x, targets = inputs[0], inputs[-1]
    weights, biases = inputs[1:-1:2], inputs[2:-1:2]
    activations = [x]
    for layer, (w, bias) in enumerate(zip(weights, biases)):
        a = activations[-1] @ w + bias
        activations.append(np.tanh(a) if layer < len(weights) - 1 else a)
    out = activations[-1]
    if loss == "cross_entropy":
        delta = (softmax(out) - targets) / out.shape[0]
    else:
        delta = 2 * (out - targets) / out.size
    grads_w, grads_b = [], []
    for layer in reversed(range(len(weights))):
        grads_w.insert(0, activations[layer].T @ delta)
        grads_b.insert(0, delta.sum(axis=0))
        back = delta @ weights[layer].T
        delta = back * (1 - activations[layer] ** 2) if layer > 0 else back
    grad_targets = (-np.log(softmax(out)) / out.shape[0] if loss == "cross_entropy"
                    else -2 * (out - targets) / out.size)
    params = [g for pair in zip(grads_w, grads_b) for g in pair]
    return [delta, *params, grad_targets]
