"""Hand-built multi-op graphs for the backend tests (no front end needed): an MLP
layer, a softmax, and a whole MLP SGD train step with its backward pass written out
by hand, plus plain-NumPy references for them.
"""
from __future__ import annotations

import numpy as np

from ir import Builder, DType, Graph, TensorType

F32 = DType.f32


def bcast(b: Builder, x, shape, dims):
    return b.broadcast_in_dim(x, shape=tuple(shape), dims=tuple(dims))


def matmul(b: Builder, x, w, lhs_contract=1, rhs_contract=0):
    return b.dot(x, w, lhs_batch=(), rhs_batch=(), lhs_contract=(lhs_contract,),
                 rhs_contract=(rhs_contract,))


def scalar(b: Builder, value, dtype=F32):
    return b.constant(value=np.asarray(value, dtype=dtype.numpy))


def full(b: Builder, value, shape, dtype=F32):
    return bcast(b, scalar(b, value, dtype), shape, ())


def softmax(b: Builder, logits):
    """Max-shifted softmax over the last axis of a [rows, cols] value."""
    rows, cols = logits.shape
    top = b.reduce_max(logits, axes=(1,))
    shifted = b.sub(logits, bcast(b, top, (rows, cols), (0,)))
    e = b.exp(shifted)
    total = b.reduce_sum(e, axes=(1,))
    return b.div(e, bcast(b, total, (rows, cols), (0,)))


def layer_graph(batch: int, n_in: int, n_out: int) -> Graph:
    """tanh(x @ W + b) followed by a row softmax."""
    b = Builder("layer")
    x = b.input(TensorType((batch, n_in), F32))
    w = b.input(TensorType((n_in, n_out), F32))
    bias = b.input(TensorType((n_out,), F32))
    pre = b.add(matmul(b, x, w), bcast(b, bias, (batch, n_out), (1,)))
    h = b.tanh(pre)
    b.output(h, softmax(b, h))
    return b.build()


def layer_reference(x, w, bias):
    h = np.tanh(x @ w + bias)
    e = np.exp(h - h.max(axis=1, keepdims=True))
    return [h, e / e.sum(axis=1, keepdims=True)]


def train_step_graph(batch: int, sizes: list[int], lr: float = 0.1) -> Graph:
    """One SGD step of a tanh MLP with mean softmax cross-entropy.

    Inputs: x, one-hot targets, then (W, b) per layer. Outputs: loss, then the
    updated (W, b) per layer.
    """
    b = Builder("train_step")
    x = b.input(TensorType((batch, sizes[0]), F32))
    target = b.input(TensorType((batch, sizes[-1]), F32))
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        params.append((b.input(TensorType((n_in, n_out), F32)),
                       b.input(TensorType((n_out,), F32))))
    activations = [x]
    h = x
    for i, (w, bias) in enumerate(params):
        n_out = w.shape[1]
        h = b.add(matmul(b, h, w), bcast(b, bias, (batch, n_out), (1,)))
        if i < len(params) - 1:
            h = b.tanh(h)
        activations.append(h)
    loss, grad = _cross_entropy(b, h, target)
    updates = _backward(b, params, activations, grad, lr)
    b.output(loss, *[v for pair in updates for v in pair])
    return b.build()


def _cross_entropy(b: Builder, logits, target):
    """Mean cross entropy and its gradient with respect to the logits."""
    batch, classes = logits.shape
    probs = softmax(b, logits)
    top = b.reduce_max(logits, axes=(1,))
    shifted = b.sub(logits, bcast(b, top, (batch, classes), (0,)))
    lse = b.log(b.reduce_sum(b.exp(shifted), axes=(1,)))
    logp = b.sub(shifted, bcast(b, lse, (batch, classes), (0,)))
    total = b.reduce_sum(b.mul(target, logp), axes=(0, 1))
    loss = b.mul(total, scalar(b, -1.0 / batch))
    grad = b.mul(b.sub(probs, target), full(b, 1.0 / batch, (batch, classes)))
    return loss, grad


def _backward(b: Builder, params, activations, grad, lr: float):
    updates = []
    for i in reversed(range(len(params))):
        w, bias = params[i]
        inputs = activations[i]
        dw = matmul(b, inputs, grad, lhs_contract=0, rhs_contract=0)
        db = b.reduce_sum(grad, axes=(0,))
        updates.append((b.sub(w, b.mul(full(b, lr, w.shape), dw)),
                        b.sub(bias, b.mul(full(b, lr, bias.shape), db))))
        if i > 0:
            dh = matmul(b, grad, w, lhs_contract=1, rhs_contract=1)
            h = activations[i]
            one = full(b, 1.0, h.shape)
            grad = b.mul(dh, b.sub(one, b.mul(h, h)))
    return list(reversed(updates))


def train_step_reference(x, target, *params, lr=0.1):
    """The same step in plain NumPy (float64 math, float32 results)."""
    x = x.astype(np.float64)
    pairs = [(params[i].astype(np.float64), params[i + 1].astype(np.float64))
             for i in range(0, len(params), 2)]
    acts = [x]
    h = x
    for i, (w, bias) in enumerate(pairs):
        h = h @ w + bias
        if i < len(pairs) - 1:
            h = np.tanh(h)
        acts.append(h)
    shifted = h - h.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    batch = x.shape[0]
    loss = -(target * logp).sum() / batch
    grad = (np.exp(logp) - target) / batch
    out = []
    for i in reversed(range(len(pairs))):
        w, bias = pairs[i]
        out.append((w - lr * acts[i].T @ grad, bias - lr * grad.sum(axis=0)))
        if i > 0:
            grad = (grad @ w.T) * (1 - acts[i] ** 2)
    flat = [np.float32(loss)] + [a.astype(np.float32) for pair in reversed(out) for a in pair]
    return [np.asarray(a) for a in flat]


def train_step_inputs(rng: np.random.Generator, batch: int, sizes: list[int]) -> list:
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    labels = rng.integers(0, sizes[-1], size=batch)
    target = np.eye(sizes[-1], dtype=np.float32)[labels]
    arrays = [x, target]
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        arrays.append((rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32))
        arrays.append((rng.standard_normal(n_out) * 0.1).astype(np.float32))
    return arrays
