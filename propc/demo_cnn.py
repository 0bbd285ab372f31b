"""`propc demo --model cnn`: a small CNN on the bundled 8x8 digits.

conv 3x3 1->16 (SAME), relu, max pool 2, conv 3x3 16->32, relu, max pool 2, linear
128->10; softmax cross-entropy, SGD with momentum. The same five sections as the MLP
demo (propc/demo_mlp.py), ending with `test accuracy: 0.xxx`. The NumPy peer in the
speed section is propc/reference_cnn.py (im2col convs, backward written by hand).
"""
from __future__ import annotations

import argparse
from typing import Callable

import numpy as np

from . import reference_cnn
from .datasets import load_digits, train_test_split
from .demo_common import (compiled_step_section, kib, median_seconds, residual_lines,
                          train_and_check)

CNN_LR = 0.05
CNN_EPOCHS = 12


def predict(params, x):
    """x: (N, 64) rows of pixels -> logits (N, 10)."""
    import propc as pc
    (w1, b1), (w2, b2), (w3, b3) = params
    h = x.reshape(x.shape[0], 8, 8, 1)
    h = pc.nn.max_pool2d(pc.nn.relu(pc.nn.conv2d(h, w1) + b1), 2)
    h = pc.nn.max_pool2d(pc.nn.relu(pc.nn.conv2d(h, w2) + b2), 2)
    return h.reshape(x.shape[0], -1) @ w3 + b3


def make_step(lr: float) -> Callable:
    import propc as pc

    def train_step_cnn(params, velocity, x, labels):
        loss, grads = pc.value_and_grad(
            lambda p: pc.nn.cross_entropy(predict(p, x), labels))(params)
        params, velocity = pc.optim.momentum(params, grads, velocity, lr, 0.9)
        return params, velocity, loss
    return train_step_cnn


def describe(lowered, lowered_infer, batch: int) -> list[str]:
    """Section 1: ops, contraction FLOPs (conv + dot), residuals, memory."""
    from ir.passes.cost import cost
    fwd, bwd = lowered.forward_graph, lowered.backward_graph
    fwd_cost, bwd_cost = cost(fwd), cost(bwd)
    residuals = fwd.outputs[len(fwd.outputs) - fwd.residual_outputs:]
    convs = sum(1 for op in lowered.graph.ops if op.prim == "conv")
    lines = [
        "model: CNN conv3x3 1->16, relu, maxpool 2, conv3x3 16->32, relu, maxpool 2, "
        f"linear 128->10, batch {batch}",
        f"compiled train step: {len(lowered.graph.ops)} ops ({convs} conv) in one native "
        "function (forward + backward + momentum update)",
        f"  forward pass : {len(fwd.ops):4d} ops, {fwd_cost.dot_flops:>12,d} conv+matmul FLOPs",
        f"  backward pass: {len(bwd.ops):4d} ops, {bwd_cost.dot_flops:>12,d} conv+matmul FLOPs",
        f"  residuals kept for the backward pass: {len(residuals)} arrays, "
        f"{kib(sum(v.type.nbytes for v in residuals))} (no im2col copies)",
    ]
    lines += residual_lines(residuals)
    lines.append(f"  peak scratch memory: training {kib(lowered.memory.peak_scratch)}, "
                 f"inference {kib(lowered_infer.memory.peak_scratch)}")
    return lines


def run(options: argparse.Namespace, out: Callable[[str], None] = print) -> float:
    import propc as pc

    epochs = 3 if options.quick else (options.epochs if options.epochs_given else CNN_EPOCHS)
    lr = CNN_LR if options.lr is None else options.lr
    x, y = load_digits()
    x_train, y_train, x_test, y_test = train_test_split(x, y, 0.2, options.seed)
    batch = min(options.batch, len(x_train))
    params = reference_cnn.init_cnn(seed=options.seed)
    velocity = [(np.zeros_like(w), np.zeros_like(b)) for w, b in params]
    step = pc.compile(make_step(lr))
    infer = pc.compile(predict)

    out(f"propc demo --model cnn: {len(x_train)} training and {len(x_test)} test images of "
        "digits (8x8)\n")
    xb, yb = x_train[:batch], y_train[:batch]
    compiled_step_section(
        step, (params, velocity, xb, yb),
        lambda lowered: describe(lowered, infer.lower(params, x_test[:batch]), batch), out)

    params, _, test_acc = train_and_check(
        step, infer, params, velocity, (x_train, y_train, x_test, y_test), batch, epochs,
        options.seed, out)

    out("== 5. speed (median per train step) ==")
    _speed(step, params, velocity, xb, yb, lr, out)
    out(f"test accuracy: {test_acc:.3f}")
    return test_acc


def _speed(step, params, velocity, xb, yb, lr, out) -> None:
    import propc as pc
    interpreted = pc.interpret(step.fn)
    images = xb.reshape(len(xb), 8, 8, 1)
    compiled_s = median_seconds(lambda: step(params, velocity, xb, yb))
    rows = [("propc compiled", compiled_s),
            ("propc interpreted (NumPy oracle)",
             median_seconds(lambda: interpreted(params, velocity, xb, yb), min_repeats=3)),
            ("NumPy im2col, backward by hand (SGD)",
             median_seconds(lambda: reference_cnn.sgd_step(params, images, yb, lr)))]
    for name, seconds in rows:
        out(f"  {name:<38} {seconds * 1e3:8.3f} ms   {1 / seconds:10,.0f} steps/s   "
            f"{seconds / compiled_s:6.1f}x compiled")
