"""`propc demo` (the default model): an MLP on the bundled digits, trained with one
compiled step (forward, backward and optimizer update in one native function).

The run prints, in order: what the compiled step contains (forward and backward
graphs, residuals, FLOPs, memory), per-epoch progress, final accuracy,
compiled-vs-interpreted agreement, and speed against the interpreter and a NumPy
step written by hand. Its last line is `test accuracy: 0.xxx`. The data-parallel
demo (propc/demo_distributed.py) trains this model too.
"""
from __future__ import annotations

import argparse
from typing import Callable

import numpy as np

from . import reference_mlp
from .datasets import load_digits, train_test_split
from .demo_common import (compiled_step_section, kib, median_seconds, residual_lines,
                          train_and_check)
from .usage import UsageError

DEFAULT_LR = {"sgd": 0.1, "momentum": 0.05, "adam": 0.003}


# -- the model: ordinary NumPy-style code, traced by propc ---------------------------


def predict(params, x):
    """Logits of the tanh MLP: tanh hidden layers, a linear last layer (the bench's
    MLP too, propc/bench/cases.py)."""
    import propc as pc
    h = x
    for w, b in params[:-1]:
        h = pc.tanh(h @ w + b)
    w, b = params[-1]
    return h @ w + b


def loss_fn(params, x, labels):
    """Mean softmax cross-entropy of the MLP's logits."""
    import propc as pc
    return pc.nn.cross_entropy(predict(params, x), labels)


def make_step(optimizer: str, lr: float) -> Callable:
    """The whole train step: loss, gradients and the optimizer update."""
    import propc as pc

    def step(params, state, x, labels):
        loss, grads = pc.value_and_grad(loss_fn)(params, x, labels)
        if optimizer == "sgd":
            return pc.optim.sgd(params, grads, lr), state, loss
        if optimizer == "momentum":
            params, state = pc.optim.momentum(params, grads, state, lr, 0.9)
            return params, state, loss
        params, state = pc.optim.adam(params, grads, state, lr)
        return params, state, loss

    step.__name__ = f"train_step_{optimizer}"
    return step


def initial_state(optimizer: str, params):
    import propc as pc
    if optimizer == "momentum":
        return [(np.zeros_like(w), np.zeros_like(b)) for w, b in params]
    if optimizer == "adam":
        return pc.optim.adam_init(params)
    return None


# -- what the compiled step is made of -----------------------------------------------------


def describe_step(lowered, lowered_infer, sizes: list[int], batch: int) -> list[str]:
    """Section 1: what the compiled step is made of."""
    fwd, bwd = lowered.forward_graph, lowered.backward_graph
    from ir.passes.cost import cost
    fwd_cost, bwd_cost = cost(fwd), cost(bwd)
    residuals = fwd.outputs[len(fwd.outputs) - fwd.residual_outputs:]
    textbook_fwd = sum(2 * n * m * batch for n, m in zip(sizes[:-1], sizes[1:]))
    textbook_bwd = sum((2 if i == 0 else 4) * n * m * batch
                       for i, (n, m) in enumerate(zip(sizes[:-1], sizes[1:])))
    train_mem, infer_mem = lowered.memory, lowered_infer.memory
    lines = [
        f"model: MLP {'-'.join(map(str, sizes))}, tanh, softmax cross-entropy, batch {batch}",
        f"compiled train step: {len(lowered.graph.ops)} ops in one native function "
        f"(forward + backward + update)",
        f"  forward pass : {len(fwd.ops):4d} ops, {fwd_cost.dot_flops:>12,d} matmul FLOPs "
        f"(textbook 2nmd per layer: {textbook_fwd:,d})",
        f"  backward pass: {len(bwd.ops):4d} ops, {bwd_cost.dot_flops:>12,d} matmul FLOPs "
        f"(textbook 4nmd, 2nmd for layer 1: {textbook_bwd:,d})",
        f"  backward/forward FLOPs: {bwd_cost.dot_flops / max(fwd_cost.dot_flops, 1):.2f}x",
        f"  residuals kept for the backward pass: {len(residuals)} arrays, "
        f"{kib(sum(v.type.nbytes for v in residuals))}",
    ]
    lines += residual_lines(residuals)
    lines += [
        f"  peak scratch memory: training {kib(train_mem.peak_scratch)}, "
        f"inference {kib(infer_mem.peak_scratch)}",
    ]
    return lines


# -- the run ------------------------------------------------------------------------------


def run_mlp(options: argparse.Namespace, out: Callable[[str], None] = print) -> float:
    """The MLP demo, its options checked by propc/demo.py; returns the test accuracy."""
    import propc as pc

    epochs = 3 if options.quick else options.epochs
    lr = DEFAULT_LR[options.optimizer] if options.lr is None else options.lr
    if options.plot:
        require_matplotlib()  # before training, not after it
    x, y = load_digits()
    x_train, y_train, x_test, y_test = train_test_split(x, y, 0.2, options.seed)
    sizes = [x.shape[1], *options.hidden, 10]
    batch = min(options.batch, len(x_train))
    params = pc.nn.init_mlp(sizes, seed=options.seed)
    state = initial_state(options.optimizer, params)
    step = pc.compile(make_step(options.optimizer, lr))
    infer = pc.compile(predict)

    out(f"propc demo: {len(x_train)} training and {len(x_test)} test images of digits (8x8)\n")
    xb, yb = x_train[:batch], y_train[:batch]
    compiled_step_section(
        step, (params, state, xb, yb),
        lambda lowered: describe_step(lowered, infer.lower(params, x_test[:batch]), sizes, batch),
        out)

    params, history, test_acc = train_and_check(
        step, infer, params, state, (x_train, y_train, x_test, y_test), batch, epochs,
        options.seed, out)

    out("== 5. speed (median per train step) ==")
    speed(step, params, state, xb, yb, lr, options.optimizer, out)
    if options.plot:
        plot(history, options.plot, out)
    out(f"test accuracy: {test_acc:.3f}")
    return test_acc

def speed(step, params, state, xb, yb, lr, optimizer, out) -> None:
    import propc as pc
    interpreted = pc.interpret(step.fn)
    compiled_s = median_seconds(lambda: step(params, state, xb, yb))
    interpreted_s = median_seconds(lambda: interpreted(params, state, xb, yb), min_repeats=3)
    rows = [("propc compiled", compiled_s), ("propc interpreted (NumPy oracle)", interpreted_s)]
    if optimizer == "sgd":
        numpy_s = median_seconds(lambda: reference_mlp.sgd_step(params, xb, yb, lr))
        rows.append(("NumPy written by hand", numpy_s))
    for name, seconds in rows:
        out(f"  {name:<34} {seconds * 1e3:8.3f} ms   {1 / seconds:10,.0f} steps/s   "
            f"{seconds / compiled_s:6.1f}x compiled")


def require_matplotlib() -> None:
    """--plot without matplotlib is a usage error (exit status 2), said at once."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install 'propc[plot]'") from None


def plot(history: dict, path: str, out) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    epochs = range(1, len(history["loss"]) + 1)
    ax1.plot(epochs, history["loss"])
    ax1.set(xlabel="epoch", ylabel="mean training loss")
    ax2.plot(epochs, history["accuracy"])
    ax2.set(xlabel="epoch", ylabel="training accuracy")
    fig.tight_layout()
    fig.savefig(path)
    out(f"wrote {path}")


__all__ = ["DEFAULT_LR", "describe_step", "initial_state", "loss_fn", "make_step", "predict",
           "run_mlp"]
