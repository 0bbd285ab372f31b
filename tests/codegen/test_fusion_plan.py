"""The fusion plan is decided in one pass (codegen/plan/fusion.py, epilogues.py): which
values get buffers, including those a kernel or a non-affine view can only read
from a buffer, and which elementwise kernels run as a product's epilogue. Each plan
is checked by what it decides and by running the compiled graph against the
interpreter; kernels refuse a plan that breaks their needs (no retry loop).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import codegen
from codegen.errors import CodegenError
from codegen.kernels.gather import lower_gather
from codegen.plan.fusion import plan_fusion
from ir import Builder, DType, TensorType, interpret

from codegen_graphs import bcast, matmul
from codegen_oracle import assert_matches, random_array

F32 = DType.f32


@pytest.fixture(autouse=True)
def _no_cache(monkeypatch):
    monkeypatch.setenv("PROPC_CACHE", "0")
    monkeypatch.delenv("PROPC_DEBUG", raising=False)


def run_both(graph, kind: str = "ulp", ulps: float = 64):
    rng = np.random.default_rng(5)
    arrays = [random_array(rng, value.type) for value in graph.inputs]
    got = codegen.compile_graph(graph)(*arrays)
    want = interpret(graph, *arrays)
    for position, (g, w) in enumerate(zip(got, want)):
        assert_matches(g, np.asarray(w), f"output {position}", kind, ulps=ulps, atol=1e-5)


def merging_reshape_graph():
    """exp of x, read through a reshape that merges axes (not an affine index map)."""
    b = Builder("merge")
    x = b.input(TensorType((2, 3, 4), F32))
    e = b.exp(x)
    flat = b.reshape(e, shape=(6, 4))
    b.output(b.reduce_sum(b.mul(flat, flat), axes=(1,)))
    return b.build(), e


def test_a_merging_reshape_gets_its_operand_a_buffer_up_front():
    graph, e = merging_reshape_graph()
    plan = plan_fusion(graph)
    assert e in plan.materialized and e in plan
    run_both(graph)


@pytest.mark.parametrize("padded", [False, True])
def test_a_window_with_padding_reads_a_buffer_and_one_without_fuses(padded):
    b = Builder("pool")
    x = b.input(TensorType((2, 5, 7), F32))
    doubled = b.add(x, x)
    pads = (0, 1, 1) if padded else (0, 0, 0)
    b.output(b.emit("reduce_window_max", doubled, window=(1, 2, 3), strides=(1, 2, 2),
                    padding_low=pads, padding_high=pads))
    graph = b.build()
    assert (doubled in plan_fusion(graph).materialized) is padded
    run_both(graph, "exact")


def gather_graph():
    b = Builder("pick")
    x = b.input(TensorType((3, 5), F32))
    picks = b.input(TensorType((3, 6), DType.i32))
    scaled = b.tanh(x)
    b.output(b.gather(scaled, picks, axis=1))
    return b.build(), scaled


def test_a_buffer_reading_kernel_gets_its_fused_operand_a_buffer_up_front():
    graph, scaled = gather_graph()
    assert scaled in plan_fusion(graph).materialized
    x = random_array(np.random.default_rng(1), graph.inputs[0].type)
    picks = np.array([[0, 4, 4, 1, 2, 3]] * 3, np.int32)
    (got,) = codegen.compile_graph(graph)(x, picks)
    assert_matches(got, interpret(graph, x, picks)[0], "gather", "ulp", ulps=4)


def test_a_kernel_refuses_a_plan_without_the_buffer_it_needs():
    graph, scaled = gather_graph()
    op = graph.outputs[0].producer
    with pytest.raises(CodegenError, match="fusion plan left an operand without"):
        lower_gather(op, frozenset(graph.inputs))


def dense_graph(also_output_product: bool = False):
    """tanh(x @ w + bias): the product's one reader is the tanh kernel."""
    b = Builder("dense")
    x = b.input(TensorType((8, 16), F32))
    w = b.input(TensorType((16, 12), F32))
    bias = b.input(TensorType((12,), F32))
    product = matmul(b, x, w)
    h = b.tanh(b.add(product, bcast(b, bias, (8, 12), (1,))))
    b.output(h)
    if also_output_product:
        b.output(product)
    return b.build(), product, h


def test_the_planner_picks_the_dense_epilogue():
    graph, product, h = dense_graph()
    plan = plan_fusion(graph)
    assert dict(plan.epilogues) == {h: product} and plan.products == {product}
    assert plan_fusion(graph, epilogues=False).epilogues == {}
    run_both(graph)


def test_a_product_that_is_also_an_output_keeps_its_own_kernel():
    graph, product, h = dense_graph(also_output_product=True)
    assert plan_fusion(graph).epilogues == {}
    run_both(graph)


def test_a_product_read_by_two_kernels_keeps_its_own_kernel():
    b = Builder("two")
    x = b.input(TensorType((8, 16), F32))
    w = b.input(TensorType((16, 12), F32))
    product = matmul(b, x, w)
    b.output(b.tanh(product), b.reduce_sum(product, axes=(1,)))
    graph = b.build()
    assert plan_fusion(graph).epilogues == {}
    run_both(graph)


def test_the_producer_rule_decides(monkeypatch):
    """Epilogues come from the product's EpilogueRule: without one, none."""
    graph, _, _ = dense_graph()
    dot = codegen.LOWERINGS["dot"]
    monkeypatch.setitem(codegen.LOWERINGS, "dot", dataclasses.replace(dot, epilogue=None))
    assert plan_fusion(graph).epilogues == {}
    run_both(graph)


def relu_read_by_two_kernels(scale_first: bool):
    """r = max(h, 0) read by a reduction and by an elementwise output; h = x (an
    input: a buffer) or x * 3 (fused arithmetic: no buffer of its own)."""
    b = Builder("relu_twice")
    x = b.input(TensorType((6, 40), F32))
    h = b.mul(x, b.full((6, 40), 3.0, F32)) if scale_first else x
    r = b.max(h, b.zeros(h.type))
    total = b.reduce_sum(r, axes=(1,))
    b.output(total)
    b.output(b.mul(r, bcast(b, total, (6, 40), (0,))))
    return b.build(), r


def test_a_relu_over_a_buffer_is_recomputed_by_each_reader():
    graph, r = relu_read_by_two_kernels(scale_first=False)
    assert r not in plan_fusion(graph)
    run_both(graph)


def test_a_relu_over_fused_arithmetic_gets_a_buffer():
    graph, r = relu_read_by_two_kernels(scale_first=True)
    assert r in plan_fusion(graph)
    run_both(graph)
