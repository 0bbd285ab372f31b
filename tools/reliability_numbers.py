"""The measured figures of issue 22 ("Reliability II"), too slow for the test suite:
`python tools/reliability_numbers.py [memory] [leaves]`.

memory: RSS growth per retained signature (one compiled function called on 300
  shapes, every one a fresh compile; bound 150 KiB) and per dropped compile (800
  compiled functions each compiled and called once, then dropped; bound 1 KiB).
  The disk cache is off, so every signature really runs LLVM. Each part runs in a
  fresh process after a warm-up, and RSS is read after gc.collect() and glibc's
  malloc_trim(0), so that memory freed but not yet returned does not count.
leaves: CPU time to compile a function taking and returning a dict of n small
  arrays, for n = 500 and 2,000 (bound: 2,000 within 4x of 500), median of runs,
  each in a fresh process; arrays of one shape (identical kernels, emitted once)
  and of n distinct shapes (n different kernels).
Prints one line per figure and exits 1 when a bound is not met.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_MEMORY = r"""
import gc, json, os, sys
import numpy as np
import propc as pc

try:
    import ctypes
    _trim = ctypes.CDLL("libc.so.6").malloc_trim
except (OSError, AttributeError):
    _trim = lambda pad: 0

def resident():
    gc.collect()
    _trim(0)  # freed memory back to the system: growth is what is still held
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

def body(a):
    return pc.tanh(a * 2.0 + 1.0).sum(axis=0) * a[0]

part, count = sys.argv[1], int(sys.argv[2])
if part == "retained":
    f = pc.compile(body)
    for rows in range(1, 31):  # warm-up: allocator pools reach their working size
        f(np.ones((rows, 3), np.float32))
    gc.collect()
    before = resident()
    for rows in range(31, 31 + count):
        f(np.ones((rows, 3), np.float32))
else:
    x = np.ones((4, 3), np.float32)
    for _ in range(200):  # warm-up: allocator pools reach their working size
        pc.compile(body)(x)
    gc.collect()
    before = resident()
    for _ in range(count):
        pc.compile(body)(x)
gc.collect()
print(json.dumps((resident() - before) / count))
"""

_LEAVES = r"""
import json, sys, time
import numpy as np
import propc as pc
n, distinct = int(sys.argv[1]), sys.argv[2] == "distinct"
arrays = {f"k{i}": np.full(i + 1 if distinct else 3, i, np.float32) for i in range(n)}
fn = pc.compile(lambda d: {k: v * 2.0 + 1.0 for k, v in d.items()})
start = time.process_time()
fn(arrays)
print(json.dumps(time.process_time() - start))
"""


def _run(script: str, *args: object) -> float:
    environment = dict(os.environ, PROPC_CACHE="0", PYTHONPATH=ROOT)
    done = subprocess.run([sys.executable, "-c", script, *map(str, args)], env=environment,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory() -> bool:
    retained = _run(_MEMORY, "retained", 300) / 1024
    dropped = _run(_MEMORY, "dropped", 800) / 1024
    print(f"memory: {retained:.1f} KiB RSS per retained signature over 300 shapes "
          f"(bound 150)")
    print(f"memory: {dropped:.2f} KiB RSS per dropped compile over 800 compiles (bound 1)")
    return retained <= 150 and dropped <= 1


def leaves(runs: int) -> bool:
    met = True
    for shapes in ("same", "distinct"):
        times = {n: statistics.median(_run(_LEAVES, n, shapes) for _ in range(runs))
                 for n in (500, 2000)}
        ratio = times[2000] / times[500]
        print(f"leaves ({shapes} shapes): compile CPU time 500 leaves {times[500]:.2f} s, "
              f"2,000 leaves {times[2000]:.2f} s: {ratio:.2f}x (bound 4x; median of {runs})")
        met = met and ratio <= 4
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", choices=["memory", "leaves"],
                        default=["memory", "leaves"])
    parser.add_argument("--runs", type=int, default=3, help="runs per leaves figure")
    options = parser.parse_args()
    met = [memory() if part == "memory" else leaves(options.runs) for part in options.parts]
    return 0 if all(met) else 1


if __name__ == "__main__":
    sys.exit(main())
