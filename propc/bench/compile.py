"""`propc bench --compile`: where compile time goes, cold and warm.

Each case is compiled in a fresh process with an empty disk cache (cold), timing
the stages one after the other: trace, simplify (the front end and the IR passes),
lower (fusion, kernel planning and LLVM IR emission in Python), parse (IR text into
LLVM), optimise (the LLVM pipeline) and machine code (LLVM's code generator), then
the first call. The same case then runs in another new process against the cache
the first one filled (warm: the first compile of a new process). The process-wide
sgemm library is built (or loaded) before the clock starts and timed as a row of
its own, since a machine builds it once.

Cases: the medium MLP train step, and a tanh RNN train step (input 64, hidden 128,
batch 32, 10-class readout of the last state, SGD) unrolled over T steps by a
Python loop, so the graph grows with T while its kernels repeat.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

from ir.table import render

CASES = ("mlp-medium", "rnn-16", "rnn-64", "rnn-128")
STAGES = ("trace", "simplify", "lower", "parse", "optimise", "machine code")


def rnn_inputs(steps: int, seed: int = 0):
    import numpy as np
    rng = np.random.default_rng(seed)
    params = {"wx": (rng.standard_normal((64, 128)) * 0.1).astype(np.float32),
              "wh": (rng.standard_normal((128, 128)) * 0.1).astype(np.float32),
              "b": np.zeros(128, np.float32),
              "wo": (rng.standard_normal((128, 10)) * 0.1).astype(np.float32)}
    xs = rng.standard_normal((steps, 32, 64)).astype(np.float32)
    labels = rng.integers(0, 10, 32).astype(np.int32)
    return params, xs, labels


def rnn_loss(params, xs, labels):
    """Cross-entropy of a readout of the last state of a tanh RNN, unrolled."""
    import propc as pc
    h = pc.tanh(xs[0] @ params["wx"] + params["b"])
    for t in range(1, xs.shape[0]):
        h = pc.tanh(xs[t] @ params["wx"] + h @ params["wh"] + params["b"])
    return pc.nn.cross_entropy(h @ params["wo"], labels)


def rnn_train_step(params, xs, labels):
    import propc as pc
    loss, grads = pc.value_and_grad(rnn_loss)(params, xs, labels)
    return pc.optim.sgd(params, grads, 0.1), loss


def _case(name: str):
    if name == "mlp-medium":
        from .cases import mlp_train_step
        from .common import SIZES, random_inputs
        return "MLP train step, medium", mlp_train_step, random_inputs(SIZES["medium"])
    steps = int(name.split("-")[1])
    return f"RNN train step, unrolled T={steps}", rnn_train_step, rnn_inputs(steps)


def measure(name: str) -> dict:
    """Compile case `name` in this process (its disk cache as the environment says)."""
    import propc as pc
    from codegen.options import from_environment
    from codegen.threads.library import load_library
    from ir.passes.simplify import simplify
    started = time.perf_counter()
    load_library(from_environment().cache_dir)
    library = time.perf_counter() - started
    title, program, args = _case(name)
    started = time.perf_counter()
    compiled = pc.compile(program)
    compiled(*args)
    total = time.perf_counter() - started
    # the stages again, one by one, for the breakdown (the backend's were recorded)
    lowered = compiled.lower(*args)
    started = time.perf_counter()
    traced = pc.trace(program, *args)
    traced_at = time.perf_counter()
    ops = len(simplify(traced).ops)
    stages = {"trace": traced_at - started, "simplify": time.perf_counter() - traced_at,
              **lowered.executable.compile_times}
    return {"case": title, "ops": ops, "total": total, "library": library,
            "traced_ops": len(traced.ops), "stages": stages,
            "from_cache": lowered.executable.from_cache}


def _run_worker(name: str, cache_dir: str) -> dict:
    env = dict(os.environ, PROPC_CACHE_DIR=cache_dir)
    env.pop("PROPC_CACHE", None)
    result = subprocess.run([sys.executable, "-m", "propc.bench.compile", name],
                            capture_output=True, text=True, env=env, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"compile bench worker {name} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_compile_bench(names: tuple[str, ...] = CASES) -> list[dict]:
    """Cold then warm rows of every case, each in processes of their own."""
    rows = []
    for name in names:
        with tempfile.TemporaryDirectory(prefix="propc-bench-compile-") as cache_dir:
            cold = _run_worker(name, cache_dir)
            warm = _run_worker(name, cache_dir)
        cold["warm"] = warm["total"]
        rows.append(cold)
    return rows


def format_compile(rows: list[dict]) -> str:
    header = ["case", "traced ops", "optimised ops", *STAGES, "cold total", "warm (new process)"]
    body = []
    for row in rows:
        stages = [f"{row['stages'].get(stage, 0.0) * 1e3:.0f}" for stage in STAGES]
        body.append([row["case"], str(row["traced_ops"]), str(row["ops"]), *stages,
                     f"{row['total'] * 1e3:.0f}", f"{row['warm'] * 1e3:.0f}"])
    library = max(row["library"] for row in rows) if rows else 0.0
    title = ("compile time in ms (cold: a new process, empty disk cache; warm: a new "
             "process, the cache the cold run filled; totals are first calls, "
             "the stages are timed apart)")
    note = (f"shared sgemm library (built once per machine, then loaded): up to "
            f"{library * 1e3:.0f} ms before the cold rows' clocks started")
    return "\n".join([title] + render(tuple(header), [tuple(line) for line in body],
                                       left={0}) + [note])


def main() -> int:
    print(json.dumps(measure(sys.argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
