"""`propc bench --rnn`: the tanh RNN train step (input 64, hidden 128, batch 32,
10-class readout of the last state, SGD) at T = 16, 64, 256 steps, as
- propc `scan` (one op; its body compiled once as a native loop),
- propc unrolled (the Python loop unrolled while tracing; T <= 64),
- NumPy BPTT written by hand (propc/reference_rnn.py),
- JAX `lax.scan`, when JAX is importable.
Per row: trace + compile seconds of the first call (cold disk cache: each worker
runs with an empty one), step milliseconds (median, sampled in turns), the size of
the compiled module (assembly lines: independent of T for the scan), and a check of
the SGD update against NumPy's.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from . import reference_rnn
from .bench_common import TOLERANCE, UPDATE_TOLERANCE, Row, Timing, check_arrays
from .bench_common import interleaved_medians_ms
from .bench_report import number, render
from .bench_worker import emit, failure_text
from .rnn_model import make_rnn_step, rnn_logits, rnn_logits_unrolled

INPUTS, HIDDEN, BATCH, CLASSES, LR = 64, 128, 32, 10, 0.01
LENGTHS = (16, 64, 256)
UNROLLED_UP_TO = 64


def rnn_inputs(length: int, seed: int = 0) -> tuple[dict, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    params = reference_rnn.init_rnn(INPUTS, HIDDEN, CLASSES, seed=seed)
    xs = rng.standard_normal((length, BATCH, INPUTS)).astype(np.float32)
    labels = rng.integers(0, CLASSES, size=BATCH).astype(np.int32)
    return params, xs, labels


def rnn_flops(length: int) -> int:
    """Textbook FLOPs of one step: 2 products per cell forward, 4 backward (plus readout)."""
    cell = 2 * BATCH * (INPUTS + HIDDEN) * HIDDEN
    readout = 2 * BATCH * HIDDEN * CLASSES
    return 3 * (length * cell + readout)


def _check(params: dict, got: tuple, want: tuple) -> str:
    new, loss = got
    reference, want_loss = want
    pairs = [("loss", loss, want_loss, TOLERANCE)]
    pairs += [(f"{name} update", np.asarray(new[name]) - params[name],
               reference[name] - params[name], UPDATE_TOLERANCE) for name in sorted(params)]
    return check_arrays(pairs)


def _propc_row(name: str, logits_fn: Callable, args: tuple, want: tuple, length: int,
               threads: int) -> tuple[Row, Callable | None]:
    import propc as pc
    row = Row("rnn", f"T={length}", name, threads, flops=rnn_flops(length))
    try:
        compiled = pc.compile(make_rnn_step(LR, logits_fn))
        started = time.perf_counter()
        got = compiled(*args)
        row.compile_ms = (time.perf_counter() - started) * 1e3
        row.check = _check(args[0], got, want)
        lines = compiled.lower(*args).asm.count("\n")
        row.case += f" ({lines:,} asm lines)"
    except Exception as err:  # a broken row is reported; the others still run
        row.check = failure_text(err)
        return row, None
    return row, lambda: compiled(*args)


def _jax_row(args: tuple, want: tuple, length: int, threads: int) -> tuple[Row, Callable] | None:
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    row = Row("rnn", f"T={length}", "jax lax.scan", threads, flops=rnn_flops(length))

    def loss(p, xs, labels):
        def cell(h, x):
            return jnp.tanh(x @ p["Wx"] + h @ p["Wh"] + p["b"]), None
        h, _ = jax.lax.scan(cell, jnp.zeros((xs.shape[1], HIDDEN), jnp.float32), xs)
        logits = h @ p["Wo"] + p["bo"]
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], 1))

    @jax.jit
    def step(p, xs, labels):
        value, grads = jax.value_and_grad(loss)(p, xs, labels)
        return {k: p[k] - LR * grads[k] for k in p}, value

    started = time.perf_counter()
    got = jax.block_until_ready(step(*args))
    row.compile_ms = (time.perf_counter() - started) * 1e3
    row.check = _check(args[0], ({k: np.asarray(v) for k, v in got[0].items()},
                                 float(got[1])), want)
    return row, lambda: jax.block_until_ready(step(*args))


def run_rnn(threads: int, timing: Timing, quick: bool) -> list[Row]:
    """Time every contender at every length; print (emit) the rows."""
    rows = []
    for length in LENGTHS[:1] if quick else LENGTHS:
        args = rnn_inputs(length)
        want = reference_rnn.sgd_step(*args, LR)
        contenders = [_propc_row("propc scan", rnn_logits, args, want, length, threads)]
        if length <= UNROLLED_UP_TO:
            contenders.append(_propc_row("propc unrolled", rnn_logits_unrolled, args, want,
                                         length, threads))
        numpy_row = Row("rnn", f"T={length}", "numpy BPTT", threads, flops=rnn_flops(length),
                        check="reference")
        contenders.append((numpy_row, lambda a=args: reference_rnn.sgd_step(*a, LR)))
        jax_row = _jax_row(args, want, length, threads)
        if jax_row is not None:
            contenders.append(jax_row)
        timed = [(row, fn) for row, fn in contenders if fn is not None]
        times = interleaved_medians_ms([fn for _, fn in timed], timing)
        for (row, _), ms in zip(timed, times):
            row.ms = ms
            row.numpy_ms = times[[r for r, _ in timed].index(numpy_row)]
        for row, _ in contenders:
            rows.append(row.finish())
            emit(row)
    return rows


def format_rnn(rows: list[Row]) -> str:
    header = ("length", "impl", "threads", "compile s", "step ms", "x numpy", "GFLOP/s",
              "check")
    lines = []
    for row in rows:
        ratio = f"{row.ms / row.numpy_ms:.2f}" if row.ms and row.numpy_ms else "-"
        compile_s = "-" if row.compile_ms is None else f"{row.compile_ms / 1e3:.2f}"
        lines.append((row.case, row.impl, str(row.threads), compile_s, number(row.ms), ratio,
                      "-" if row.gflops is None else f"{row.gflops:.1f}", row.check))
    title = (f"tanh RNN train step (input {INPUTS}, hidden {HIDDEN}, batch {BATCH}, "
             f"{CLASSES}-class readout of the last state, SGD)")
    return "\n".join([title] + render(header, lines, left={0, 1, len(header) - 1}))


__all__ = ["format_rnn", "rnn_inputs", "run_rnn"]
