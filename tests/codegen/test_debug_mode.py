"""Debug mode (codegen/bounds.py): bounds checks on every element load and store.

Deliberately broken lowerings (monkeypatched into the registry, with the disk cache
off so their code is never stored) must be caught with a BoundsCheckError naming
the op, its types, its source line, the buffer and the element; correct graphs
must give the interpreter's results under debug mode.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import codegen
from codegen.emit import kernels
from codegen.registry import Lowering
from codegen.plan.views import slice_access, transpose_access
from ir import Builder, DType, SourceLoc, TensorType, interpret

from codegen_graphs import bcast, layer_graph, train_step_graph, train_step_inputs
from codegen_oracle import assert_matches, random_array

F32 = DType.f32


@pytest.fixture
def no_cache(monkeypatch):
    """Broken lowerings must not reach the disk cache (nor be served from it)."""
    monkeypatch.setenv("PROPC_CACHE", "0")
    monkeypatch.delenv("PROPC_DEBUG", raising=False)


def replace_lowering(monkeypatch, prim: str, kind: str, fn) -> None:
    monkeypatch.setitem(codegen.LOWERINGS, prim, Lowering(kind, fn))


def pad_graph():
    b = Builder("padded")
    x = b.input(TensorType((2, 3), F32))
    with b.at(SourceLoc("model.py", 12)):
        y = b.pad(b.exp(x), low=(1, 1), high=(1, 0), interior=(0, 0))
    b.output(b.reduce_sum(y, axes=(0, 1)))
    return b.build()


def transpose_graph():
    b = Builder("flipped")
    x = b.input(TensorType((3, 4), F32))
    with b.at(SourceLoc("model.py", 20)):
        y = b.transpose(x, perm=(1, 0))
    with b.at(SourceLoc("model.py", 21)):
        z = b.reduce_sum(b.tanh(y), axes=(1,))
    b.output(z)
    return b.build()


def test_store_past_the_end_names_the_op_and_line(monkeypatch, no_cache):
    def pad_shifted(op, materialized):
        plan = kernels.lower_pad(op, materialized)
        last = plan.steps[-1]
        last.dest_offset = last.dest_offset.shift(6)   # the last rows land past the end
        return plan

    replace_lowering(monkeypatch, "pad", "kernel", pad_shifted)
    exe = codegen.compile_graph(pad_graph(), debug=True)
    with pytest.raises(codegen.BoundsCheckError) as caught:
        exe(np.ones((2, 3), np.float32))
    message = str(caught.value)
    assert "pad f32[2,3] -> f32[4,4] (model.py:12)" in message
    found = re.search(r"store of element (\d+) of scratch %\d+ \(f32\[4,4\]\), which has 16 "
                      r"elements", message)
    assert found and int(found.group(1)) >= 16, message


def test_load_outside_an_operand_names_the_reading_op(monkeypatch, no_cache):
    def transpose_off_by_one(op, access, rank):
        operand = transpose_access(op, access, rank)
        return (operand[0].shift(1),) + operand[1:]     # row index one too far

    replace_lowering(monkeypatch, "transpose", "view", transpose_off_by_one)
    exe = codegen.compile_graph(transpose_graph(), debug=True)
    with pytest.raises(codegen.BoundsCheckError) as caught:
        exe(np.ones((3, 4), np.float32))
    message = str(caught.value)
    assert "reduce_sum f32[4,3] -> f32[4] (model.py:21)" in message
    assert re.search(r"load of element 1[2-9] of input %0 \(f32\[3,4\]\), which has 12 elements",
                     message), message


def test_negative_offsets_are_caught_too(monkeypatch, no_cache):
    def slice_before_start(op, access, rank):
        operand = slice_access(op, access, rank)
        return tuple(index.shift(-5) for index in operand)

    replace_lowering(monkeypatch, "slice", "view", slice_before_start)
    b = Builder("sliced")
    x = b.input(TensorType((6,), F32))
    with b.at(SourceLoc("model.py", 30)):
        b.output(b.exp(b.slice(x, start=(1,), stop=(5,), stride=(1,))))
    exe = codegen.compile_graph(b.build(), debug=True)
    with pytest.raises(codegen.BoundsCheckError, match=r"load of element -\d+ of input %0"):
        exe(np.ones(6, np.float32))


def test_a_failed_call_does_not_poison_the_next_one(monkeypatch, no_cache):
    """The error record is cleared at every call: a good call after a bad one on
    the same thread (same arena) succeeds."""
    calls = {"n": 0}

    def pad_shifted_once(op, materialized):
        plan = kernels.lower_pad(op, materialized)
        calls["n"] += 1
        if calls["n"] == 1:
            plan.steps[-1].dest_offset = plan.steps[-1].dest_offset.shift(100)
        return plan

    replace_lowering(monkeypatch, "pad", "kernel", pad_shifted_once)
    bad = codegen.compile_graph(pad_graph(), debug=True)
    good = codegen.compile_graph(pad_graph(), debug=True)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    with pytest.raises(codegen.BoundsCheckError):
        bad(x)
    (total,) = good(x)
    np.testing.assert_allclose(total, np.exp(x).sum() + 4 * 0.0, rtol=1e-6)
    with pytest.raises(codegen.BoundsCheckError):
        bad(x)


def test_without_debug_no_checks_are_compiled(no_cache):
    exe = codegen.compile_graph(pad_graph(), debug=False)
    checked = codegen.compile_graph(pad_graph(), debug=True)
    assert exe.memory.error_slot is None and checked.memory.error_slot is not None
    assert "bounds.fail" in checked.unoptimised_ir
    assert "bounds.fail" not in codegen.compile_graph(pad_graph(), debug=None).llvm_ir
    assert exe.memory.peak_scratch == checked.memory.peak_scratch


def test_propc_debug_environment_variable_turns_checks_on(monkeypatch):
    monkeypatch.setenv("PROPC_DEBUG", "1")
    assert codegen.compile_graph(pad_graph()).memory.error_slot is not None
    monkeypatch.setenv("PROPC_DEBUG", "0")
    assert codegen.compile_graph(pad_graph()).memory.error_slot is None


# -- correct graphs pass under debug mode ------------------------------------------------


def test_train_step_matches_the_interpreter_under_debug_mode():
    graph = train_step_graph(8, [12, 16, 5])
    exe = codegen.compile_graph(graph, debug=True)
    assert exe.memory.in_place > 0          # the checks see the in-place aliasing too
    arrays = train_step_inputs(np.random.default_rng(1), 8, [12, 16, 5])
    for index, (got, want) in enumerate(zip(exe(*arrays), interpret(graph, *arrays))):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6, err_msg=f"output {index}")


def test_views_pads_concats_and_reductions_pass_under_debug_mode():
    b = Builder("mixed")
    x = b.input(TensorType((4, 6), F32))
    y = b.input(TensorType((6,), F32))
    t = b.transpose(b.exp(x), perm=(1, 0))
    s = b.slice(t, start=(1, 0), stop=(6, 4), stride=(2, 1))
    padded = b.pad(s, low=(1, 0), high=(0, 2), interior=(1, 0))
    joined = b.concatenate(padded, b.reshape(bcast(b, y, (6, 6), (0,)), shape=(6, 6)), axis=1)
    rows = b.reduce_max(joined, axes=(1,))
    b.output(joined, rows, b.reduce_sum(b.mul(x, bcast(b, y, (4, 6), (1,))), axes=(0,)))
    graph = b.build()
    rng = np.random.default_rng(5)
    arrays = [random_array(rng, v.type, edges=False) for v in graph.inputs]
    exe = codegen.compile_graph(graph, debug=True)
    for index, (got, want) in enumerate(zip(exe(*arrays), interpret(graph, *arrays))):
        assert_matches(got, want, f"output {index}", "ulp", ulps=8, atol=1e-5)


def test_dot_layer_passes_under_debug_mode():
    graph = layer_graph(9, 13, 7)
    rng = np.random.default_rng(2)
    arrays = [random_array(rng, v.type, edges=False) for v in graph.inputs]
    exe = codegen.compile_graph(graph, debug=True)
    for got, want in zip(exe(*arrays), interpret(graph, *arrays)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
