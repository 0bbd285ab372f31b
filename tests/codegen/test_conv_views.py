"""A conv summed in registers over a long contraction reads a transposed operand in
its operand's buffer (codegen/kernels/conv_views.py): the fusion plan gives no
buffer to the transpose, and the compiled conv matches the interpreter (and in
debug mode, where every access is bounds-checked against the buffer it reads).
A kernel gradient's input (batch and channels swapped) is read in place when its
rows group along the batch (at least a group of input channels); a transpose that
moves the kernel's features, or a conv through patches, keeps its buffer."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import codegen
from codegen.emit.lowering import plan_graph
from codegen.options import DEFAULT_OPTIONS
from codegen.kernels import conv_blocking
from codegen.kernels.conv_gemm import ConvGemmStep
from codegen.plan.threads import ThreadPlan
from ir import Builder, DType, TensorType, interpret

SAME = dict(strides=(1, 1), padding_low=(1, 1), padding_high=(1, 1), lhs_dilation=(1, 1),
            rhs_dilation=(1, 1), feature_group_count=1)


@pytest.fixture(autouse=True)
def _no_cache(monkeypatch):
    monkeypatch.setenv("PROPC_CACHE", "0")
    monkeypatch.setenv("PROPC_NUM_THREADS", "1")


def kernel_gradient_graph(x_shape, g_shape, x_perm=(3, 1, 2, 0), g_perm=(1, 2, 0, 3)):
    """A kernel gradient as the conv VJP builds it: conv(transpose(x), transpose(g))."""
    b = Builder("kernel_gradient")
    x = b.input(TensorType(x_shape, DType.f32))
    g = b.input(TensorType(g_shape, DType.f32))
    b.output(b.conv(b.transpose(x, perm=x_perm), b.transpose(g, perm=g_perm), **SAME))
    return b.build()


def conv_step(graph) -> ConvGemmStep:
    (step,) = [step for kernel in plan_graph(graph).kernels for step in kernel.steps
               if isinstance(step, ConvGemmStep)]
    return step


def transposes_with_buffers(graph, options=DEFAULT_OPTIONS) -> int:
    plan = plan_graph(graph, options=options)
    return sum(1 for kernel in plan.kernels
               if getattr(kernel.dest, "producer", None) is not None
               and kernel.dest.producer.prim == "transpose")


def run_both(graph, debug=False, options=None):
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(v.shape).astype(np.float32) for v in graph.inputs]
    (got,) = codegen.compile_graph(graph, debug=debug, options=options)(*arrays)
    (want,) = interpret(graph, *arrays)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


# a first layer's kernel gradient (1 input channel: 9 rows, 4096 deep) and a second
# layer's (10 input channels, 20 features: groups of 8 along them and a tail of 2)
SHAPES = [((8, 8, 8, 1), (8, 8, 8, 16)), ((4, 4, 4, 10), (4, 4, 4, 20))]


@pytest.mark.parametrize("debug", [False, True], ids=["fast", "debug"])
@pytest.mark.parametrize("x_shape,g_shape", SHAPES, ids=["one channel", "ten channels"])
def test_kernel_gradients_read_their_operands_in_place(x_shape, g_shape, debug):
    graph = kernel_gradient_graph(x_shape, g_shape)
    step = conv_step(graph)
    x, g = graph.inputs
    along_batch = x_shape[-1] >= step.blocking.row_group
    assert step.sources[1].buffer is g                  # features stay last: read in place
    assert (step.sources[0].buffer is x) is along_batch
    assert transposes_with_buffers(graph) == (0 if along_batch else 1)
    run_both(graph, debug)


@pytest.mark.parametrize("x_shape,g_shape,region", [SHAPES[0] + (1,), SHAPES[1] + (3,)],
                         ids=["one channel", "ten channels"])
def test_kernel_gradients_shared_by_three_threads(x_shape, g_shape, region, monkeypatch):
    """Made to pay for threads, a kernel gradient in registers shares its output
    positions (groups along the batch) among the threads of a region; one group
    (a first layer's 9 rows) stays on one thread."""
    monkeypatch.setenv("PROPC_NUM_THREADS", "3")
    monkeypatch.setattr(conv_blocking, "_least_flops", lambda threads: 0)
    monkeypatch.setattr(conv_blocking, "LONG_DIRECT_REGION_MIN_FLOPS", 0)
    graph = kernel_gradient_graph(x_shape, g_shape)
    (step,) = [step for kernel in plan_graph(graph, threads=ThreadPlan(3, pool=True)).kernels
               for step in kernel.steps if isinstance(step, ConvGemmStep)]
    assert step.blocking.row_group and step.blocking.region == region
    run_both(graph)


def test_a_transpose_moving_the_features_keeps_its_buffer():
    graph = kernel_gradient_graph((4, 4, 4, 10), (20, 4, 4, 4), g_perm=(1, 2, 3, 0))
    assert transposes_with_buffers(graph) == 1
    run_both(graph)


def test_an_input_transpose_keeping_channels_last_is_read_in_place():
    """Spatial axes swapped: the input is read at the swapped strides."""
    graph = kernel_gradient_graph((2, 5, 7, 6), (3, 3, 6, 12), x_perm=(0, 2, 1, 3),
                                  g_perm=(0, 1, 2, 3))
    step = conv_step(graph)
    assert step.sources[0].buffer is graph.inputs[0]
    assert step.sources[0].strides == (210, 6, 42, 1)
    run_both(graph)


def test_a_conv_through_patches_reads_materialized_transposes():
    options = dataclasses.replace(DEFAULT_OPTIONS, conv_long_direct=False)
    graph = kernel_gradient_graph(*SHAPES[1])
    assert transposes_with_buffers(graph, options) == 2
    run_both(graph, options=options)
