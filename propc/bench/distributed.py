"""`propc bench --data-parallel`: the large MLP train step on 1 rank x all cores
next to 2 ranks x half the cores (here: 1 x 2 threads vs 2 x 1 thread), the same
global batch, with each step's time split into compute (the compiled backward
pass + the compiled update) and allreduce (including waiting for the slower
rank), and a cost-model estimate of the allreduce between N hosts on a link.

Each configuration is one `mpiexec` launch of this module's worker; rank 0 prints
one DPROW line of JSON. The worker first checks one data-parallel step against
the NumPy SGD step on the whole global batch (propc/reference_mlp.py).

The estimate is the ring allreduce's: each host sends and receives 2(N-1)/N of
the gradient bytes, in 2(N-1) messages, so t = 2(N-1)/N * bytes / bandwidth +
2(N-1) * latency; compute per host is the measured 1-rank compute over N (the
global batch split N ways, assuming it scales linearly).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np

from ir.table import render

from ..usage import positive_integers
from .common import LEARNING_RATE, SIZES, MLPSize, check_train_step, random_inputs
from .environment import worker_environment

ROW_PREFIX = "DPROW "


# -- the worker (every rank) --------------------------------------------------------------


def _sgd(params, grads, state):
    import propc as pc
    return pc.optim.sgd(params, grads, LEARNING_RATE), state


def _check(dp, params, x, labels, local) -> str:
    """One data-parallel step against NumPy's SGD step on the whole global batch."""
    from .. import reference_mlp
    rank = dp.rank
    new, _, loss = dp.step(params, None, x[rank * local:(rank + 1) * local],
                           labels[rank * local:(rank + 1) * local])
    want = reference_mlp.sgd_step(params, x, labels, LEARNING_RATE)
    return check_train_step(params, (new, loss), want)


def synchronised_allreduce_ms(comm, nbytes: int, repeats: int) -> float:
    """Median ms of an Allreduce of `nbytes` of float32 that every rank enters at
    once (a Barrier first): the transfer alone, without waiting for a slower rank."""
    MPI = _mpi()
    buffer = np.ones(max(1, nbytes // 4), np.float32)
    times = []
    for _ in range(repeats):
        comm.Barrier()
        started = time.perf_counter()
        comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
        times.append(time.perf_counter() - started)
    return 1e3 * float(np.median(times))


def _mpi():
    from ..distributed.mpi import mpi_module
    return mpi_module()


def worker(size: MLPSize, steps: int) -> dict | None:
    """Time `steps` data-parallel steps on this rank's share of the global batch;
    rank 0's row (medians in ms), None on the other ranks."""
    from .. import distributed as dist
    from .cases import mlp_loss, mlp_train_step
    from ..compile import compile as pc_compile
    comm = dist.world()
    params, x, labels = random_inputs(size)
    local = size.batch // comm.Get_size()
    dp = dist.data_parallel(mlp_loss, _sgd, comm)
    params, _ = dp.start(params, None)
    check = _check(dp, params, x, labels, local)
    xb, yb = x[dp.rank * local:(dp.rank + 1) * local], labels[dp.rank * local:(dp.rank + 1) * local]
    compute, reduce, total = [], [], []
    for _ in range(steps):
        before = (dp.stats.compute_seconds, dp.stats.allreduce_seconds)
        started = time.perf_counter()
        dp.step(params, None, xb, yb)
        total.append(time.perf_counter() - started)
        compute.append(dp.stats.compute_seconds - before[0])
        reduce.append(dp.stats.allreduce_seconds - before[1])
    row = {"ranks": dp.size, "threads": int(os.environ.get("PROPC_NUM_THREADS", "0") or 0),
           "size": size.describe(), "local_batch": local, "bytes": int(dp.stats.bytes // (steps + 1)),
           "step_ms": 1e3 * float(np.median(total)), "compute_ms": 1e3 * float(np.median(compute)),
           "allreduce_ms": 1e3 * float(np.median(reduce)), "check": check}
    row["synchronised_ms"] = synchronised_allreduce_ms(comm, row["bytes"], steps)
    if dp.size == 1:  # the whole step as one native call, for reference
        whole = pc_compile(mlp_train_step)
        whole(params, x, labels)
        times = []
        for _ in range(steps):
            started = time.perf_counter()
            whole(params, x, labels)
            times.append(time.perf_counter() - started)
        row["one_function_ms"] = 1e3 * float(np.median(times))
    return row if dp.rank == 0 else None


def worker_main(argv: list[str]) -> int:
    from .. import distributed as dist
    size, steps = SIZES[argv[0]], int(argv[1])
    with dist.fail_fast():
        row = worker(size, steps)
    if row is not None:
        print(ROW_PREFIX + json.dumps(row), flush=True)
    return 0


# -- the parent ----------------------------------------------------------------------------


def parse_hosts(text: str) -> list[int]:
    """`--hosts 2,4,8`: host counts of the estimate (UsageError unless all >= 1)."""
    return positive_integers(text, "--hosts", "2,4,8")


def configurations(cores: int) -> list[tuple[int, int]]:
    """(ranks, threads per rank): 1 rank on every core, then 2 ranks sharing them."""
    return [(1, cores), (2, max(1, cores // 2))]


def launch(ranks: int, threads: int, size: str, steps: int) -> dict:
    """One mpiexec run of the worker; its row, or a row whose check says FAIL."""
    from ..distributed.mpi import mpiexec_path
    mpiexec = mpiexec_path()
    failed = {"ranks": ranks, "threads": threads, "size": SIZES[size].describe()}
    if mpiexec is None:
        return {**failed, "check": "FAIL no mpiexec: pip install 'propc[mpi]'"}
    env = worker_environment(threads)
    env["OPENBLAS_NUM_THREADS"] = "1"  # the NumPy check must not take the ranks' cores
    command = [mpiexec, "-n", str(ranks), sys.executable, "-m", "propc.bench.distributed",
               size, str(steps)]
    try:
        done = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        return {**failed, "check": "FAIL the launch hung (600 s)"}
    rows = [json.loads(line[len(ROW_PREFIX):]) for line in done.stdout.splitlines()
            if line.startswith(ROW_PREFIX)]
    if done.returncode != 0 or not rows:
        return {**failed, "check": f"FAIL mpiexec exited with status {done.returncode}"}
    return rows[0]


def estimate_allreduce_ms(nbytes: int, hosts: int, gbit_per_s: float, latency_us: float) -> float:
    """Ring allreduce of `nbytes` between `hosts` hosts (see the module docstring)."""
    if hosts < 2:
        return 0.0
    volume = 2 * (hosts - 1) / hosts * nbytes
    return 1e3 * (volume * 8 / (gbit_per_s * 1e9) + 2 * (hosts - 1) * latency_us * 1e-6)


def format_measured(rows: list[dict]) -> list[str]:
    base = rows[0].get("step_ms")
    header = ("ranks x threads", "step ms", "compute ms", "allreduce ms", "allreduce share",
              "synchronised allreduce ms", "vs first", "check")
    lines = []
    for row in rows:
        step = row.get("step_ms")
        cells = [f"{row['ranks']} x {row['threads']} (batch {row.get('local_batch', '-')} each)"]
        for key in ("step_ms", "compute_ms", "allreduce_ms"):
            cells.append("-" if row.get(key) is None else f"{row[key]:.2f}")
        cells.append(f"{row['allreduce_ms'] / step:.0%}" if step else "-")
        cells.append("-" if row.get("synchronised_ms") is None else f"{row['synchronised_ms']:.2f}")
        cells.append(f"{step / base:.2f}x" if step and base else "-")
        cells.append(row["check"])
        lines.append(tuple(cells))
    return render(header, lines, {0, 7})


def format_estimate(row: dict, hosts: list[int], gbit: float, latency_us: float) -> list[str]:
    """Step time on N hosts (1 rank each) from the 1-rank compute and the ring model."""
    header = ("hosts", "batch per host", "compute ms", f"allreduce ms ({gbit:g} Gb/s)",
              "step ms", "speed-up")
    one = row["compute_ms"]
    lines = []
    for count in hosts:
        reduce = estimate_allreduce_ms(row["bytes"], count, gbit, latency_us)
        step = one / count + reduce
        lines.append((str(count), str(row["local_batch"] * row["ranks"] // count),
                      f"{one / count:.2f}", f"{reduce:.2f}", f"{step:.2f}", f"{one / step:.2f}x"))
    return render(header, lines, set())


def run_section(size: str, steps: int, hosts: list[int], gbit: float,
                latency_us: float) -> tuple[str, list[dict], bool]:
    """Both launches and the estimate: (text, rows, all checks ok)."""
    from ..distributed.mpi import mpiexec_path  # noqa: F401 - fails early without the extra
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print("propc bench: data-parallel launches...", file=sys.stderr, flush=True)
    rows = [launch(ranks, threads, size, steps) for ranks, threads in configurations(cores or 1)]
    first = rows[0]
    text = [f"data-parallel train step, MLP {first['size']} (global batch), SGD, {steps} steps "
            f"timed per configuration, medians (allreduce: in the step, with any wait for the "
            f"slower rank; synchronised: the same bytes after a Barrier):"]
    text += format_measured(rows)
    if "one_function_ms" in first:
        text.append(f"(the same step compiled as one function, no MPI, 1 x {first['threads']}: "
                    f"{first['one_function_ms']:.2f} ms)")
    if first.get("bytes"):
        text.append(f"\nallreduce estimate: ring over N hosts, {first['bytes'] / 2**20:.2f} MiB of "
                    f"gradients, {gbit:g} Gb/s links, {latency_us:g} µs per message; compute = "
                    f"the 1-rank compute / N:")
        text += format_estimate(first, hosts, gbit, latency_us)
    ok = all(row["check"] == "ok" for row in rows)
    return "\n".join(text) + "\n", rows, ok


if __name__ == "__main__":
    raise SystemExit(worker_main(sys.argv[1:]))
