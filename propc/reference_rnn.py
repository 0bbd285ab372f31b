"""A tanh RNN read over the leading (time) axis, 10-class readout of its last state,
mean softmax cross-entropy and an SGD step, written by hand in NumPy: forward, then
backpropagation through time (BPTT):

    h_t = tanh(x_t Wx + h_{t-1} Wh + b),   logits = h_T Wo + bo
    e_T = (dlogits Wo^T) * (1 - h_T^2),    e_{t-1} = (e_t Wh^T) * (1 - h_{t-1}^2)
    dWx = sum_t x_t^T e_t,  dWh = sum_t h_{t-1}^T e_t,  db = sum_t e_t

The baseline `propc demo --model rnn` and `propc bench`'s RNN rows compare compiled
scans against; it never goes through propc's IR.
"""
from __future__ import annotations

import numpy as np

from .reference_mlp import softmax_cross_entropy


def init_rnn(inputs: int, hidden: int, classes: int = 10, seed: int = 0,
             dtype=np.float32) -> dict:
    """Parameters: Wx (inputs, hidden), Wh (hidden, hidden), b, Wo (hidden, classes), bo."""
    rng = np.random.default_rng(seed)
    params = {"Wx": rng.standard_normal((inputs, hidden)) / np.sqrt(inputs),
              "Wh": rng.standard_normal((hidden, hidden)) * (0.5 / np.sqrt(hidden)),
              "b": np.zeros(hidden), "Wo": rng.standard_normal((hidden, classes)) / np.sqrt(hidden),
              "bo": np.zeros(classes)}
    return {name: value.astype(dtype) for name, value in params.items()}


def forward(params: dict, xs: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Logits and the states h_0 (zeros), h_1, ..., h_T for xs of shape (T, batch, in)."""
    h = np.zeros((xs.shape[1], params["Wh"].shape[0]), xs.dtype)
    states = [h]
    for x in xs:
        h = np.tanh(x @ params["Wx"] + h @ params["Wh"] + params["b"])
        states.append(h)
    return h @ params["Wo"] + params["bo"], states


def loss_and_grads(params: dict, xs: np.ndarray, labels: np.ndarray) -> tuple[float, dict]:
    logits, states = forward(params, xs)
    loss, error = softmax_cross_entropy(logits, labels)
    grads = {"Wo": states[-1].T @ error, "bo": error.sum(axis=0)}
    grads.update({name: np.zeros_like(params[name]) for name in ("Wx", "Wh", "b")})
    e = (error @ params["Wo"].T) * (1 - states[-1] ** 2)
    for t in range(len(xs), 0, -1):
        grads["Wx"] += xs[t - 1].T @ e
        grads["Wh"] += states[t - 1].T @ e
        grads["b"] += e.sum(axis=0)
        e = (e @ params["Wh"].T) * (1 - states[t - 1] ** 2)
    return float(loss), grads


def sgd_step(params: dict, xs: np.ndarray, labels: np.ndarray, lr: float) -> tuple[dict, float]:
    loss, grads = loss_and_grads(params, xs, labels)
    return {name: params[name] - lr * grads[name] for name in params}, loss
