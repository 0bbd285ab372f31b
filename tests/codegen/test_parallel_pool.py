"""The thread pool of compiled calls (codegen/parallel_pool.py), driven through the
shared library's `team` and `parallel` with Python callbacks: regions posted to
the pool run every chunk once and reach the worker, the pool is released after
the call, its workers go to sleep between calls, a second thread finds the pool
taken and still runs its regions, and a region the worker slowed down backs off.
Whole graphs on the pool against one thread are in test_parallel.py."""
from __future__ import annotations

import collections
import ctypes
import threading
import time

import pytest

from codegen.threads import host as parallel
from codegen.threads.pool import TEAM, wait_until_asleep
from codegen.threads.region import (ACTIVE, BACKOFF, CONTENDED, HEARTBEAT, OWNER, POOL, SKIP,
                                     SLEEPERS, WORKERS)
from codegen.threads.library import POOL_AWAKE
from shared_library import library_i64, shared_function  # noqa: E402

pytestmark = pytest.mark.skipif(not parallel.pool_available(), reason="needs libgomp and futexes")

ENTRY = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
BODY = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)


def _team():
    return shared_function(TEAM, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)


def _parallel():
    return shared_function(parallel.PARALLEL, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                   ctypes.c_int64)


def _pool_slot(position: int) -> ctypes.c_int64:
    return library_i64(POOL, position)


def _state(name: str) -> ctypes.c_int64:
    return library_i64(name)


@pytest.fixture(autouse=True)
def _no_backoff():
    """Start and end without serial regions pending (other tests may leave some)."""
    _state(SKIP).value, _state(BACKOFF).value = 0, 0
    yield
    _state(SKIP).value, _state(BACKOFF).value = 0, 0


def _wait_for_a_worker() -> None:
    """Inside a call: return once a worker is looking for work (a region posted
    while the workers are still waking up runs on the caller alone)."""
    started = time.monotonic_ns()   # the call itself stamped HEARTBEAT before entry ran
    deadline = time.monotonic() + 5
    while _pool_slot(HEARTBEAT).value <= started:
        assert time.monotonic() < deadline, "no pool worker came"


def _recording_body(seen: list, pause: float = 0.002):
    def body(_data, chunk, chunks):
        seen.append((chunk, chunks, threading.get_ident()))
        time.sleep(pause)     # long enough for the worker to claim chunks too
    return BODY(body)


def test_regions_of_a_call_run_every_chunk_once_on_the_pool():
    team, region = _team(), _parallel()
    seen: list = []
    body = _recording_body(seen)
    owners = []

    def entry(_buffers):
        owners.append(_pool_slot(OWNER).value)
        _wait_for_a_worker()
        for _ in range(5):
            region(ctypes.cast(body, ctypes.c_void_p), None, 2, 8)

    callback = ENTRY(entry)
    caller = threading.get_ident()
    # on a loaded machine the worker may be off its core for a whole call (its
    # regions then run serially, correctly): try again, up to 5 calls
    for _attempt in range(5):
        seen.clear()
        team(ctypes.cast(callback, ctypes.c_void_p), None, 2)
        counts = collections.Counter((chunk, chunks) for chunk, chunks, _ in seen)
        assert counts == {(chunk, 8): 5 for chunk in range(8)}
        if {ident for *_, ident in seen} - {caller}:
            break
        time.sleep(0.1)
    assert {ident for *_, ident in seen} - {caller}, "a pool worker ran chunks"
    assert owners[0] != 0, "the call held the pool"
    assert _pool_slot(OWNER).value == 0 and _pool_slot(ACTIVE).value == 0, "and gave it back"
    assert _pool_slot(WORKERS).value >= 1


def test_regions_run_on_the_caller_while_a_worker_was_lately_preempted():
    """A worker that finds it was off its core stamps CONTENDED (another process
    wants the cores): for a while regions then run on the calling thread alone,
    as they do on one thread, instead of waiting for chunks that run late."""
    team, region = _team(), _parallel()
    seen: list = []
    body = _recording_body(seen, pause=0.001)

    def entry(_buffers):
        _wait_for_a_worker()
        _pool_slot(CONTENDED).value = time.monotonic_ns()
        region(ctypes.cast(body, ctypes.c_void_p), None, 2, 8)

    callback = ENTRY(entry)
    try:
        team(ctypes.cast(callback, ctypes.c_void_p), None, 2)
    finally:
        _pool_slot(CONTENDED).value = 0
    assert sorted(chunk for chunk, *_ in seen) == list(range(8))
    assert {ident for *_, ident in seen} == {threading.get_ident()}


def test_pool_workers_sleep_between_calls():
    """After a call the workers spin briefly, then sleep: nothing of propc runs
    between calls (and at exit, the library waits for exactly this)."""
    team = _team()
    callback = ENTRY(lambda _buffers: _wait_for_a_worker())
    awake = shared_function(POOL_AWAKE, restype=ctypes.c_int64)
    team(ctypes.cast(callback, ctypes.c_void_p), None, 2)
    assert _pool_slot(WORKERS).value >= 1
    assert wait_until_asleep(awake, timeout=5)
    assert _pool_slot(SLEEPERS).value == _pool_slot(WORKERS).value


def test_a_call_that_finds_the_pool_taken_runs_without_it():
    """Two Python threads: the second call runs while the first holds the pool;
    its regions still run every chunk (through libgomp), on its own thread first."""
    team, region = _team(), _parallel()
    holding, release = threading.Event(), threading.Event()
    seen: list = []
    body = _recording_body(seen, pause=0.0)

    def first(_buffers):
        holding.set()
        release.wait(10)

    def second(_buffers):
        assert _pool_slot(OWNER).value != 0
        region(ctypes.cast(body, ctypes.c_void_p), None, 2, 6)

    first_cb, second_cb = ENTRY(first), ENTRY(second)
    holder = threading.Thread(target=team, args=(ctypes.cast(first_cb, ctypes.c_void_p), None, 2))
    holder.start()
    try:
        assert holding.wait(10)
        team(ctypes.cast(second_cb, ctypes.c_void_p), None, 2)
    finally:
        release.set()
        holder.join(10)
    assert sorted(chunk for chunk, *_ in seen) == list(range(6))
    assert _pool_slot(OWNER).value == 0


def test_a_pool_region_the_worker_slowed_down_backs_off():
    """The worker's chunk takes four times the caller's (as when its core is busy
    elsewhere): the region lost, so the next one runs on the calling thread."""
    team, region = _team(), _parallel()
    caller = threading.get_ident()
    seen: list = []

    def body(_data, chunk, chunks):
        seen.append(threading.get_ident())
        time.sleep(0.05 if threading.get_ident() == caller else 0.2)

    body_cb = BODY(body)
    skips = []

    def entry(_buffers):
        _wait_for_a_worker()
        region(ctypes.cast(body_cb, ctypes.c_void_p), None, 2, 2)
        skips.append(_state(SKIP).value)
        first = list(seen)
        seen.clear()
        region(ctypes.cast(body_cb, ctypes.c_void_p), None, 2, 2)
        skips.append((first, list(seen)))

    callback = ENTRY(entry)
    # the worker must take part in the first region for it to lose; on a loaded
    # machine it may be off its core then (the region runs serially): try again
    # after the pool's contention hold (50 ms) has passed
    for _attempt in range(5):
        skips.clear()
        seen.clear()
        team(ctypes.cast(callback, ctypes.c_void_p), None, 2)
        (pending, (first, second)) = skips
        if len(set(first)) == 2:
            break
        time.sleep(0.1)
    assert len(set(first)) == 2, "the worker took a chunk"
    assert pending >= 1
    assert second == [caller, caller]


EXIT_CHILD = """
import numpy as np
import propc as pc
x = np.ones((700, 900), np.float32)
loop = pc.compile(lambda x: pc.tanh(x) * 2 + x)
for _ in range(3):
    loop(x)
print(int(loop.lower(x).llvm_ir.count("propc.shared.team") > 0))
"""


def test_a_process_exits_cleanly_right_after_a_call_on_the_pool(tmp_path):
    """The interpreter frees the library at exit while a worker may still spin
    after the last call: exit waits until the workers sleep."""
    import os
    import subprocess
    import sys
    env = dict(os.environ, PROPC_NUM_THREADS="2", PROPC_CACHE_DIR=str(tmp_path))
    env.pop("PROPC_DEBUG", None)   # a debug build has no threads (the CI debug job sets it)
    for _ in range(3):
        done = subprocess.run([sys.executable, "-c", EXIT_CHILD], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "1", "the loop ran on the pool"
