"""`propc demo`: train an MLP on the bundled digits with a compiled train step.

The step (forward, backward and optimizer update) is one function compiled by
propc. The demo prints, in order: what the compiled step contains (forward and
backward graphs, residuals, FLOPs, memory), per-epoch progress, final accuracy,
compiled-vs-interpreted agreement, and speed against the interpreter and a NumPy
step written by hand.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Callable

import numpy as np

from . import nn, optim, reference_mlp
from .datasets import load_digits, train_test_split


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="propc demo", description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=12, help="passes over the training set")
    p.add_argument("--hidden", type=int, nargs="+", default=[64],
                   help="hidden layer widths (default: 64)")
    p.add_argument("--batch", type=int, default=32, help="examples per step")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: 0.1 for sgd/momentum, 0.003 for adam)")
    p.add_argument("--optimizer", choices=["sgd", "momentum", "adam"], default="sgd")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, init and shuffles")
    p.add_argument("--plot", metavar="FILE.png", help="save loss/accuracy curves (needs matplotlib)")
    p.add_argument("--quick", action="store_true", help="a seconds-long run (2 epochs)")
    return p


def loss_fn(params, x, labels):
    h = x
    for w, b in params[:-1]:
        h = np.tanh(h @ w + b) if False else nn_tanh(h @ w + b)
    w, b = params[-1]
    return nn.cross_entropy(h @ w + b, labels)


def nn_tanh(x):
    from . import tanh
    return tanh(x)


def make_step(optimizer: str, lr: float) -> Callable:
    """The whole train step: loss, gradients and the optimizer update."""
    from . import value_and_grad

    if optimizer == "sgd":
        def step(params, state, x, labels):
            loss, grads = value_and_grad(loss_fn)(params, x, labels)
            return optim.sgd(params, grads, lr), state, loss
    elif optimizer == "momentum":
        def step(params, state, x, labels):
            loss, grads = value_and_grad(loss_fn)(params, x, labels)
            params, state = optim.momentum(params, grads, state, lr, 0.9)
            return params, state, loss
    else:
        def step(params, state, x, labels):
            loss, grads = value_and_grad(loss_fn)(params, x, labels)
            params, state = optim.adam(params, grads, state, lr)
            return params, state, loss
    return step


def initial_state(optimizer: str, params):
    if optimizer == "momentum":
        return [(np.zeros_like(w), np.zeros_like(b)) for w, b in params]
    if optimizer == "adam":
        return optim.adam_init(params)
    return None


def predict(params, x):
    h = x
    for w, b in params[:-1]:
        h = nn_tanh(h @ w + b)
    w, b = params[-1]
    return h @ w + b


def accuracy(predict_fn: Callable, params, x: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(predict_fn(params, x), axis=1) == labels))


def median_time(fn: Callable, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))
