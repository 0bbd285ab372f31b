"""Regression tests for the defects of issue 22 ("Reliability II") that need no
subprocess; each is named after its bug and failed before its fix. The hangs and
signals are in test_hangs_and_signals.py."""
from __future__ import annotations

import numpy as np
import pytest

import propc as pc


def test_regression_compiled_function_calling_itself_on_its_own_signature_recursed_forever():
    """True recursion (same signature, no base case) now stops with an error naming
    it instead of hanging or exhausting Python's stack."""
    f = pc.compile(lambda a: a * 2.0 + f(a).sum())
    with pytest.raises(pc.TraceError, match="calls itself on the signature"):
        f(np.ones((3, 4), np.float32))


def _euler(x, steps: int = 200):
    """Euler steps of dx/dt = x*x/10: 600 dependent elementwise ops. (The issue's
    `x + 0.001*sin(x)` chain fails the same way, but LLVM takes ~20 s over 300
    inlined sines.)"""
    for _ in range(steps):
        x = x + 0.01 * x * x
    return x


def test_regression_long_elementwise_chain_overflowed_the_recursive_expression_expansion():
    """Hundreds of dependent elementwise ops fuse into one kernel whose expression tree was
    expanded (and emitted) recursively: RecursionError. Compiled vs interpreted,
    forward and gradient."""
    x = np.linspace(-1.0, 1.0, 16, dtype=np.float32)
    np.testing.assert_allclose(pc.compile(_euler)(x), pc.interpret(_euler)(x),
                               rtol=1e-6, atol=1e-6)
    grad = pc.grad(lambda x: _euler(x).sum())
    np.testing.assert_allclose(pc.compile(grad)(x), pc.interpret(grad)(x), rtol=1e-5)


def test_regression_output_nested_300_deep_broke_the_generated_caller():
    """An output pytree nested more than ~200 deep compiled, but every call raised
    `SyntaxError: too many nested parentheses` from the generated caller."""
    def nest(a):
        out = a * 2.0
        for depth in range(300):
            out = [out] if depth % 2 else (out, a + 1.0)
        return out

    f = pc.compile(nest)
    a = np.arange(3, dtype=np.float32)
    for _ in range(2):  # the first call traces; the second takes the generated caller
        out = f(a)
        for depth in reversed(range(300)):
            if depth % 2:
                assert type(out) is list and len(out) == 1
                out = out[0]
            else:
                assert type(out) is tuple and len(out) == 2
                np.testing.assert_array_equal(out[1], a + 1.0)
                out = out[0]
        np.testing.assert_array_equal(out, a * 2.0)


def test_regression_compiled_helper_reading_an_outer_tracer_from_a_global_broke_for_good():
    """A compiled helper first called on a NumPy array inside another function's
    trace, reading that trace's Tensor from a global, was cached with the Tensor as a
    second graph input: `@lambda takes 2 input arrays, got 1` there and on every
    later call of that signature, even outside any trace."""
    shift = {"value": None}
    helper = pc.compile(lambda a: a + shift["value"])

    def outer(x):
        shift["value"] = x * 10.0
        return helper(np.ones(3, np.float32))

    x = np.arange(3, dtype=np.float32)
    np.testing.assert_array_equal(pc.compile(outer)(x), 1.0 + x * 10.0)
    shift["value"] = np.full(3, 5.0, np.float32)
    np.testing.assert_array_equal(helper(np.ones(3, np.float32)), np.full(3, 6.0))


def test_regression_valid_cache_entry_under_another_keys_file_name_ran_the_wrong_code(
        tmp_path, monkeypatch):
    """The checksum covered an entry's body, not its key: the entry of `a + 3`
    copied over the file of `a - 3` was loaded and `a - 3` returned `a + 3`."""
    import shutil

    from codegen.runtime import cache
    monkeypatch.setenv("PROPC_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("PROPC_CACHE", raising=False)
    a = np.arange(4, dtype=np.float32)
    np.testing.assert_array_equal(pc.compile(lambda a: a + 3.0)(a), a + 3.0)
    minus_three = lambda a: a - 3.0  # noqa: E731 (one source line: one cache key)
    np.testing.assert_array_equal(pc.compile(minus_three)(a), a - 3.0)
    plus, minus = sorted((tmp_path / cache.FORMAT).glob("*" + cache.SUFFIX),
                         key=lambda path: path.stat().st_mtime_ns)
    shutil.copyfile(plus, minus)
    rejected = cache.stats.rejected
    np.testing.assert_array_equal(pc.compile(minus_three)(a), a - 3.0)
    assert cache.stats.rejected == rejected + 1


def test_regression_vjp_of_a_compiled_function_retraced_and_rejitted_on_every_call():
    """pc.vjp(compiled, x) traced, differentiated and compiled both passes again on
    every call (~7 ms with a warm disk cache, ~100 ms without). Now once per
    signature; results checked against the interpreter's vjp."""
    def body(x, y):
        return {"s": (pc.tanh(x) * y).sum(), "v": x * y}

    traces = []

    def counted(x, y):
        traces.append(x.shape)
        return body(x, y)

    compiled = pc.compile(counted)
    for rows in (3, 3, 3, 2, 2, 3):
        x = np.linspace(-1, 2, rows * 2, dtype=np.float32).reshape(rows, 2)
        y = np.full((rows, 2), 0.5, np.float32)
        cotangent = {"s": np.float32(2.0), "v": np.ones((rows, 2), np.float32)}
        out, pullback = pc.vjp(compiled, x, y)
        want_out, want_pullback = pc.vjp(body, x, y)
        np.testing.assert_allclose(out["s"], want_out["s"], rtol=1e-5)
        np.testing.assert_allclose(out["v"], want_out["v"], rtol=1e-6)
        for got, want in zip(pullback(cotangent), want_pullback(cotangent)):
            np.testing.assert_allclose(got, want, rtol=1e-5)
    assert traces == [(3, 2), (2, 2)]


def _leaf_dict_function(leaves: int):
    """A function of a dict of `leaves` arrays of distinct shapes (identical kernels
    would be emitted once: codegen/kernel_dedupe.py)."""
    arrays = {f"k{i}": np.full(i + 1, i, np.float32) for i in range(leaves)}
    return pc.compile(lambda d: {k: v * 2.0 + 1.0 for k, v in d.items()}), arrays


def _compile_seconds(leaves: int) -> float:
    import time
    fn, arrays = _leaf_dict_function(leaves)
    start = time.process_time()
    fn.lower(arrays).executable
    return time.process_time() - start


def test_regression_dict_of_many_leaves_compiled_in_time_quadratic_in_their_number(
        monkeypatch):
    """All kernels were inlined into one entry function, one basic block of
    thousands of calls and pointer loads, and the wrapper copied every data pointer
    in straight-line code: LLVM took time quadratic in the number of leaves (250
    leaves 4 s, 500 14 s, 1,000 45 s). Now no function grows with the graph, and 4x
    the leaves take about 4x the CPU time (asserted loosely: 8x; `python
    tools/reliability_numbers.py leaves` reports 500 vs 2,000)."""
    import re

    monkeypatch.setenv("PROPC_CACHE", "0")
    fn, arrays = _leaf_dict_function(200)
    out = fn(arrays)
    assert sorted(out) == sorted(arrays)
    for key, value in arrays.items():
        np.testing.assert_array_equal(out[key], value * np.float32(2) + np.float32(1))
    module = fn.lower(arrays).llvm_ir
    bodies = re.split(r"\ndefine ", module)[1:]
    assert len(bodies) > 200  # the kernels stayed functions of their own
    assert max(len(re.findall(r"\bcall\b|\bload\b", body)) for body in bodies) < 200
    _compile_seconds(8)  # warm: the first compile of a process pays for more
    small, large = _compile_seconds(75), _compile_seconds(300)
    assert large < 8 * small, (small, large)


def _held_kib() -> float:
    """RSS in KiB once garbage is collected and glibc has returned freed memory."""
    import ctypes
    import gc
    import os
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024


def test_regression_each_fresh_signature_kept_its_compiling_llvm_engine(monkeypatch):
    """A freshly compiled signature kept the engine that compiled it, with its LLVM
    module and code generator state: ~850 KiB each (2,000 shapes: +1.7 GB), where
    the same code loaded from the disk cache keeps ~95 KiB. Now ~8 KiB; asserted
    here under 300 KiB over 40 shapes (`python tools/reliability_numbers.py memory`
    measures 300 shapes and dropped compiles)."""
    monkeypatch.setenv("PROPC_CACHE", "0")
    f = pc.compile(lambda a: pc.tanh(a * 2.0 + 1.0).sum(axis=0) * a[0])
    for rows in range(1, 11):  # warm-up
        f(np.ones((rows, 3), np.float32))
    before = _held_kib()
    for rows in range(11, 51):
        a = np.linspace(-1.0, 1.0, rows * 3, dtype=np.float32).reshape(rows, 3)
        np.testing.assert_allclose(f(a), np.tanh(a * 2 + 1).sum(axis=0) * a[0], rtol=1e-5)
    assert (_held_kib() - before) / 40 < 300


def _unreferenced_without_the_cyclic_collector(make_and_drop) -> list[str]:
    """Names of the objects (weak references returned by `make_and_drop()`, which
    drops every strong one) still alive with Python's cyclic collector off."""
    import gc
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        references = make_and_drop()
        return [name for name, ref in references.items() if ref() is not None]
    finally:
        if enabled:
            gc.enable()


def _compiled_and_its_parts(compiled, *args) -> dict:
    """Weak references to a compiled function after one call, its executable,
    JIT module and generated caller (the call must be a fresh native compile)."""
    import weakref
    expected = compiled.fn(*[np.asarray(a) for a in args])
    np.testing.assert_allclose(compiled(*args), expected, rtol=1e-5)
    specialised = compiled._specialised and next(iter(compiled._specialised.values()))
    owner = specialised or compiled
    executable = owner.lower(*args).executable
    assert owner._fast is not None
    return {"compiled function": weakref.ref(compiled),
            "executable": weakref.ref(executable),
            "JIT module": weakref.ref(executable._jit),
            "generated caller": weakref.ref(owner._fast)}


def test_regression_dropped_compiled_function_waited_for_the_cyclic_collector(monkeypatch):
    """A dropped compiled function sat in reference cycles (with its signature cache,
    whose callbacks were its bound methods; its generated caller with the namespace
    it read as globals; its JIT module with a bound method of its own; a static
    key's specialisation with its parent), so its native code stayed until the
    cyclic collector ran: dropped compiles piled up between collections. Now
    reference counting frees all of it at once."""
    monkeypatch.setenv("PROPC_CACHE", "0")
    x = np.linspace(-1.0, 1.0, 12, dtype=np.float32).reshape(4, 3)

    def plain():
        return _compiled_and_its_parts(pc.compile(lambda a: pc.tanh(a * 2.0) * a[0]), x)

    def static():
        scaled = pc.compile(lambda a, k: a * float(k) + 1.0, static_argnums=1)
        found = _compiled_and_its_parts(scaled, x, 3)
        np.testing.assert_allclose(scaled(x, 3), x * 3 + 1)
        return found

    assert _unreferenced_without_the_cyclic_collector(plain) == []
    assert _unreferenced_without_the_cyclic_collector(static) == []


def test_regression_each_compile_made_a_pass_builder_llvmlite_never_frees(monkeypatch):
    """llvmlite 0.50 never frees a pass builder's instrumentation callbacks (~1.7 KiB),
    and the JIT made one per compile: most of what a dropped compile left behind.
    One builder kept for good is no better (each run adds a callback every later
    run calls: compiles grew slower), so the JIT replaces its shared builder every
    PASS_BUILDER_RUNS runs. Ten compiles with a window of four: three builders."""
    import llvmlite.binding as llvm
    from codegen.runtime import jit

    made = []

    def counted(*args):
        made.append(args)
        return create(*args)

    monkeypatch.setenv("PROPC_CACHE", "0")
    f = pc.compile(lambda a: pc.tanh(a * 2.0 + 1.0).sum(axis=0))
    f.warn_recompiles_after = 100  # eleven shapes on purpose
    f(np.ones((11, 3), np.float32))  # the process-wide library too, if not yet compiled
    create = llvm.create_pass_builder
    monkeypatch.setattr(llvm, "create_pass_builder", counted)
    monkeypatch.setattr(jit, "PASS_BUILDER_RUNS", 4)
    monkeypatch.setattr(jit, "_JIT_PASSES", jit._SharedPassBuilder())
    for rows in range(1, 11):
        a = np.linspace(-1.0, 1.0, rows * 3, dtype=np.float32).reshape(rows, 3)
        np.testing.assert_allclose(f(a), np.tanh(a * 2 + 1).sum(axis=0), rtol=1e-5, atol=1e-6)
    assert f.compile_count == 11
    assert len(made) == 3


def test_regression_each_signature_compiled_the_source_of_its_generated_caller():
    """Signatures of one argument structure generate the same caller source (shapes
    and dtypes are names in its namespace); each compiled it again and kept a code
    object of its own. Now they share one."""
    f = pc.compile(lambda a, b: a * b)
    callers = []
    for rows in (2, 3):
        a = np.full((rows, 3), 2.0, np.float32)
        np.testing.assert_array_equal(f(a, a), a * a)
        callers.append(f._fast)
    assert callers[0] is not callers[1]
    assert callers[0].__code__ is callers[1].__code__


def test_regression_temporary_files_of_killed_cache_writers_were_never_removed(
        tmp_path, monkeypatch):
    """A process killed between writing an entry's temporary file and renaming it
    left the `.tmp` file behind for good. Now the next store removes those over an
    hour old (a live writer's fresh one stays)."""
    import os
    import time

    from codegen.runtime import cache
    monkeypatch.setenv("PROPC_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("PROPC_CACHE", raising=False)
    directory = tmp_path / cache.FORMAT
    directory.mkdir()
    stale, fresh = directory / ".0123456789abcdef.dead.tmp", directory / ".fedcba.live.tmp"
    stale.write_bytes(b"half an entry")
    fresh.write_bytes(b"being written")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    x = np.arange(3, dtype=np.float32)
    np.testing.assert_array_equal(pc.compile(lambda a: a * 5.0 - 1.0)(x), x * 5.0 - 1.0)
    assert not stale.exists() and fresh.exists()
    assert len(list(directory.glob("*" + cache.SUFFIX))) == 1


@pc.compile
def _pickled_double(a):
    return a * 2.0


def _plain_triple(a):
    return a * 3.0


def test_regression_pickling_or_deep_copying_a_compiled_function_failed_on_a_lock():
    """pickle and copy.deepcopy of a compiled function failed with a thread-lock /
    ctypes error (and "Exception ignored" noise). Now: copies are the function
    itself (like copying a Python function); pickling is by reference, and a lambda
    says why it cannot be pickled."""
    import copy
    import pickle
    x = np.arange(3, dtype=np.float32)
    _pickled_double(x)  # holds compiled code and locks now
    assert copy.deepcopy(_pickled_double) is _pickled_double
    assert copy.copy(_pickled_double) is _pickled_double
    assert pickle.loads(pickle.dumps(_pickled_double)) is _pickled_double
    triple = pc.compile(_plain_triple)
    triple(x)
    again = pickle.loads(pickle.dumps(triple))
    np.testing.assert_array_equal(again(x), x * 3.0)
    with pytest.raises(pickle.PicklingError, match="module level"):
        pickle.dumps(pc.compile(lambda a: a + 1.0))


def test_regression_escaped_tracer_argument_said_bind_called_outside_a_traced_function():
    leaked = []
    pc.interpret(lambda a: leaked.append(a) or a)(np.ones(3, np.float32))
    with pytest.raises(pc.TraceError, match=r"argument args\[1\]\[0\] is a traced value "
                                            r"f32\[3\] that escaped"):
        pc.compile(lambda a, b: a + b[0])(np.ones(3, np.float32), [leaked[0]])


def test_regression_compile_on_a_method_said_missing_positional_argument():
    class Model:
        @pc.compile
        def forward(self, x):
            return x * 2.0

    with pytest.raises(TypeError, match=r"Model.forward is a method.*not `self`"):
        Model().forward(np.ones(3, np.float32))


def test_regression_bad_or_huge_thread_counts_were_used_silently(monkeypatch, caplog):
    """An invalid PROPC_NUM_THREADS was ignored without a word, and 1000 started
    999 threads on 2 cores. Now each is said once and a count is capped."""
    import logging
    import os

    from codegen.options import from_environment
    from codegen.threads import host as parallel
    caplog.set_level(logging.WARNING, logger="propc.compile")
    monkeypatch.setenv("PROPC_NUM_THREADS", "eight")
    for _ in range(3):
        assert parallel.requested_threads(from_environment()) == len(os.sched_getaffinity(0))
    monkeypatch.setenv("PROPC_NUM_THREADS", "1000")
    for _ in range(3):
        assert parallel.requested_threads(from_environment()) == 2 * os.cpu_count()
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2, messages
    assert "'eight' is not a positive integer" in messages[0]
    assert "PROPC_NUM_THREADS=1000" in messages[1] and f"using {2 * os.cpu_count()}" in messages[1]


def test_regression_unusable_cache_directory_warned_on_every_compile_without_a_hint(
        tmp_path, monkeypatch, caplog):
    import logging
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("PROPC_CACHE_DIR", str(blocker))
    monkeypatch.delenv("PROPC_CACHE", raising=False)
    caplog.set_level(logging.WARNING, logger="propc.cache")
    x = np.arange(3, dtype=np.float32)
    for scale in (2.0, 3.0, 4.0):
        np.testing.assert_array_equal(pc.compile(lambda a: a * scale)(x), x * scale)
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1, warnings
    assert "PROPC_CACHE_DIR" in warnings[0] and "PROPC_CACHE=0" in warnings[0]


def test_regression_softmax_over_a_zero_length_axis_raised_an_error_naming_max():
    """softmax of an empty row is an empty row (there is nothing to normalise); it
    raised `max: zero-size axis ... has no maximum`."""
    for shape, axis in (((2, 0), 1), ((0, 2), 0), ((0, 3), 1)):
        a = np.ones(shape, np.float32)
        for fn in (pc.nn.softmax, pc.nn.log_softmax):
            for run in (pc.compile, pc.interpret):
                out = run(lambda a: fn(a, axis=axis))(a)
                assert out.shape == shape and out.dtype == np.float32
        grad = pc.compile(pc.grad(lambda a: pc.nn.softmax(a, axis=axis).sum()))(a)
        assert grad.shape == shape
