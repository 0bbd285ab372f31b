"""Tests of ir/passes/cost.py: flop and byte counts against hand counts."""
from __future__ import annotations

import numpy as np
import pytest

from ir import PRIMITIVES, Builder, DType, SourceLoc, TensorType
from ir.passes.cost import COST_RULES, cost

F32, F64, I32 = DType.f32, DType.f64, DType.i32


def single_op_graph(shapes, build, dtype=F32):
    b = Builder("one")
    b.loc = SourceLoc("net.py", 3)
    inputs = [b.input(TensorType(shape, dtype)) for shape in shapes]
    b.output(build(b, *inputs))
    return b.build()


def test_every_primitive_has_a_cost_rule():
    assert set(COST_RULES) == set(PRIMITIVES)


@pytest.mark.parametrize("lhs,rhs,attrs,hand_count", [
    # plain matmul: M=5, K=7, N=3
    ((5, 7), (7, 3), dict(lhs_batch=(), rhs_batch=(), lhs_contract=(1,), rhs_contract=(0,)),
     2 * 5 * 3 * 7),
    # batched: B=4, M=2, K=6, N=9
    ((4, 2, 6), (4, 6, 9),
     dict(lhs_batch=(0,), rhs_batch=(0,), lhs_contract=(2,), rhs_contract=(1,)),
     2 * 4 * 2 * 9 * 6),
    # contraction on the leading lhs axis and trailing rhs axis: K=8, M=3, N=5
    ((8, 3), (5, 8), dict(lhs_batch=(), rhs_batch=(), lhs_contract=(0,), rhs_contract=(1,)),
     2 * 3 * 5 * 8),
    # two contracted axes, K = 2*3: M=4, N=5
    ((4, 2, 3), (2, 3, 5),
     dict(lhs_batch=(), rhs_batch=(), lhs_contract=(1, 2), rhs_contract=(0, 1)),
     2 * 4 * 5 * 6),
    # vector inner product: K=10
    ((10,), (10,), dict(lhs_batch=(), rhs_batch=(), lhs_contract=(0,), rhs_contract=(0,)),
     2 * 10),
    # outer product: K=1 (nothing contracted)
    ((3,), (4,), dict(lhs_batch=(), rhs_batch=(), lhs_contract=(), rhs_contract=()),
     2 * 3 * 4),
])
def test_dot_flops(lhs, rhs, attrs, hand_count):
    graph = single_op_graph([lhs, rhs], lambda b, x, y: b.dot(x, y, **attrs))
    report = cost(graph)
    assert report.flops == report.dot_flops == hand_count
    out = graph.outputs[0].type
    assert report.bytes == 4 * (np.prod(lhs) + np.prod(rhs) + out.size)


@pytest.mark.parametrize("prim", ["exp", "tanh", "neg", "add", "mul", "div", "pow", "lt",
                                  "eq", "max"])
def test_elementwise_ops_count_one_flop_per_element(prim):
    arity = 1 if prim in ("exp", "tanh", "neg") else 2
    graph = single_op_graph([(6, 7)] * arity, lambda b, *xs: getattr(b, prim)(*xs))
    report = cost(graph)
    assert report.flops == 42 and report.dot_flops == 0
    result_bytes = 42 * (1 if prim in ("lt", "eq") else 4)
    assert report.bytes == arity * 42 * 4 + result_bytes
    row = report.per_op[0]
    assert (row.bytes_read, row.bytes_written) == (arity * 168, result_bytes)


def test_select_and_convert_count_one_flop_stop_gradient_none():
    def build(b, x, y):
        picked = b.select(b.gt(x, y), x, y)
        return b.stop_gradient(b.convert(picked, dtype=F64))
    report = cost(single_op_graph([(5,), (5,)], build))
    assert [row.flops for row in report.per_op] == [5, 5, 5, 0]
    assert report.per_op[3].bytes_written == 5 * 8


@pytest.mark.parametrize("shape,axes,hand_count", [
    ((4, 5), (1,), 20 - 4), ((4, 5), (0, 1), 20 - 1), ((2, 3, 4), (0, 2), 24 - 3),
    ((4, 5), (), 0), ((0, 3), (0,), 0),
])
@pytest.mark.parametrize("prim", ["reduce_sum", "reduce_max", "reduce_min"])
def test_reduction_flops(prim, shape, axes, hand_count):
    report = cost(single_op_graph([shape], lambda b, x: getattr(b, prim)(x, axes=axes)))
    assert report.flops == hand_count


@pytest.mark.parametrize("shape,axes", [((32, 10), (1,)), ((4, 5), (0, 1)), ((3, 4), ())])
def test_logsumexp_flops_count_max_sub_exp_add_then_log_add(shape, axes):
    inputs = int(np.prod(shape))
    outputs = int(np.prod([d for i, d in enumerate(shape) if i not in axes]))
    report = cost(single_op_graph([shape], lambda b, x: b.logsumexp(x, axes=axes)))
    assert report.flops == 4 * inputs + 2 * outputs


def test_shape_ops_and_sources_are_free_but_move_bytes():
    def build(b, x):
        t = b.transpose(b.reshape(x, shape=(3, 2)), perm=(1, 0))
        s = b.slice(t, start=(0, 0), stop=(1, 3), stride=(1, 1))
        p = b.pad(s, low=(1, 0), high=(0, 0), interior=(0, 0))
        c = b.concatenate(p, b.broadcast_in_dim(b.scalar(1.0, F32), shape=(2, 3), dims=()), axis=0)
        return b.add(c, b.convert(b.iota(shape=(4, 3), dtype=I32, dimension=0), dtype=F32))
    report = cost(single_op_graph([(2, 3)], build))
    assert report.flops == 12 + 12  # the convert and the add
    written = {row.text.split(" = ")[1]: row.bytes_written for row in report.per_op}
    assert written["constant"] == 4 and written["iota"] == 48 and written["pad"] == 24
    assert report.bytes == sum(row.bytes_read + row.bytes_written for row in report.per_op)


def mlp_forward(n, sizes):
    """x @ W1 + b1 -> tanh -> @ W2 + b2 ... built by hand, no activation at the end."""
    b = Builder("mlp")
    b.loc = SourceLoc("mlp.py", 10)
    h = b.input(TensorType((n, sizes[0]), F32))
    for layer, (d_in, d_out) in enumerate(zip(sizes, sizes[1:])):
        w = b.input(TensorType((d_in, d_out), F32))
        bias = b.input(TensorType((d_out,), F32))
        h = b.dot(h, w, lhs_batch=(), rhs_batch=(), lhs_contract=(1,), rhs_contract=(0,))
        h = b.add(h, b.broadcast_in_dim(bias, shape=(n, d_out), dims=(1,)))
        if layer < len(sizes) - 2:
            h = b.tanh(h)
    b.output(h)
    return b.build()


@pytest.mark.parametrize("n,sizes", [(32, (64, 128, 10)), (7, (5, 3, 11, 2))])
def test_mlp_dot_flops_are_the_textbook_count(n, sizes):
    report = cost(mlp_forward(n, sizes))
    layers = list(zip(sizes, sizes[1:]))
    assert report.dot_flops == sum(2 * n * d_in * d_out for d_in, d_out in layers)
    adds = sum(n * d_out for _, d_out in layers)
    tanhs = sum(n * d_out for _, d_out in layers[:-1])
    assert report.flops == report.dot_flops + adds + tanhs


def test_report_rows_and_table():
    graph = mlp_forward(4, (3, 5, 2))
    report = cost(graph)
    assert [row.index for row in report.per_op] == list(range(len(graph.ops)))
    first = report.per_op[0]
    assert first.text == "%5 = dot" and str(first.type) == "f32[4,5]"
    assert first.loc == SourceLoc("mlp.py", 10)
    assert first.intensity == pytest.approx(first.flops / (first.bytes_read + first.bytes_written))
    table = str(report)
    lines = table.splitlines()
    assert len(lines) == 1 + 2 + len(graph.ops) + 2
    assert "%5 = dot" in table and "mlp.py:10" in table
    assert lines[-1].split()[0] == "total" and f"{report.flops:,}" in lines[-1]
    flops_end = lines[1].index("flops") + len("flops")
    for line, row in zip(lines[3:-2], report.per_op):
        assert line[:flops_end].endswith(f"{row.flops:,}"), "flops column is right-aligned"
    by_prim = {p.prim: p for p in report.by_prim}
    assert by_prim["dot"].count == 2 and by_prim["dot"].flops == report.dot_flops
    assert sum(p.bytes for p in report.by_prim) == report.bytes
    assert str(cost(graph)) == table
