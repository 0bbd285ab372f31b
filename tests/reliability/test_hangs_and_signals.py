"""Hangs and lost signals found by the adversarial experiments of issue 22, each run
in a subprocess with a timeout (a hang must fail the test, not stall the suite).
Every test failed (timed out or lost its interrupt) before its fix."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_script(source: str, timeout: float = 60) -> str:
    """Run `source` in a fresh Python (repo on sys.path); its stdout. A timeout or a
    non-zero exit fails the test with the script's output."""
    environment = dict(os.environ, PYTHONPATH=ROOT)
    try:
        done = subprocess.run([sys.executable, "-c", textwrap.dedent(source)], cwd=ROOT,
                              env=environment, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"the script hung (killed after {timeout} s); output so far:\n"
                    f"{err.stdout}\n{err.stderr}")
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_regression_compiled_function_calling_itself_on_a_new_shape_hung():
    """The trace of `f` called `f` on a concrete array of a smaller shape: the inner
    call waited forever on the lock the outer trace held."""
    out = run_script("""
        import numpy as np, propc as pc
        def body(a):
            rest = f(np.ones((a.shape[0] - 1, 4), np.float32)).sum() if a.shape[0] > 1 else 0.0
            return a * 2.0 + rest
        f = pc.compile(body)
        print(float(f(np.ones((3, 4), np.float32))[0, 0]))
    """)
    # independently: f(1 row) = 2; f(2 rows) = 2 + 4*2 = 10; f(3 rows) = 2 + 8*10 = 82
    assert out.split() == ["82.0"]


def test_regression_two_compiled_functions_calling_each_other_from_two_threads_deadlocked():
    """Thread 1 traced f (holding f's lock) and called g; thread 2 traced g (holding
    g's lock) and called f: each waited for the other's lock."""
    out = run_script("""
        import threading, time
        import numpy as np, propc as pc
        both = threading.Barrier(2)
        def smaller(a, other):
            if a.shape[0] == 1:
                return 0.0
            time.sleep(0.3)  # both threads are inside their first trace now
            return other(np.ones((a.shape[0] - 1, 2), np.float32)).sum()
        f = pc.compile(lambda a: a + smaller(a, g))
        g = pc.compile(lambda a: a * 2.0 + smaller(a, f))
        results = {}
        def run(name, fn):
            both.wait()
            results[name] = float(fn(np.ones((3, 2), np.float32))[0, 0])
        threads = [threading.Thread(target=run, args=("f", f)),
                   threading.Thread(target=run, args=("g", g))]
        for t in threads: t.start()
        for t in threads: t.join()
        print(results["f"], results["g"])
    """)
    # f1 = 1, g1 = 2; f2 = 1 + 2*g1 = 5, g2 = 2 + 2*f1 = 4; f3 = 1 + 4*g2 = 17,
    # g3 = 2 + 4*f2 = 22
    assert out.split() == ["17.0", "22.0"]


def test_regression_fork_while_another_thread_compiles_hung_the_child():
    """os.fork() while a thread was inside llvmlite: the child inherited llvmlite's
    global lock (and propc's compile lock) held by a thread that does not exist
    there, and its first compile, even a cache hit, waited forever."""
    out = run_script("""
        import os, sys, threading, time
        import numpy as np, propc as pc
        x = np.ones((4, 3), np.float32)
        pc.compile(lambda a: a * 3.0)(x)  # the child's compile is a cache hit
        stop = threading.Event()
        def compile_forever():
            scale = 1.0
            while not stop.is_set():
                scale += 1.0  # a new constant: a new graph, a full LLVM compile
                pc.compile(lambda a: pc.tanh(a * scale) @ a.T)(x)
        worker = threading.Thread(target=compile_forever)
        worker.start()
        hung = 0
        for trial in range(6):
            time.sleep(0.05 + 0.03 * trial)
            pid = os.fork()
            if pid == 0:
                value = pc.compile(lambda a: a * 3.0)(x)[0, 0]
                os._exit(0 if value == 3.0 else 3)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    assert os.waitstatus_to_exitcode(status) == 0, status
                    break
                time.sleep(0.02)
            else:
                hung += 1
                os.kill(pid, 9)
                os.waitpid(pid, 0)
        stop.set()
        worker.join()
        print("hung", hung)
    """, timeout=240)
    assert out.split() == ["hung", "0"]


def test_regression_ctrl_c_while_llvm_called_back_into_python_was_lost():
    """A SIGINT landing while MCJIT ran propc's object-cache callback raised
    KeyboardInterrupt inside the callback: ctypes printed "Exception ignored" and
    the compile carried on (or, for a cache load, crashed). The interrupt is sent
    from inside each callback here (a fresh compile's, then a cache load's), so it
    always lands there."""
    out = run_script("""
        import os, signal
        import numpy as np, propc as pc
        from llvmlite.binding.executionengine import ExecutionEngine
        set_object_cache = ExecutionEngine.set_object_cache
        armed = [True]
        def interrupting(hook):
            def call(*args):
                if armed[0]:
                    os.kill(os.getpid(), signal.SIGINT)
                return hook(*args)
            return call if hook is not None else None
        ExecutionEngine.set_object_cache = lambda self, notify=None, getbuffer=None: \\
            set_object_cache(self, interrupting(notify), interrupting(getbuffer))
        x = np.ones((2, 2), np.float32)
        fn = lambda a: a * 4.0 + 1.0
        results = []
        for armed[0] in (True, False, True, False):  # fresh, fresh, cache hit, cache hit
            try:
                results.append(str(pc.compile(fn)(x)[0, 0]))
            except KeyboardInterrupt:
                results.append("interrupted")
        print(*results)
    """)
    assert out.split() == ["interrupted", "5.0", "interrupted", "5.0"]
