"""Tests of ir/verify.py: malformed graphs built by hand raise VerifyError naming
the op (as it prints: `op #1 (%3 = add %2, %1)`) and what is wrong; every random
well-typed graph passes; randomly broken graphs never leak another exception.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ir
from graph_strategies import MAKERS, graphs
from ir import Builder, DType, Op, SourceLoc, TensorType, Value

F32, I32 = DType.f32, DType.i32
LOC = SourceLoc("model.py", 3)


def base_graph():
    """inputs %0 %1 : f32[3]; op #0 %2 = exp %0; op #1 %3 = add %2, %1;
    op #2 %4 = reduce_sum %3 {axes=[0]}; output %4."""
    b = Builder("v")
    x = b.input(TensorType((3,), F32))
    y = b.input(TensorType((3,), F32))
    with b.at(LOC):
        e = b.exp(x)
        s = b.add(e, y)
        r = b.reduce_sum(s, axes=(0,))
    b.output(r)
    return b.build()


def swap_first_ops(g):
    g.ops[0], g.ops[1] = g.ops[1], g.ops[0]


def insert_op(g, prim, operands, attrs, shape=(3,), dtype=F32):
    g.ops.insert(1, Op(prim, operands, attrs, TensorType(shape, dtype)))


def new_input(g, shape, dtype):
    value = Value(TensorType(shape, dtype))
    g.inputs.append(value)
    return value


def set_attr(index, name, value):
    def mutate(g):
        g.ops[index].attrs[name] = value
    return mutate


def set_result_type(g):
    g.ops[0].result.type = TensorType((4,), F32)


def wrong_producer(g):
    g.ops[1].result.producer = g.ops[0]


def bad_residuals(count_in, count_out):
    def mutate(g):
        g.residual_inputs, g.residual_outputs = count_in, count_out
    return mutate


# (mutation of base_graph(), fragments the message must contain)
OP_ERRORS = [
    ("use before define", swap_first_ops,
     ["op #0 (%2 = add %3, %1) at model.py:3", "operand 0 (f32[3]) is used before"]),
    ("defined twice", lambda g: g.ops.append(g.ops[0]),
     ["op #3 (%2 = exp %0)", "already defined"]),
    ("unknown prim", lambda g: setattr(g.ops[0], "prim", "expp"),
     ["op #0 (%2 = expp %0)", "unknown primitive 'expp'"]),
    ("wrong arity", lambda g: insert_op(g, "add", [g.inputs[0]], {}),
     ["op #1 (%3 = add %0)", "takes 2 operand(s), got 1"]),
    ("missing attr", lambda g: g.ops[2].attrs.clear(),
     ["op #2 (%4 = reduce_sum %3)", "missing attribute(s) axes"]),
    ("non-canonical attr", set_attr(2, "axes", [0]),
     ["op #2 (%4 = reduce_sum %3)", "axes=[0] is not canonical"]),
    ("numpy dtype attr", lambda g: insert_op(g, "convert", [g.inputs[0]],
                                             {"dtype": np.dtype(np.int32)}, dtype=I32),
     ["op #1 (%3 = convert %0)", "not canonical"]),
    ("unknown attr", set_attr(0, "foo", 1),
     ["op #0 (%2 = exp %0)", "unexpected attribute 'foo'"]),
    ("wrong result type", set_result_type,
     ["op #0 (%2 = exp %0)", "result type is f32[4] but exp of f32[3] gives f32[3]"]),
    ("operand shapes differ",
     lambda g: insert_op(g, "add", [g.inputs[0], new_input(g, (4,), F32)], {}),
     ["op #1 (%4 = add %0, %2)", "identical types", "f32[3], f32[4]"]),
    ("operand dtypes differ",
     lambda g: insert_op(g, "mul", [g.inputs[0], new_input(g, (3,), I32)], {}),
     ["op #1 (%4 = mul %0, %2)", "f32[3], i32[3]"]),
    ("float op on ints", lambda g: insert_op(g, "exp", [new_input(g, (3,), I32)], {}, dtype=I32),
     ["op #1 (%4 = exp %2)", "needs float operands"]),
    ("wrong producer", wrong_producer, ["op #1 (%3 = add %2, %1)", "producer is not this op"]),
    ("operand from elsewhere", lambda g: insert_op(g, "neg", [Value(TensorType((3,), F32))], {}),
     ["op #1 (%3 = neg %?)", "used before it is defined"]),
    ("not a value", lambda g: insert_op(g, "neg", [np.zeros(3)], {}),
     ["op #1 (%3 = neg %?)", "operand 0 is not an ir.Value"]),
    ("unsupported constant dtype", lambda g: insert_op(g, "constant", [],
                                                       {"value": np.zeros(3, np.float16)}),
     ["op #1 (%3 = constant)", "unsupported dtype float16"]),
    ("bad perm", lambda g: insert_op(g, "transpose", [g.inputs[0]], {"perm": (1,)}),
     ["op #1 (%3 = transpose %0)", "not a permutation"]),
    ("bad loc", lambda g: setattr(g.ops[2], "loc", "model.py:3"),
     ["op #2 (%4 = reduce_sum %3)", "loc must be a SourceLoc"]),
    ("not an op", lambda g: g.ops.append("exp"), ["op #3 is not an ir.Op but str"]),
]

GRAPH_ERRORS = [
    ("output undefined", lambda g: g.outputs.append(Value(TensorType((3,), F32))),
     ["output #1 (f32[3]) is not defined"]),
    ("input listed twice", lambda g: g.inputs.append(g.inputs[0]),
     ["input #2 (f32[3]) is listed twice"]),
    ("op result as input", lambda g: g.inputs.append(g.ops[0].result),
     ["input #2 (f32[3]) is the result of op 'exp'"]),
    ("too many residual inputs", bad_residuals(3, 0), ["residual_inputs=3 is out of range"]),
    ("negative residual outputs", bad_residuals(0, -1), ["residual_outputs=-1 is out of range"]),
    ("too many residual outputs", bad_residuals(0, 2), ["residual_outputs=2", "1 outputs"]),
    ("residual count not an int", bad_residuals(True, 0), ["residual_inputs must be an int"]),
    ("outputs not a list", lambda g: setattr(g, "outputs", None), ["graph.outputs must be a list"]),
    ("unprintable name", lambda g: setattr(g, "name", "my graph"), ["graph name 'my graph'"]),
]


@pytest.mark.parametrize("name, mutate, fragments", OP_ERRORS + GRAPH_ERRORS,
                         ids=[case[0] for case in OP_ERRORS + GRAPH_ERRORS])
def test_malformed_graph(name, mutate, fragments):
    graph = base_graph()
    assert ir.verify(graph) is graph
    mutate(graph)
    with pytest.raises(ir.VerifyError) as info:
        ir.verify(graph)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_verify_error_is_an_ir_error_and_value_error():
    graph = base_graph()
    graph.ops[0].prim = "nope"
    with pytest.raises(ValueError):
        ir.verify(graph)
    with pytest.raises(ir.IRError):
        ir.verify(graph)


def test_not_a_graph():
    with pytest.raises(ir.VerifyError, match="expected an ir.Graph"):
        ir.verify("graph @t {}")


def test_graph_with_inputs_as_outputs_and_no_ops_is_fine():
    b = Builder("id")
    x = b.input(TensorType((), DType.bool))
    b.output(x, x)
    graph = b.build()
    graph.residual_inputs = 1
    graph.residual_outputs = 2
    assert ir.verify(graph) is graph


# --------------------------------------------------------------------------------------
# random graphs


def test_strategies_have_a_maker_per_primitive():
    assert set(MAKERS) == set(ir.PRIMITIVES)


@settings(max_examples=100, deadline=None)
@given(graphs())
def test_random_graphs_verify(graph):
    text = str(graph)
    assert ir.verify(graph) is graph
    assert str(graph) == text   # verify does not change the graph


MUTATIONS = ["shuffle", "drop", "duplicate", "swap_operand", "retype", "attr"]


@settings(max_examples=100, deadline=None)
@given(graphs(max_ops=5), st.sampled_from(MUTATIONS), st.randoms(use_true_random=True))
def test_broken_random_graphs_raise_only_verify_error(graph, mutation, rnd):
    """Random structural damage: verify raises VerifyError or accepts; when it
    accepts, the graph is still sound enough to print and read back."""
    ops = graph.ops
    values = list(graph.inputs) + [op.result for op in ops]
    op = rnd.choice(ops)
    if mutation == "shuffle":
        rnd.shuffle(ops)
    elif mutation == "drop":
        ops.remove(op)
    elif mutation == "duplicate":
        ops.insert(rnd.randrange(len(ops) + 1), op)
    elif mutation == "swap_operand" and op.operands:
        position = rnd.randrange(len(op.operands))
        op.operands = op.operands[:position] + (rnd.choice(values),) + op.operands[position + 1:]
    elif mutation == "retype":
        op.result.type = rnd.choice(values).type
    elif mutation == "attr" and op.attrs:
        name = rnd.choice(sorted(op.attrs))
        op.attrs[name] = rnd.choice([0, 1.5, True, (), (0,), [0], DType.f32, np.zeros(2)])
    try:
        ir.verify(graph)
    except ir.VerifyError:
        return
    assert ir.parse(str(graph)) == graph
