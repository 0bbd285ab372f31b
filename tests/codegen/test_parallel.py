"""Threads (codegen/parallel.py, codegen/matmul_parallel.py): the thread setting, the
shared library's parallel region, the threaded sgemm against the one-thread sgemm
(bit for bit: every element is summed in the same order), and whole compiled
graphs with PROPC_NUM_THREADS=1 vs 2 in fresh processes.
"""
from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import subprocess
import sys
import textwrap
import threading

import llvmlite.ir as lir
import numpy as np
import pytest

from codegen.threads import host as parallel
from codegen.runtime import executable as runtime
from codegen.emit.lowering import lower_graph
from codegen.options import from_environment
from ir import Builder, DType, TensorType
from codegen.kernels.matmul import sgemm_scratch_bytes
from codegen.threads.region import BACKOFF, SKIP
from codegen.threads.library import THREADED
from shared_library import library_i64, shared_function  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BODY = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)
EPILOGUE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                            ctypes.c_int64, ctypes.c_int64)
_SGEMM = [ctypes.c_int64] * 3 + [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64] * 2 + [
    ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32, ctypes.c_void_p,
    ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64]


@pytest.fixture(autouse=True)
def _normal_build(monkeypatch):
    """These tests check what the normal build does; debug mode (PROPC_DEBUG=1, the CI
    debug job) compiles unfused, single-threaded, bounds-checked code instead."""
    monkeypatch.delenv("PROPC_DEBUG", raising=False)


def shared(symbol: str, argtypes: list):
    return shared_function(symbol, *argtypes)


# -- the thread setting ---------------------------------------------------------------


@pytest.mark.parametrize("environment,spins", [
    ({}, False), ({"OMP_WAIT_POLICY": "active"}, True), ({"OMP_WAIT_POLICY": "PASSIVE"}, False),
    ({"GOMP_SPINCOUNT": "10000"}, True), ({"GOMP_SPINCOUNT": "0"}, False),
    ({"GOMP_SPINCOUNT": "infinite"}, True),
    ({"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "10000"}, False)])
def test_spinning_follows_the_wait_policy_the_user_set(monkeypatch, environment, spins):
    for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert from_environment().spinning is spins


def test_cheap_regions_take_smaller_products_and_loops(monkeypatch):
    """A 17 MFLOP product (a 256x256 layer at batch 128) and a 131k-element tanh get
    threads only when a region is cheap: the call holds the thread pool, or libgomp's
    idle threads spin. Both choices are part of the cache key, and only a call with
    regions on the pool goes through propc.shared.team."""
    if not parallel.load_gomp():
        pytest.skip("needs libgomp")
    b = Builder("layer")
    x = b.input(TensorType((128, 256), DType.f32))
    w = b.input(TensorType((256, 256), DType.f32))
    b.output(b.dot(x, w, lhs_batch=(), rhs_batch=(), lhs_contract=(1,), rhs_contract=(0,)))
    b.output(b.tanh(b.input(TensorType((256, 512), DType.f32))))
    graph = b.build()
    monkeypatch.setenv("PROPC_NUM_THREADS", "2")
    pool_here = parallel.pool_available()
    threaded = {}
    for pool in (False, True):
        for spins in (False, True):
            monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE" if spins else "PASSIVE")
            chosen = dataclasses.replace(from_environment(), pool=pool)
            options = runtime.compile_options(None, chosen)
            assert options["spinning"] is spins and options["pool"] is (pool and pool_here)
            module = lir.Module()
            lower_graph(graph, module, "layer", threads=parallel.thread_plan(chosen),
                        options=chosen)
            text = str(module)
            threaded[pool, spins] = (text.count('call void @"propc.shared.sgemm_parallel"'),
                                     text.count('call void @"propc.shared.parallel"'),
                                     text.count('call void @"propc.shared.team"'))
    assert threaded[False, False] == (0, 0, 0)
    assert threaded[False, True][:2] >= (1, 1) and threaded[False, True][2] == 0
    if pool_here:
        assert threaded[True, False][:2] >= (1, 1) and threaded[True, False][2] == 1


@pytest.mark.parametrize("text,expected", [("3", 3), ("1", 1), (" 2 ", 2)])
def test_thread_count_follows_the_environment(monkeypatch, text, expected):
    monkeypatch.setenv("PROPC_NUM_THREADS", text)
    assert parallel.requested_threads(from_environment()) == expected
    if parallel.load_gomp():
        assert parallel.thread_count(from_environment()) == expected


@pytest.mark.parametrize("text", ["", "0", "-2", "many", "1.5"])
def test_unusable_thread_setting_means_every_available_core(monkeypatch, text):
    monkeypatch.setenv("PROPC_NUM_THREADS", text)
    assert parallel.requested_threads(from_environment()) == len(os.sched_getaffinity(0))


def test_without_libgomp_everything_runs_on_one_thread(monkeypatch):
    monkeypatch.setenv("PROPC_NUM_THREADS", "4")
    monkeypatch.setattr(parallel, "load_gomp", lambda: False)
    assert parallel.thread_count(from_environment()) == 1


# -- the parallel region --------------------------------------------------------------


@pytest.mark.parametrize("threads,chunks", [(1, 1), (1, 5), (2, 2), (2, 9), (3, 2), (3, 7)])
def test_parallel_region_runs_every_chunk_once(threads, chunks):
    run = shared(parallel.PARALLEL, [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                     ctypes.c_int64])
    seen, lock = [], threading.Lock()

    def body(data, chunk, count):
        with lock:
            seen.append((data, chunk, count, threading.get_ident()))

    callback = BODY(body)
    run(ctypes.cast(callback, ctypes.c_void_p), 777, threads, chunks)
    assert sorted(chunk for _, chunk, _, _ in seen) == list(range(chunks))
    assert {(data, count) for data, _, count, _ in seen} == {(777, chunks)}
    team = min(threads, chunks) if parallel.load_gomp() else 1
    assert len({ident for *_, ident in seen}) <= team
    if team == 1:
        assert {ident for *_, ident in seen} == {threading.get_ident()}


def _library_state(name: str) -> ctypes.c_int64:
    return library_i64(name)


@pytest.mark.skipif(not parallel.load_gomp(), reason="needs libgomp")
def test_region_slower_than_one_thread_makes_the_next_ones_serial():
    """A worker far slower than the caller (as when its core is busy elsewhere):
    the region took longer than the caller alone would have, so the next region
    runs on the calling thread only."""
    import time
    run = shared(parallel.PARALLEL, [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                     ctypes.c_int64])
    skip, backoff = _library_state(SKIP), _library_state(BACKOFF)
    caller = threading.get_ident()
    seen = []

    def body(data, chunk, count):
        seen.append(threading.get_ident())
        time.sleep(0.1 if threading.get_ident() == caller else 0.4)

    callback = BODY(body)
    skip.value, backoff.value = 0, 0
    run(ctypes.cast(callback, ctypes.c_void_p), None, 2, 2)
    assert len(set(seen)) == 2, "the worker took a chunk"
    assert skip.value >= 1 and backoff.value >= 1
    seen.clear()
    pending = skip.value
    run(ctypes.cast(callback, ctypes.c_void_p), None, 2, 2)
    assert seen == [caller, caller]
    assert skip.value == pending - 1
    skip.value, backoff.value = 0, 0


def test_split_range_covers_the_range_once():
    """split_range through the library's threaded sgemm is covered below; here the
    arithmetic itself, emitted into a tiny function."""
    import llvmlite.ir as lir
    from codegen.runtime.jit import JitModule
    module = lir.Module("split")
    i64 = lir.IntType(64)
    fn = lir.Function(module, lir.FunctionType(lir.VoidType(), [i64] * 4 + [lir.PointerType()]),
                      "split")
    builder = lir.IRBuilder(fn.append_basic_block())
    start, stop = parallel.split_range(builder, fn.args[0], fn.args[1], fn.args[2], 4)
    out = fn.args[4]
    builder.store(start, out)
    builder.store(stop, builder.gep(out, [lir.Constant(i64, 1)], source_etype=i64))
    builder.ret_void()
    jit = JitModule(module)
    split = ctypes.CFUNCTYPE(None, *[ctypes.c_int64] * 4, ctypes.c_void_p)(jit.address("split"))
    for total in [0, 1, 3, 4, 5, 17, 64, 1001]:
        for threads in [1, 2, 3, 5]:
            covered = np.zeros(total, np.int64)
            for thread in range(threads):
                result = np.zeros(2, np.int64)
                split(total, thread, threads, 0, result.ctypes.data)
                low, high = result
                assert 0 <= low <= high <= total
                assert low % 4 == 0 or low == total
                covered[low:high] += 1
            assert (covered == 1).all(), (total, threads)


# -- the threaded sgemm ---------------------------------------------------------------


def run_threaded(a, b, threads: int, origin=(0, 0)):
    """C = a @ b through propc.shared.sgemm_parallel; returns C and the epilogue's
    visit counts per element."""
    (m, k), n = a.shape, b.shape[1]
    sgemm = shared(THREADED, [ctypes.c_int64, ctypes.c_int64] + _SGEMM)
    stride = -(-sgemm_scratch_bytes(m, n, k) // 64) * 64
    raw = np.zeros(stride * max(threads, 1) + 64, np.uint8)
    scratch = raw.ctypes.data + (-raw.ctypes.data) % 64
    c = np.full((m, n), np.nan, np.float32)
    visits = np.zeros((m, n), np.int64)
    lock = threading.Lock()

    def epilogue(_context, row, col, rows, cols):
        top, left = row - origin[0], col - origin[1]
        with lock:
            visits[top:top + rows, left:left + cols] += 1

    callback = EPILOGUE(epilogue)
    if parallel.load_gomp():
        _library_state(SKIP).value = 0      # no backoff left over: really use threads
    sgemm(threads, stride, m, n, k, a.ctypes.data, a.strides[0] // 4, a.strides[1] // 4,
          b.ctypes.data, b.strides[0] // 4, b.strides[1] // 4, c.ctypes.data, n, 0, scratch,
          ctypes.cast(callback, ctypes.c_void_p), None, *origin)
    return c, visits


@pytest.mark.parametrize("m,k,n", [(128, 784, 256), (784, 128, 256), (256, 128, 10),
                                   (33, 70, 50), (5, 9, 3), (1, 40, 700), (700, 40, 1),
                                   (0, 5, 5), (6, 0, 40)])
@pytest.mark.parametrize("threads", [2, 3])
def test_threaded_sgemm_equals_one_thread_bit_for_bit(m, k, n, threads):
    rng = np.random.default_rng(m + 3 * k + 7 * n)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((n, k)).astype(np.float32).T      # read transposed
    single, single_visits = run_threaded(a, b, 1, (3, 4))
    many, visits = run_threaded(a, b, threads, (3, 4))
    assert np.array_equal(single.view(np.uint32), many.view(np.uint32))
    assert (visits == 1).all() and (single_visits == 1).all()
    exact = a.astype(np.float64) @ b.astype(np.float64)
    bound = 2 * max(k, 1) * 2.0 ** -24 * (np.abs(a).astype(np.float64) @ np.abs(b)) + 1e-30
    assert (np.abs(many - exact) <= bound).all()


# -- whole graphs, 1 vs 2 threads, in fresh processes ---------------------------------


CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    import propc as pc
    from propc.bench.cases import mlp_train_step, mlp_predict
    from propc.bench.common import MLPSize, random_inputs

    size = MLPSize("t", 128, (500, 300, 130, 10))      # products >= THREADED_MIN_FLOPS
    params, x, labels = random_inputs(size)
    (new_params, loss) = pc.compile(mlp_train_step)(params, x, labels)
    logits = pc.compile(mlp_predict)(params, x)
    big = np.random.default_rng(1).standard_normal((601, 717)).astype(np.float32)
    loops = pc.compile(lambda a: (pc.tanh(a) * 2 + a, pc.exp(a).sum(axis=1), a.max(axis=1)))
    flat = ([a for layer in new_params for a in layer] + [np.asarray(loss), logits]
            + list(loops(big)))
    np.savez(sys.argv[1], *flat)
    lowered = pc.compile(mlp_train_step).lower(params, x, labels)
    loop_ir = loops.lower(big).llvm_ir
    print(json.dumps({"threaded": "sgemm_parallel" in lowered.llvm_ir,
                      "loops": loop_ir.count("propc.shared.parallel")}))
""")


def test_graphs_with_two_threads_equal_one_thread(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    results = {}
    for threads in ("1", "2"):
        env = dict(os.environ, PROPC_NUM_THREADS=threads, PROPC_CACHE_DIR=str(tmp_path / "c"))
        out = tmp_path / f"out{threads}.npz"
        done = subprocess.run([sys.executable, str(script), str(out)], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        info = json.loads(done.stdout.strip().splitlines()[-1])
        threaded = threads == "2" and parallel.load_gomp()
        assert info["threaded"] == threaded
        assert (info["loops"] >= 3) == threaded      # a call per parallel loop, a declaration
        with np.load(out) as saved:
            results[threads] = [saved[key] for key in sorted(saved.files,
                                                             key=lambda k: int(k[4:]))]
    for one, two in zip(results["1"], results["2"]):
        assert one.shape == two.shape and np.array_equal(one, two)


FORK_CHILD = textwrap.dedent("""
    import os, sys
    import numpy as np
    import propc as pc

    x = np.random.default_rng(0).standard_normal((700, 900)).astype(np.float32)
    loop = pc.compile(lambda x: pc.tanh(x) * 2 + x)
    product = pc.compile(lambda a, b: a @ b.T)
    before = [loop(x), product(x, x)]          # the parent has started libgomp's threads
    pid = os.fork()
    if pid == 0:
        after = [loop(x), product(x, x)]
        same = all(np.array_equal(a, b) for a, b in zip(before, after))
        os._exit(0 if same else 3)
    _, status = os.waitpid(pid, 0)
    print("child", os.waitstatus_to_exitcode(status))
""")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_runs_threaded_code_serially(tmp_path):
    """libgomp's pool does not survive fork(): the child must not hang in a region."""
    script = tmp_path / "fork_child.py"
    script.write_text(FORK_CHILD)
    env = dict(os.environ, PROPC_NUM_THREADS="2", PROPC_CACHE_DIR=str(tmp_path / "c"))
    done = subprocess.run([sys.executable, str(script)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "child 0"
