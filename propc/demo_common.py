"""What every `propc demo` model shares: the training loop, the accuracy and
compiled-vs-interpreted sections, timing and the residual listing (the MLP in
propc/demo_mlp.py, the CNN, the RNN and the data-parallel MLP use them; the
command itself is propc/demo.py)."""
from __future__ import annotations

import time
from typing import Callable

import numpy as np


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits, axis=1) == labels))


def median_seconds(fn: Callable, min_repeats: int = 5, budget: float = 0.5) -> float:
    """Median wall time of fn() over enough calls to fill about `budget` seconds."""
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < min_repeats or time.perf_counter() - started < budget:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 2000:
            break
    return float(np.median(times))


def report_accuracy(infer, params, train, test, out) -> float:
    """Section 3: train and test accuracy; returns the test accuracy."""
    (x_train, y_train), (x_test, y_test) = train, test
    out("\n== 3. accuracy ==")
    train_acc = accuracy(infer(params, x_train), y_train)
    test_acc = accuracy(infer(params, x_test), y_test)
    out(f"train accuracy: {train_acc:.3f}   ({len(x_train)} images)")
    out(f"test accuracy on {len(x_test)} held-out images: {test_acc:.3f}\n")
    return test_acc


def compiled_step_section(step, args, describe: Callable, out):
    """Section 1 of the single-process demos: compile the train step on `args`
    (timed: trace, autodiff, optimise, LLVM), print `describe(lowered)`'s lines and
    the compile time; returns the step's Lowered."""
    started = time.perf_counter()
    lowered = step.lower(*args)
    lowered.executable
    seconds = time.perf_counter() - started
    out("== 1. the compiled step ==")
    for line in describe(lowered):
        out(line)
    out(f"  trace + autodiff + optimise + LLVM compile: {seconds:.2f} s\n")
    return lowered


def kib(n: int) -> str:
    return f"{n / 1024:,.1f} KiB"


def residual_lines(residuals) -> list[str]:
    """One line per residual of a forward graph: type, bytes, where it comes from."""
    lines = []
    for v in residuals:
        where = f" from {v.producer.loc}" if v.producer is not None and v.producer.loc else \
            " (an input)" if v.producer is None else ""
        lines.append(f"      {str(v.type):<16} {v.type.nbytes:>8,d} B{where}")
    return lines


def train_and_check(step, infer, params, state, data, batch, epochs, seed, out):
    """Sections 2-4 of every demo model: training, accuracy, compiled vs interpreted
    on the first batch. Returns (trained params, history, test accuracy)."""
    import propc as pc
    x_train, y_train, x_test, y_test = data
    out("== 2. training ==")
    history = train(step, params, state, x_train, y_train, batch, epochs, seed, infer, out)
    params = history.pop("params")

    test_acc = report_accuracy(infer, params, (x_train, y_train), (x_test, y_test), out)

    out("== 4. compiled vs interpreted (one step, same inputs) ==")
    out(str(pc.compare(step, params, state, x_train[:batch], y_train[:batch])) + "\n")
    return params, history, test_acc


def train(step, params, state, x_train, y_train, batch, epochs, seed, infer, out) -> dict:
    rng = np.random.default_rng(seed + 1)
    steps_per_epoch = len(x_train) // batch
    history: dict = {"loss": [], "accuracy": []}
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(x_train))
        losses = []
        started = time.perf_counter()
        for s in range(steps_per_epoch):
            idx = order[s * batch:(s + 1) * batch]
            params, state, loss = step(params, state, x_train[idx], y_train[idx])
            losses.append(float(loss))
        elapsed = time.perf_counter() - started
        acc = accuracy(infer(params, x_train), y_train)
        history["loss"].append(float(np.mean(losses)))
        history["accuracy"].append(acc)
        out(f"epoch {epoch:3d}  loss {np.mean(losses):.4f}  train accuracy {acc:.3f}  "
            f"{steps_per_epoch / elapsed:,.0f} steps/s")
    history["params"] = params
    return history


__all__ = ["accuracy", "kib", "median_seconds", "report_accuracy", "residual_lines", "train",
           "train_and_check"]
