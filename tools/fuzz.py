"""The long fuzz run: `python tools/fuzz.py --examples 10000`.

Runs, in order (each can be switched off):
1. the graph fuzzer: N random graphs through verify, print/parse, interpret,
   simplify, compile and compare (tests/fuzz/fuzz_graphs.py);
2. the gradient fuzzer: N random graphs through vjp_graph vs float64 central
   differences, partition and the compiled passes (tests/fuzz/fuzz_grads.py);
3. the parser fuzzer: N mutated graph texts, each a ParseError or a valid graph
   (tests/fuzz/test_parser_fuzz.py);
4. the concurrency workload: 8 threads x 1000 calls on shared compiled functions,
   results checked and RSS growth reported (tests/reliability/concurrency_workload.py).
It prints how many examples each stage ran and, for a failure, hypothesis' shrunk
(minimal) failing case with its graph as IR text. The case being checked is also
written to a file before it runs, so that a hard crash (segfault) leaves it behind.
Compiled code goes to a throwaway cache directory unless PROPC_CACHE_DIR is set.
Exit status: 0 when everything passed, 1 otherwise.
"""
from __future__ import annotations

import argparse
import atexit
import faulthandler
import os
import random
import shutil
import sys
import tempfile
import time
import traceback
from typing import Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for folder in ("", "tests", os.path.join("tests", "ir"), os.path.join("tests", "fuzz"),
               os.path.join("tests", "reliability")):
    sys.path.insert(0, os.path.join(ROOT, folder))

from hypothesis import HealthCheck, given, seed, settings  # noqa: E402

from concurrency_workload import run_workload  # noqa: E402
from fuzz_graphs import FuzzFailure, check_graph, fuzz_cases  # noqa: E402
from fuzz_grads import check_gradients, gradient_cases  # noqa: E402
from test_parser_fuzz import mutated_texts, parse_outcome  # noqa: E402

RSS_SLACK = 64 * 2**20


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=1000,
                        help="examples per fuzzer (graph, gradient, parser)")
    parser.add_argument("--seed", type=int, default=None, help="hypothesis seed (default: random)")
    parser.add_argument("--max-ops", type=int, default=8, help="ops per random graph")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--calls", type=int, default=1000, help="calls per thread")
    for stage in ("graphs", "gradients", "parser", "concurrency"):
        parser.add_argument(f"--no-{stage}", action="store_true", help=f"skip the {stage} stage")
    return parser.parse_args(argv)


class Stage:
    """Runs one hypothesis-driven check N times; counts examples, keeps the failure."""

    def __init__(self, name: str, crash_file: str):
        self.name = name
        self.crash_file = crash_file
        self.examples = 0
        self.checked = 0
        self.failed = False

    def run_case(self, describe: Callable[[], str], check: Callable[[], object]) -> None:
        if not self.failed:
            self.examples += 1
        with open(self.crash_file, "w") as record:
            record.write(f"{self.name} case being checked:\n{describe()}\n")
        try:
            outcome = check()
        except FuzzFailure:
            self.failed = True
            raise
        except Exception as err:  # anything else is a bug too; keep the case's text
            self.failed = True
            raise FuzzFailure(f"{type(err).__name__}: {err}\n{traceback.format_exc()}\n"
                              f"--- case ---\n{describe()}") from None
        if outcome is not False and not self.failed:
            self.checked += 1


def run_stage(stage: Stage, strategy, check: Callable, describe: Callable,
              examples: int, seed_value: int) -> bool:
    """Run `check(case)` on `examples` cases; print the count and any minimal failure."""
    @seed(seed_value)
    @settings(max_examples=examples, deadline=None, database=None, report_multiple_bugs=False,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def fuzz(case):
        stage.run_case(lambda: describe(case), lambda: check(case))

    started = time.perf_counter()
    try:
        fuzz()
    except FuzzFailure as failure:
        print(f"{stage.name}: FAILED after {stage.examples} examples; minimal failing case:")
        print(str(failure))
        return False
    except Exception as err:  # e.g. hypothesis' Flaky: the failure did not reproduce
        print(f"{stage.name}: FAILED after {stage.examples} examples: {type(err).__name__}")
        traceback.print_exc()
        return False
    elapsed = time.perf_counter() - started
    detail = f" ({stage.checked} checked in depth)" if stage.checked != stage.examples else ""
    print(f"{stage.name}: {stage.examples} examples passed{detail} in {elapsed:.0f} s")
    return True


def run_concurrency(threads: int, calls: int) -> bool:
    report = run_workload(threads=threads, calls=calls)
    ok = not report.failures and report.growth < RSS_SLACK
    print(f"concurrency: {report} -> {'ok' if ok else 'FAILED'}")
    for failure in report.failures[:10]:
        print(f"  {failure}")
    return ok


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    seed_value = args.seed if args.seed is not None else random.randrange(2**31)
    crash_file = os.path.join(tempfile.gettempdir(), f"propc-fuzz-{os.getpid()}.txt")
    if "PROPC_CACHE_DIR" not in os.environ:  # thousands of one-off graphs: keep them
        os.environ["PROPC_CACHE_DIR"] = tempfile.mkdtemp(prefix="propc-fuzz-cache-")
        atexit.register(shutil.rmtree, os.environ["PROPC_CACHE_DIR"], ignore_errors=True)
    faulthandler.enable()
    print(f"seed {seed_value}; a hard crash leaves its case in {crash_file}")
    results = []
    if not args.no_graphs:
        results.append(run_stage(
            Stage("graph fuzz", crash_file), fuzz_cases(args.max_ops),
            lambda case: check_graph(*case), lambda case: str(case[0]),
            args.examples, seed_value))
    if not args.no_gradients:
        results.append(run_stage(
            Stage("gradient fuzz", crash_file), gradient_cases(args.max_ops),
            lambda case: check_gradients(*case), lambda case: str(case[0]),
            args.examples, seed_value))
    if not args.no_parser:
        results.append(run_stage(
            Stage("parser fuzz", crash_file), mutated_texts(),
            parse_outcome, lambda text: text, args.examples, seed_value))
    if not args.no_concurrency:
        results.append(run_concurrency(args.threads, args.calls))
    if os.path.exists(crash_file):
        os.remove(crash_file)
    print("all passed" if all(results) else "FAILURES above")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
