"""`propc demo --model rnn`: the bundled digits read row by row (8 steps of 8 pixels)
by a tanh RNN written with `pc.scan`, trained with one compiled SGD step.

The same five sections as the MLP demo: the compiled step (the loop is one op whose
body is compiled once as a native loop; per-iteration residuals stacked), training,
accuracy, compiled vs interpreted, speed (against the interpreter and NumPy BPTT
written by hand). The last line is `test accuracy: 0.xxx`.
"""
from __future__ import annotations

from typing import Callable

from . import reference_rnn
from .demo_common import (compiled_step_section, kib, median_seconds, report_accuracy,
                          train)
from .rnn_model import make_rnn_step, rnn_logits, rows_as_steps

STEPS, PIXELS = 8, 8


def _scans(graph) -> list:
    return [op for op in graph.ops if op.prim == "scan"]


def describe_rnn_step(lowered, hidden: int, batch: int) -> list[str]:
    """Section 1: the loop as one op, its body once, its stacked residuals."""
    from ir.passes.cost import cost
    from ir.passes.cost_control import scan_body_flops
    fwd, bwd = lowered.forward_graph, lowered.backward_graph
    (fwd_scan,), (bwd_scan,) = _scans(fwd), _scans(bwd)
    residuals = fwd.outputs[len(fwd.outputs) - fwd.residual_outputs:]
    lines = [
        f"model: tanh RNN, {STEPS} steps of {PIXELS} pixels, hidden {hidden}, 10-class "
        f"readout of the last state, batch {batch}",
        f"compiled train step: {len(lowered.graph.ops)} ops in one native function; the "
        f"time loop is one scan op (body of {len(fwd_scan.attrs['body'].ops)} ops, "
        "emitted once as a native loop)",
        f"  forward pass : {len(fwd.ops):3d} ops, scan body {scan_body_flops(fwd_scan):,} "
        f"FLOPs per step x {fwd_scan.attrs['length']} = {cost(fwd).flops:,} FLOPs in all",
        f"  backward pass: {len(bwd.ops):3d} ops (a reversed scan), body "
        f"{scan_body_flops(bwd_scan):,} FLOPs per step, {cost(bwd).flops:,} FLOPs in all",
        f"  residuals kept for the backward pass: {len(residuals)} arrays, "
        f"{kib(lowered.memory.residuals)} (stacked: steps x per-step bytes)",
    ]
    for v in residuals:
        lines.append(f"      {str(v.type):<16} {v.type.nbytes:>8,d} B{_origin(v)}")
    lines.append(f"  peak scratch memory: {kib(lowered.memory.peak_scratch)}")
    return lines


def _origin(value) -> str:
    op = value.producer
    if op is None:
        return " (an input)"
    if op.prim == "scan":
        stacked = op.results.index(value) >= op.attrs["num_carry"]
        return f" {'stacked by' if stacked else 'final carry of'} the scan at {op.loc}"
    return f" from {op.loc}"


def run_rnn(options, out: Callable[[str], None] = print) -> float:
    """Train and report; returns the test accuracy."""
    import propc as pc
    from .datasets import load_digits, train_test_split

    epochs = 3 if options.quick else options.epochs
    hidden = options.hidden[0]
    lr = 0.1 if options.lr is None else options.lr
    x, y = load_digits()
    x_train, y_train, x_test, y_test = train_test_split(x, y, 0.2, options.seed)
    batch = min(options.batch, len(x_train))
    params = reference_rnn.init_rnn(PIXELS, hidden, seed=options.seed)
    step = pc.compile(make_rnn_step(lr))
    infer = pc.compile(rnn_logits)

    def predict(p, xs):
        return infer(p, xs)

    out(f"propc demo --model rnn: {len(x_train)} training and {len(x_test)} test images "
        "of digits, read row by row\n")
    xb, yb = rows_as_steps(x_train[:batch]), y_train[:batch]
    compiled_step_section(step, (params, xb, yb),
                          lambda lowered: describe_rnn_step(lowered, hidden, batch), out)

    out("== 2. training ==")
    def step_on_images(p, state, images, labels):
        """The MLP demo's loop feeds images (N, 64): read them as row steps here."""
        new_params, loss = step(p, rows_as_steps(images), labels)
        return new_params, state, loss

    def predict_images(p, images):
        return predict(p, rows_as_steps(images))

    history = train(step_on_images, params, None, x_train, y_train, batch, epochs,
                    options.seed, predict_images, out)
    params = history["params"]

    test_acc = report_accuracy(predict_images, params, (x_train, y_train), (x_test, y_test),
                               out)

    out("== 4. compiled vs interpreted (one step, same inputs) ==")
    out(str(pc.compare(step, params, xb, yb)) + "\n")

    out("== 5. speed (median per train step) ==")
    _speed(step, params, xb, yb, lr, out)
    out(f"test accuracy: {test_acc:.3f}")
    return test_acc


def _speed(step, params, xb, yb, lr, out) -> None:
    import propc as pc
    interpreted = pc.interpret(step.fn)
    compiled_s = median_seconds(lambda: step(params, xb, yb))
    rows = [("propc compiled (native scan)", compiled_s),
            ("propc interpreted (NumPy oracle)",
             median_seconds(lambda: interpreted(params, xb, yb), min_repeats=3)),
            ("NumPy BPTT written by hand",
             median_seconds(lambda: reference_rnn.sgd_step(params, xb, yb, lr)))]
    for name, seconds in rows:
        out(f"  {name:<34} {seconds * 1e3:8.3f} ms   {1 / seconds:10,.0f} steps/s   "
            f"{seconds / compiled_s:6.1f}x compiled")
