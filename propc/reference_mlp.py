"""The tanh-MLP + mean softmax-cross-entropy + SGD step written by hand in NumPy.

This is the baseline `propc demo` and `propc bench` compare compiled code against:
the textbook forward pass and the backward pass as the per-layer error-signal
recurrence, E_l = (E_{l+1} W_{l+1}^T) * (1 - h_l^2), dW_l = h_{l-1}^T E_l.
It never goes through propc's IR.
"""
from __future__ import annotations

import numpy as np


def forward(params: list, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Logits, and the activations of every layer (the input first)."""
    activations = [x]
    h = x
    for i, (w, b) in enumerate(params):
        z = h @ w + b
        h = z if i == len(params) - 1 else np.tanh(z)
        activations.append(h)
    return h, activations


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy and its gradient with respect to the logits."""
    batch = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(batch), labels].mean()
    error = np.exp(log_probs)
    error[np.arange(batch), labels] -= 1
    return loss, error / batch


def loss_and_grads(params: list, x: np.ndarray, labels: np.ndarray) -> tuple[float, list]:
    logits, activations = forward(params, x)
    loss, error = softmax_cross_entropy(logits, labels)
    grads = [None] * len(params)
    for i in range(len(params) - 1, -1, -1):
        w, _ = params[i]
        grads[i] = (activations[i].T @ error, error.sum(axis=0))
        if i > 0:
            error = (error @ w.T) * (1 - activations[i] ** 2)
    return loss, grads


def sgd_step(params: list, x: np.ndarray, labels: np.ndarray, lr: float) -> tuple[list, float]:
    loss, grads = loss_and_grads(params, x, labels)
    new = [(w - lr * gw, b - lr * gb) for (w, b), (gw, gb) in zip(params, grads)]
    return new, loss


def predict(params: list, x: np.ndarray) -> np.ndarray:
    return forward(params, x)[0]
