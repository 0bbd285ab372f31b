"""The Executable runtime: concurrent calls, input validation, output ownership,
several graphs in one module, the verifier, debug mode, the buffer plan report, and
vectorised code in the assembly."""
from __future__ import annotations

import re
import threading

import llvmlite.binding as llvm
import numpy as np
import pytest

import codegen
from ir import PRIMITIVES, Builder, DType, TensorType, interpret
from codegen_graphs import bcast, layer_graph, train_step_graph

F32, I64, BOOL = DType.f32, DType.i64, DType.bool


def small_graph():
    b = Builder("small")
    x = b.input(TensorType((4, 3), F32))
    y = b.input(TensorType((3,), F32))
    s = b.tanh(b.add(x, bcast(b, y, (4, 3), (1,))))
    b.output(s, b.reduce_sum(s, axes=(0, 1)))
    return b.build()


@pytest.fixture(scope="module")
def small():
    return codegen.compile_graph(small_graph())


def test_registry_covers_every_primitive():
    # elementwise primitives are lowered by their scalar emitter alone (EMITTERS)
    from codegen.emit.elementwise import EMITTERS
    assert set(codegen.LOWERINGS) | set(EMITTERS) == set(PRIMITIVES)


def test_four_threads_share_one_executable():
    graph = layer_graph(16, 40, 24)
    exe = codegen.compile_graph(graph)
    rng = np.random.default_rng(0)
    jobs = [[rng.standard_normal(v.shape).astype(np.float32) for v in graph.inputs]
            for _ in range(4)]
    expected = [interpret(graph, *inputs) for inputs in jobs]
    failures = []

    def worker(k):
        for _ in range(200):
            got = exe(*jobs[k])
            for g, w in zip(got, expected[k]):
                if not np.allclose(g, w, rtol=1e-5, atol=1e-6):
                    failures.append(k)
                    return

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


@pytest.mark.parametrize("bad,message", [
    (lambda x, y: (x,), "takes 2 input"),
    (lambda x, y: (x, y, y), "takes 2 input"),
    (lambda x, y: (x[:, :2].copy(), y), "expected f32"),
    (lambda x, y: (x.astype(np.float64), y), "expected f32"),
    (lambda x, y: (x.T.copy().T, y), "C-contiguous"),
    (lambda x, y: (x, y[::-1]), "C-contiguous"),
    (lambda x, y: (x.tolist(), y), "NumPy array"),
    (lambda x, y: (x, np.float32(1.0)), "NumPy array"),
])
def test_bad_inputs_raise_value_error(small, bad, message):
    x = np.ones((4, 3), np.float32)
    y = np.ones(3, np.float32)
    with pytest.raises(ValueError, match=message):
        small(*bad(x, y))


def test_outputs_are_fresh_arrays(small):
    x = np.ones((4, 3), np.float32)
    y = np.ones(3, np.float32)
    first = small(x, y)
    second = small(x, y)
    assert not np.shares_memory(first[0], second[0])
    assert first[1].shape == () and isinstance(first[1], np.ndarray)
    first[0][...] = 7
    np.testing.assert_array_equal(second[0], np.tanh(np.full((4, 3), 2, np.float32)))


def test_inputs_constants_and_repeats_as_outputs():
    b = Builder("outs")
    x = b.input(TensorType((5,), I64))
    flag = b.input(TensorType((), BOOL))
    c = b.constant(value=np.array([3, 1, 4, 1, 5], np.int64))
    s = b.add(x, c)
    b.output(s, x, c, s, flag, b.constant(value=np.asarray(2.5, np.float32)))
    graph = b.build()
    exe = codegen.compile_graph(graph)
    inputs = [np.arange(5, dtype=np.int64), np.asarray(True)]
    got = exe(*inputs)
    want = interpret(graph, *inputs)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_array_equal(g, w)
    assert not np.shares_memory(got[0], got[3])
    assert not np.shares_memory(got[1], inputs[0])


def test_compile_graphs_puts_two_functions_in_one_module():
    forward = small_graph()
    b = Builder("backward")
    g = b.input(TensorType((4, 3), F32))
    b.output(b.reduce_sum(b.mul(g, g), axes=(1,)))
    backward = b.build()
    exe_f, exe_b = codegen.compile_graphs([forward, backward])
    assert exe_f.llvm_ir is exe_b.llvm_ir
    defined = re.findall(r"^define .*@\"?([\w.]+)\"?\(", exe_f.llvm_ir, flags=re.M)
    assert "propc.small" in defined and "propc.backward" in defined
    arrays = [np.full((4, 3), 0.5, np.float32), np.arange(3, dtype=np.float32)]
    np.testing.assert_allclose(exe_f(*arrays)[0], interpret(forward, *arrays)[0], rtol=1e-6)
    np.testing.assert_allclose(exe_b(arrays[0])[0], interpret(backward, arrays[0])[0])


def test_graphs_named_like_libm_functions_do_not_capture_libm_calls():
    graphs = []
    for name in ("exp", "log", "tanh"):
        b = Builder(name)
        x = b.input(TensorType((3,), DType.f64))
        b.output(b.emit(name, x))
        graphs.append(b.build())
    x = np.array([0.5, 1.0, 2.0])
    for graph, exe in zip(graphs, codegen.compile_graphs(graphs)):
        assert exe.name == graph.name
        np.testing.assert_allclose(exe(x)[0], interpret(graph, x)[0], rtol=1e-15)


def test_same_graph_name_twice_gets_distinct_symbols():
    one, two = codegen.compile_graphs([small_graph(), small_graph()])
    assert one.name != two.name
    x, y = np.ones((4, 3), np.float32), np.zeros(3, np.float32)
    np.testing.assert_array_equal(one(x, y)[0], two(x, y)[0])


def test_modules_pass_the_llvm_verifier_and_debug_keeps_unoptimised_ir():
    exe = codegen.compile_graph(train_step_graph(4, [6, 5, 3]), debug=True)
    llvm.parse_assembly(exe.llvm_ir).verify()
    assert exe.unoptimised_ir is not None
    llvm.parse_assembly(exe.unoptimised_ir).verify()
    assert "propc.train_step.k0" in exe.unoptimised_ir
    assert codegen.compile_graph(small_graph()).unoptimised_ir is None


def test_memory_plan_reports_and_never_overlaps_live_slots():
    graph = train_step_graph(16, [20, 30, 30, 5])
    exe = codegen.compile_graph(graph)
    memory = exe.memory
    assert memory.inputs == sum(v.type.nbytes for v in graph.inputs)
    assert memory.outputs == sum(v.type.nbytes for v in graph.outputs)
    slots = memory.slots
    assert 0 < memory.peak_scratch <= sum(-(-nbytes // 64) * 64 for _, nbytes, *_ in slots)
    for i, (label_a, size_a, at_a, first_a, last_a) in enumerate(slots):
        assert at_a % 64 == 0 and at_a + size_a <= memory.peak_scratch
        for label_b, size_b, at_b, first_b, last_b in slots[i + 1:]:
            # a result written in place over an operand shares its slot at that kernel
            in_place = (f"in place of %{label_a.split()[0][1:]}" in label_b
                        and last_a == first_b and at_a == at_b)
            if first_a <= last_b and first_b <= last_a and size_a and size_b and not in_place:
                assert at_a + size_a <= at_b or at_b + size_b <= at_a
    text = str(memory)
    assert "peak scratch" in text and f"{memory.peak_scratch:,}" in text


def test_loops_are_vectorised_in_the_assembly():
    b = Builder("vec")
    x = b.input(TensorType((4096,), F32))
    y = b.input(TensorType((4096,), F32))
    b.output(b.add(b.mul(x, y), x), b.reduce_sum(x, axes=(0,)))
    exe = codegen.compile_graph(b.build())
    packed = re.findall(r"\b(v?(?:add|mul)ps)\b", exe.asm)
    assert len(packed) >= 2


def test_run_entry_takes_plain_buffer_pointers():
    """`propc.<name>.run(buffers)`: inputs, outputs and arena as raw data pointers,
    the C ABI an exported library would use."""
    import ctypes
    graph = small_graph()
    exe = codegen.compile_graph(graph)
    run = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(exe._jit.address(f"propc.{exe.name}.run"))
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3)
    y = np.array([0.5, -0.5, 0.25], np.float32)
    outputs = [np.empty((4, 3), np.float32), np.empty((), np.float32)]
    arena = np.empty(exe.memory.peak_scratch + 64, np.uint8)
    base = arena.ctypes.data + (-arena.ctypes.data) % 64
    block = (ctypes.c_void_p * 5)(x.ctypes.data, y.ctypes.data, outputs[0].ctypes.data,
                                  outputs[1].ctypes.data, base)
    run(ctypes.addressof(block))
    for got, want in zip(outputs, interpret(graph, x, y)):
        np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("sgemm", [True, False])
def test_float32_matmul_workspace_is_in_the_buffer_plan(sgemm):
    """The packed sgemm's panels live in the arena (when the sgemm is switched on)."""
    import dataclasses
    from codegen.options import from_environment
    b = Builder("mm")
    x = b.input(TensorType((64, 96), F32))
    w = b.input(TensorType((96, 80), F32))
    b.output(b.dot(x, w, lhs_batch=(), rhs_batch=(), lhs_contract=(1,), rhs_contract=(0,)))
    options = dataclasses.replace(from_environment(), sgemm=sgemm)
    exe = codegen.compile_graph(b.build(), options=options)
    labels = [label for label, *_ in exe.memory.slots]
    assert any("workspace" in label for label in labels) == sgemm
    assert (exe.memory.peak_scratch > 0) == sgemm


def test_lowering_failures_name_the_op_and_source_line(monkeypatch):
    from codegen.emit.elementwise import EMITTERS
    from ir import SourceLoc
    b = Builder("f")
    b.loc = SourceLoc("model.py", 14)
    x = b.input(TensorType((3,), F32))
    b.output(b.exp(x))
    monkeypatch.delitem(EMITTERS, "exp")
    with pytest.raises(codegen.CodegenError, match=r"lowering exp f32\[3\] -> f32\[3\] "
                                                   r"\(model.py:14\)"):
        codegen.compile_graph(b.build())


def test_threads_compile_and_run_at_the_same_time():
    results = {}

    def worker(k):
        graph = layer_graph(4 + k, 7, 5)
        exe = codegen.compile_graph(graph)
        rng = np.random.default_rng(k)
        inputs = [rng.standard_normal(v.shape).astype(np.float32) for v in graph.inputs]
        results[k] = all(np.allclose(g, w, rtol=1e-5, atol=1e-6)
                         for g, w in zip(exe(*inputs), interpret(graph, *inputs)))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {0: True, 1: True, 2: True}
