"""Conv epilogues (codegen/kernels/conv_epilogue.py): a conv's bias + relu consumer
run on the conv's finished row blocks, against the interpreter; with plain and
transposed products and convs summed in registers (short and long contractions), one
thread and row blocks shared by three, batch 1 and odd
sizes; and the consumers that must not be fused (the conv is also an output, or is
read transposed)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import codegen
from codegen.emit.lowering import plan_graph
from codegen.kernels import conv_blocking
from codegen.options import DEFAULT_OPTIONS, from_environment
from codegen.kernels.conv_gemm import ConvGemmStep
from codegen.plan.threads import SERIAL, ThreadPlan
from ir import Builder, DType, TensorType, interpret

SAME_3X3 = dict(strides=(1, 1), padding_low=(1, 1), padding_high=(1, 1), lhs_dilation=(1, 1),
                rhs_dilation=(1, 1), feature_group_count=1)


def bias_relu_graph(x_shape, w_shape, dtype=DType.f32, also_output=False, transposed_read=False):
    """relu(conv(x, w) + b); optionally the conv is an output too, or the consumer
    reads it with its last two axes swapped (not at the element it writes)."""
    b = Builder("conv_bias_relu")
    x = b.input(TensorType(x_shape, dtype))
    w = b.input(TensorType(w_shape, dtype))
    bias = b.input(TensorType((w_shape[-1],), dtype))
    y = b.conv(x, w, **SAME_3X3)
    if transposed_read:
        y = b.transpose(y, perm=(0, 2, 1, 3))
    shifted = b.add(y, b.broadcast_in_dim(bias, shape=y.shape, dims=(3,)))
    b.output(b.max(shifted, b.zeros(shifted.type)))
    if also_output:
        b.output(y)
    return b.build()


def fused_convs(graph, threads: ThreadPlan = SERIAL, options=DEFAULT_OPTIONS
                ) -> list[ConvGemmStep]:
    return [step for kernel in plan_graph(graph, threads=threads, options=options).kernels
            for step in kernel.steps
            if isinstance(step, ConvGemmStep) and step.epilogue is not None]


def run_both(graph, seed=0, options=None):
    rng = np.random.default_rng(seed)
    inputs = [rng.standard_normal(v.shape).astype(v.dtype.numpy) for v in graph.inputs]
    got = codegen.compile_graph(graph, options=options)(*inputs)
    want = interpret(graph, *inputs)
    for g, w in zip(got, want):
        scale = max(np.abs(w).max(), 1.0)
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5 * scale)


# (x, w): a plain product (32 features); a transposed one (5 features, contraction
# 9 * 13 = 117); batch 1 with odd sizes; a contraction of 27, summed in registers
SHAPES = [((2, 7, 5, 4), (3, 3, 4, 32)), ((3, 6, 7, 13), (3, 3, 13, 5)),
          ((1, 9, 11, 9), (3, 3, 9, 35)), ((2, 7, 5, 3), (3, 3, 3, 32))]


@pytest.mark.parametrize("threads,long_direct", [(1, True), (1, False), (3, True), (3, False)])
@pytest.mark.parametrize("x_shape,w_shape", SHAPES)
def test_bias_relu_runs_as_the_conv_epilogue(x_shape, w_shape, threads, long_direct,
                                             monkeypatch):
    """One thread with long contractions in registers and with them through patches;
    three threads (a region: patches, or shares of the row groups in registers)."""
    monkeypatch.setenv("PROPC_NUM_THREADS", str(threads))
    monkeypatch.setattr(conv_blocking, "_least_flops", lambda threads: 0)  # threads for any size
    monkeypatch.setattr(conv_blocking, "LONG_DIRECT_REGION_MIN_FLOPS", 0)
    options = dataclasses.replace(from_environment(), conv_long_direct=long_direct)
    graph = bias_relu_graph(x_shape, w_shape)
    (fused,) = fused_convs(graph, ThreadPlan(threads, spinning=False, pool=True), options)
    assert fused.blocking.region == threads
    run_both(graph, options=options)


def kind(blocking) -> str:
    if blocking.row_group:
        return "long"
    return "direct" if blocking.direct else "transposed" if blocking.transposed else "plain"


@pytest.mark.parametrize("long_direct", [True, False])
def test_the_cases_take_every_kind_of_conv(long_direct):
    options = dataclasses.replace(DEFAULT_OPTIONS, conv_long_direct=long_direct)
    kinds = {kind(fused_convs(bias_relu_graph(*shapes), SERIAL, options)[0].blocking)
             for shapes in SHAPES}
    assert kinds == ({"plain", "long", "direct"} if long_direct
                     else {"plain", "transposed", "direct"})


@pytest.mark.parametrize("case", ["also_output", "transposed_read"])
def test_consumers_that_cannot_be_fused_stay_apart(case):
    graph = bias_relu_graph((2, 5, 6, 4), (3, 3, 4, 33), **{case: True})
    assert fused_convs(graph) == []
    run_both(graph)


def test_float64_convs_keep_their_direct_loops():
    graph = bias_relu_graph((1, 5, 7, 3), (3, 3, 3, 6), dtype=DType.f64)
    assert fused_convs(graph) == []
    run_both(graph)
