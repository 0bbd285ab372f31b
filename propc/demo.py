"""`propc demo`: train an MLP on the bundled digits with a compiled train step.

The step (forward, backward and optimizer update) is one function compiled by
propc. The demo prints, in order: what the compiled step contains (forward and
backward graphs, residuals, FLOPs, memory), per-epoch progress, final accuracy,
compiled-vs-interpreted agreement, and speed against the interpreter and a NumPy
step written by hand. Its last line is `test accuracy: 0.xxx`.
"""
from __future__ import annotations

import argparse
import time
from typing import Callable

import numpy as np

from . import reference_mlp
from .cli import OneLineParser, UsageError
from .datasets import load_digits, train_test_split

DEFAULT_LR = {"sgd": 0.1, "momentum": 0.05, "adam": 0.003}


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="propc demo", description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=15, help="passes over the training set")
    p.add_argument("--hidden", type=int, nargs="+", default=[64],
                   help="hidden layer widths (default: 64)")
    p.add_argument("--batch", type=int, default=32, help="examples per step")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: 0.1 sgd, 0.05 momentum, 0.003 adam)")
    p.add_argument("--optimizer", choices=["sgd", "momentum", "adam"], default="sgd")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, init and shuffles")
    p.add_argument("--plot", metavar="FILE.png", help="save loss/accuracy curves (needs matplotlib)")
    p.add_argument("--quick", action="store_true", help="a seconds-long run (3 epochs)")
    p.add_argument("--data-parallel", action="store_true",
                   help="train on every MPI rank (run under mpiexec; needs propc[mpi]); "
                        "--batch is per rank")
    p.add_argument("--checkpoint", metavar="DIR",
                   help="--data-parallel: save checkpoints in DIR and resume from the newest")
    p.add_argument("--checkpoint-every", type=int, default=50, metavar="STEPS",
                   help="--data-parallel: steps between checkpoints (default 50)")
    p.add_argument("--model", choices=["mlp", "cnn", "rnn"], default="mlp",
                   help="mlp (default), cnn: a small CNN (propc/demo_cnn.py), or rnn: a "
                        "scanned tanh RNN reading rows (propc/demo_rnn.py, SGD only)")
    return p


# -- the model: ordinary NumPy-style code, traced by propc ---------------------------


def predict(params, x):
    import propc as pc
    h = x
    for w, b in params[:-1]:
        h = pc.tanh(h @ w + b)
    w, b = params[-1]
    return h @ w + b


def loss_fn(params, x, labels):
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


# -- reporting helpers ------------------------------------------------------------------


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


def _kib(n: int) -> str:
    return f"{n / 1024:,.1f} KiB"


def residual_lines(residuals) -> list[str]:
    """One line per residual of a forward graph: type, bytes, where it comes from."""
    lines = []
    for v in residuals:
        where = f" from {v.producer.loc}" if v.producer is not None and v.producer.loc else \
            " (an input)" if v.producer is None else ""
        lines.append(f"      {str(v.type):<16} {v.type.nbytes:>8,d} B{where}")
    return lines


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
        f"{_kib(sum(v.type.nbytes for v in residuals))}",
    ]
    lines += residual_lines(residuals)
    lines += [
        f"  peak scratch memory: training {_kib(train_mem.peak_scratch)}, "
        f"inference {_kib(infer_mem.peak_scratch)}",
    ]
    return lines


# -- the run ------------------------------------------------------------------------------


def run(options: argparse.Namespace, out: Callable[[str], None] = print) -> float:
    import propc as pc

    epochs = 3 if options.quick else options.epochs
    if epochs < 1 or options.batch < 1 or any(h < 1 for h in options.hidden):
        raise UsageError("--epochs, --batch and --hidden must be positive")
    if options.model == "rnn":
        if options.optimizer != "sgd" or len(options.hidden) != 1:
            raise UsageError("--model rnn trains with sgd and takes one --hidden width")
        from .demo_rnn import run_rnn
        return run_rnn(options, out)
    if options.data_parallel:
        from .demo_distributed import run_data_parallel
        return run_data_parallel(options, out)
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
    t0 = time.perf_counter()
    xb, yb = x_train[:batch], y_train[:batch]
    lowered = step.lower(params, state, xb, yb)
    lowered.executable
    compile_seconds = time.perf_counter() - t0
    lowered_infer = infer.lower(params, x_test[:batch])
    out("== 1. the compiled step ==")
    for line in describe_step(lowered, lowered_infer, sizes, batch):
        out(line)
    out(f"  trace + autodiff + optimise + LLVM compile: {compile_seconds:.2f} s\n")

    params, history, test_acc = train_and_check(
        step, infer, params, state, (x_train, y_train, x_test, y_test), batch, epochs,
        options.seed, out)

    out("== 5. speed (median per train step) ==")
    speed(step, params, state, xb, yb, lr, options.optimizer, out)
    if options.plot:
        plot(history, options.plot, out)
    out(f"test accuracy: {test_acc:.3f}")
    return test_acc


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


def main(argv: list[str]) -> int:
    import sys
    try:
        options = build_parser().parse_args(argv)
        if options.data_parallel and options.model != "mlp":
            raise UsageError("--data-parallel trains the MLP (--model mlp)")
        if options.model == "cnn":
            from .demo_cnn import run as run_cnn
            options.epochs_given = any(a.startswith("--epochs") for a in argv)
            run_cnn(options)
        else:
            run(options)
    except UsageError as err:
        print(f"propc demo: {err}", file=sys.stderr)
        return 2
    return 0
