"""The tracing internals transforms build on: trace_to_graph, nested contexts, lifting
captured outer values, bind, reverse_passes, source locations."""
from __future__ import annotations

import numpy as np
import pytest

import ir
import propc as pc
from ir import DType
from propc import tracing
from propc.signature import LeafSpec
from frontend_helpers import assert_same, run, sample


def test_trace_to_graph_fields():
    traced = tracing.trace_to_graph(lambda p, n: ({"y": p[0] * n}, p[1].sum()),
                                    ((pc.ShapeDtype((2, 3)), np.ones(3, np.int32)), 2.0))
    assert traced.graph.name == "lambda"
    assert traced.in_leaves == [LeafSpec((2, 3), DType.f32), LeafSpec((3,), DType.i32),
                                LeafSpec((), DType.f32, weak=True)]
    assert traced.captured == [] and traced.reverse_passes == []
    assert traced.out_weak == [False, False]
    assert [str(t) for t in traced.graph.output_types] == ["f32[2,3]", "i64[]"]
    assert str(traced.out_tree) == "({'y': *}, *)"
    assert tracing.current_trace() is None


def test_ops_carry_this_files_lines():
    graph = pc.trace(lambda x: pc.exp(x) * 2.0 + x.sum(), pc.ShapeDtype((3,)))
    assert graph.ops and all(op.loc is not None and op.loc.file == "test_tracing.py"
                             for op in graph.ops)


def _inner_with_capture(x, y):
    """Trace a closure over the outer Tensor y in a nested context, then inline it."""
    traced = tracing.trace_to_graph(lambda a: a * y + y, (x,), name="inner")
    assert len(traced.captured) == 1 and traced.captured[0] is y  # lifted once
    assert len(traced.graph.inputs) == 2
    (out,) = tracing.bind(traced.graph, [x] + traced.captured)
    return out


def test_nested_trace_lifts_captured_outer_values():
    x, y = sample((3,), np.float32, 1), sample((3,), np.float32, 2)
    assert_same(run(_inner_with_capture, x, y), x * y + y, "captured closure")


def test_capture_through_two_levels():
    def outer(x, y):
        def middle(a):
            traced = tracing.trace_to_graph(lambda b: b * y, (a,), name="inner")
            # y belongs to the outermost trace: the middle trace lifts it when binding
            return tracing.bind(traced.graph, [a] + traced.captured)[0]
        traced = tracing.trace_to_graph(middle, (x,), name="middle")
        assert [t is y for t in traced.captured] == [True]
        return tracing.bind(traced.graph, [x] + traced.captured)[0]

    x, y = sample((2, 2), np.float64, 3), sample((2, 2), np.float64, 4)
    assert_same(run(outer, x, y), x * y, "two-level capture")


def test_reverse_passes_propagate_to_the_parent():
    marker = (ir.Graph("forward"), ir.Graph("backward"))

    def outer(x):
        def inner(a):
            tracing.current_trace().reverse_passes.append(marker)
            return a
        traced = tracing.trace_to_graph(inner, (x,))
        assert traced.reverse_passes == [marker]
        assert tracing.current_trace().reverse_passes == [marker]
        return x

    run(outer, np.ones(2, np.float32))


def test_bind_checks_types_and_accepts_numbers():
    graph = pc.trace(lambda a, b: a * b, pc.ShapeDtype((2,)), 1.0)

    def use(x):
        return tracing.bind(graph, [x, 3.0], weak=[False])[0]

    x = sample((2,), np.float32, 5)
    assert_same(run(use, x), x * np.float32(3.0), "bind with a number")
    with pytest.raises(TypeError, match="input 0 is f32"):
        run(lambda v: tracing.bind(graph, [v, 1.0]), np.ones(2, np.float64))


def test_interpret_inside_a_trace_inlines():
    inner = pc.interpret(lambda a: a * 2)
    x = sample((3,), np.float32, 6)
    assert_same(run(lambda v: inner(v) + 1, x), x * 2 + 1, "nested interpret")


def test_functions_outside_any_trace_run_eagerly():
    x = sample((2, 3), np.float32, 7)
    assert_same(pc.exp(x), np.exp(x), "eager exp")
    assert_same(pc.sum(x, axis=-1), x.sum(axis=-1), "eager sum")
    assert_same(pc.where(x > 0, x, 0.0), np.where(x > 0, x, np.float32(0)), "eager where")
    assert tracing.current_trace() is None
