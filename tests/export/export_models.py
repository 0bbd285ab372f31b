"""Small models the export tests compile: a 2-layer MLP forward pass, its loss
gradient and an SGD train step, on seeded inputs (shapes kept small: each export
compiles once)."""
from __future__ import annotations

import numpy as np

import propc as pc

SIZES = [8, 12, 5]
BATCH = 6
LEARNING_RATE = 0.1
STEPS = 10


def forward(params, x):
    (w1, b1), (w2, b2) = params
    return pc.nn.softmax(pc.tanh(x @ w1 + b1) @ w2 + b2)


def loss(params, x, labels):
    (w1, b1), (w2, b2) = params
    return pc.nn.cross_entropy(pc.tanh(x @ w1 + b1) @ w2 + b2, labels)


def train_step(params, x, labels):
    value, grads = pc.value_and_grad(loss)(params, x, labels)
    return pc.optim.sgd(params, grads, LEARNING_RATE), value


def inputs(seed: int = 0):
    """(params, x, labels): params a list of (W, b) tuples, float32; int32 labels."""
    rng = np.random.default_rng(seed)
    params = [(rng.standard_normal((n, m)).astype(np.float32) * 0.5,
               rng.standard_normal(m).astype(np.float32) * 0.1)
              for n, m in zip(SIZES[:-1], SIZES[1:])]
    x = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    labels = rng.integers(0, SIZES[-1], BATCH).astype(np.int32)
    return params, x, labels


def flat(tree) -> list[np.ndarray]:
    from propc.pytree import tree_leaves
    return [np.asarray(leaf) for leaf in tree_leaves(tree)]


def run_steps(step, params, x, labels, steps: int = STEPS):
    """`steps` train steps from `params`; the last step's (params, loss)."""
    value = None
    for _ in range(steps):
        params, value = step(params, x, labels)
    return params, value
