"""`propc bench`: how fast compiled propc code runs, next to NumPy doing the same.

    propc bench [--quick] [--threads 1,2] [--sizes small,medium,large] [--json FILE]
                [--no-peers] [--table] [--memory] [--scaling] [--busy] [--compile]
                [--data-parallel] [--rnn]

The main table times the tanh-MLP + softmax-cross-entropy + SGD train step and its
inference at three sizes, matmuls at the MLP's shapes (with the backward pass's
transposed operands), the fused layer tanh(x@W+b), elementwise exp/tanh, and the
cost of one call, each against the same computation written in NumPy. Every propc
result is checked against NumPy's before it is timed; a mismatch prints FAIL.

Each thread count runs in its own worker process (`python -m propc.bench --worker`),
because NumPy's BLAS reads its thread count from the environment once, at import;
a worker for fewer threads than there are cores is also pinned to that many cores.
`--memory`, `--scaling`, `--busy`, `--compile` and `--data-parallel` print their tables
instead of the main one (add `--table` to get both); `--compile` is
propc/bench/compile.py, `--data-parallel` propc/bench/distributed.py. `--busy` times
the train step at each thread count while another process keeps the last core busy:
using that core as well must not make the step slower than one thread on a free core.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys

from ..usage import OneLineParser, UsageError, positive_integers
from .common import FULL_TIMING, QUICK_TIMING, SIZES, MLPSize, Row, apply_peaks
from .environment import THREAD_VARIABLES, pin_to_cores, worker_environment


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="propc bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="tiny repeat counts, small size and kernel rows only (seconds)")
    p.add_argument("--threads", default=None,
                   help="comma-separated thread counts (default 1,2; --quick: 1)")
    p.add_argument("--sizes", default=None,
                   help="comma-separated MLP sizes from small,medium,large "
                        "(default all; --quick: small)")
    p.add_argument("--json", metavar="FILE", help="also write the raw rows as JSON")
    p.add_argument("--no-peers", action="store_true", help="no JAX/PyTorch rows")
    p.add_argument("--table", action="store_true",
                   help="the main table (the default when --memory/--scaling are absent)")
    p.add_argument("--memory", action="store_true",
                   help="inference vs training memory of the MLP per size")
    p.add_argument("--scaling", action="store_true",
                   help="train-step time as batch and width grow, next to predicted FLOPs")
    p.add_argument("--busy", action="store_true",
                   help="train-step time at each thread count next to a process that "
                        "keeps the last core busy")
    p.add_argument("--compile", action="store_true",
                   help="compile time per stage, cold and warm, of the MLP and unrolled "
                        "RNN train steps")
    p.add_argument("--data-parallel", action="store_true",
                   help="the large MLP step on 1 rank x all cores vs 2 MPI ranks, compute vs "
                        "allreduce, and an allreduce estimate for N hosts (needs propc[mpi])")
    p.add_argument("--hosts", default="2,4,8,16", help="--data-parallel: host counts to estimate")
    p.add_argument("--link-gbps", type=float, default=10.0,
                   help="--data-parallel: link bandwidth of the estimate, Gbit/s (default 10)")
    p.add_argument("--link-latency-us", type=float, default=20.0,
                   help="--data-parallel: latency per message of the estimate (default 20 µs)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--rnn", action="store_true",
                   help="the tanh RNN train step at T = 16, 64, 256: propc scan, propc "
                        "unrolled, NumPy BPTT, JAX lax.scan (when importable)")
    p.add_argument("--part", choices=["table", "scaling", "busy", "rnn"], default="table",
                   help=argparse.SUPPRESS)
    return p


def parse_threads(text: str | None, quick: bool) -> list[int]:
    if text is None:
        return [1] if quick else [1, 2]
    return positive_integers(text, "--threads", "1,2")


def parse_sizes(text: str | None, quick: bool) -> list[MLPSize]:
    if text is None:
        return [SIZES["small"]] if quick else list(SIZES.values())
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in SIZES]
    if not names or unknown:
        raise UsageError(f"--sizes {text!r}: choose from {', '.join(SIZES)}")
    return [SIZES[name] for name in names]


# -- the worker side ------------------------------------------------------------------


def worker_main(options: argparse.Namespace) -> int:
    """Measure at this process's thread count and print BENCHROW lines."""
    from .worker import run_table
    timing = QUICK_TIMING if options.quick else FULL_TIMING
    threads = parse_threads(options.threads, options.quick)[0]
    sizes = parse_sizes(options.sizes, options.quick)
    if options.part == "scaling":
        from .extra import run_scaling
        run_scaling(threads, timing, options.quick)
        return 0
    if options.part == "busy":
        from .extra import run_busy
        run_busy(sizes, threads, timing)
        return 0
    if options.part == "rnn":
        from .rnn import run_rnn
        run_rnn(threads, timing, options.quick)
        return 0
    run_table(sizes, threads, timing, peers=not options.no_peers, cnn=cnn_sizes(options.quick))
    return 0


def cnn_sizes(quick: bool) -> tuple[str, ...]:
    """The CNN rows (propc/bench/cnn.py): small only with --quick."""
    return ("small",) if quick else ("small", "medium")


# -- the parent side ------------------------------------------------------------------


def run_worker(threads: int, options: argparse.Namespace, part: str) -> list[Row]:
    """Run one worker process at `threads` and collect its rows. A worker that dies
    (a crash in generated code, say) is reported on stderr; its rows so far are kept
    and a FAIL row names the death, so the table still prints and the exit status is 1."""
    from .worker import ROW_PREFIX
    command = [sys.executable, "-m", "propc.bench", "--worker", "--part", part,
               "--threads", str(threads)]
    if options.sizes:
        command += ["--sizes", options.sizes]
    if options.quick:
        command.append("--quick")
    if options.no_peers:
        command.append("--no-peers")
    env, pin = worker_environment(threads), pin_to_cores(threads)
    if part == "busy":
        # not pinned: at 1 thread as at 2 the scheduler may put the calling thread on
        # the busy core. NumPy's BLAS stays on 1 thread: its own threads, timed in
        # turns with propc, would move the calling thread there (and the NumPy column
        # is then the same reference in every row)
        pin = None
        env.update({name: "1" for name in THREAD_VARIABLES if name != "PROPC_NUM_THREADS"})
    done = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True, preexec_fn=pin)
    rows = [Row.from_dict(json.loads(line[len(ROW_PREFIX):]))
            for line in done.stdout.splitlines() if line.startswith(ROW_PREFIX)]
    if done.returncode != 0:
        message = (f"the {threads}-thread worker exited with status {done.returncode} "
                   f"after {len(rows)} rows")
        print(f"propc bench: {message} (its error is printed above)", file=sys.stderr)
        section = "scaling" if part == "scaling" else "mlp"
        rows.append(Row(section, f"worker ({threads} threads)", "propc", threads,
                        check=f"FAIL {message}"))
    return rows


def run_sections(options: argparse.Namespace) -> tuple[str, list[dict], bool]:
    """Run the chosen sections: (printed text, raw rows for --json, all ok)."""
    from .report import failures, format_report
    threads = parse_threads(options.threads, options.quick)
    sizes = parse_sizes(options.sizes, options.quick)
    texts, raw, ok = [], [], True
    if options.table or not (options.memory or options.scaling or options.busy or options.rnn
                             or options.compile or options.data_parallel):
        print(f"propc bench: running at {', '.join(map(str, threads))} thread(s)...",
              file=sys.stderr, flush=True)
        rows = [row for count in threads for row in run_worker(count, options, "table")]
        apply_peaks(rows)
        from .cnn import residual_lines
        texts.append(format_report(rows) + "\n".join(residual_lines(
            list(cnn_sizes(options.quick)))) + "\n")
        raw += [row.to_dict() for row in rows]
        ok = ok and not failures(rows)
    if options.memory:
        from .extra import format_memory, memory_rows
        rows = memory_rows(sizes)
        texts.append(format_memory(rows) + "\n")
        raw += rows
        ok = ok and not any("error" in row for row in rows)
    if options.scaling:
        from .extra import format_scaling
        rows = [row for count in threads for row in run_worker(count, options, "scaling")]
        texts.append(format_scaling([row for row in rows if row.section == "scaling"]) + "\n")
        raw += [row.to_dict() for row in rows]
        ok = ok and not failures(rows)
    if options.busy:
        from .extra import format_busy
        with busy_last_core() as core:
            rows = [row for count in threads for row in run_worker(count, options, "busy")]
        texts.append(format_busy([row for row in rows if row.section == "busy"], core) + "\n")
        raw += [row.to_dict() for row in rows]
        ok = ok and not failures(rows)
    if options.compile:
        from .compile import CASES, format_compile, run_compile_bench
        rows = run_compile_bench(CASES[:2] if options.quick else CASES)
        texts.append(format_compile(rows) + "\n")
        raw += rows
    if options.data_parallel:
        from .distributed import parse_hosts, run_section
        text, rows, fine = run_section("medium" if options.quick else "large",
                                       3 if options.quick else 30, parse_hosts(options.hosts),
                                       options.link_gbps, options.link_latency_us)
        texts.append(text)
        raw += rows
        ok = ok and fine
    if options.rnn:
        from .rnn import format_rnn
        rows = [row for count in threads for row in run_worker(count, options, "rnn")]
        texts.append(format_rnn([row for row in rows if row.section == "rnn"]) + "\n")
        raw += [row.to_dict() for row in rows]
        ok = ok and not failures(rows)
    return "\n".join(texts), raw, ok


@contextlib.contextmanager
def busy_last_core():
    """A process spinning on the last core this process may use, for the `with`
    block; yields that core (None, and no process, when there is only one)."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cores) < 2:
        yield None
        return
    core = cores[-1]
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"],
                           preexec_fn=lambda: os.sched_setaffinity(0, {core}))
    try:
        yield core
    finally:
        hog.kill()
        hog.wait()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        options = build_parser().parse_args(argv)
        if options.worker:
            return worker_main(options)
        text, raw, ok = run_sections(options)
    except UsageError as err:
        print(f"propc bench: {err}", file=sys.stderr)
        return 2
    print(text, end="")
    if options.json:
        with open(options.json, "w") as handle:
            json.dump(raw, handle, indent=1)
    return 0 if ok else 1

