"""Tests of ir/printer.py: the text of each primitive, types, attributes, source
locations, residual marks and byte counts.

Expected op lines are written by hand from the format in docs/ARCHITECTURE.md
(`%N = prim %a, %b {k=v, ...} : T  # file:line`), never copied from output.
"""
from __future__ import annotations

import numpy as np
import pytest

import ir
from control_flow_cases import cond_branches, scan_attrs, while_regions
from ir import Builder, DType, SourceLoc, TensorType

LOC = SourceLoc("model.py", 14)


def tensor_type(text: str) -> TensorType:
    """`f32[2,3]` -> TensorType, written here independently of ir.parse."""
    dtype, dims = text.rstrip("]").split("[")
    shape = tuple(int(d) for d in dims.split(",")) if dims else ()
    return TensorType(shape, DType.from_name(dtype))


def one_op_text(operand_types: list[str], prim: str, attrs: dict) -> str:
    b = Builder("t")
    operands = [b.input(tensor_type(t)) for t in operand_types]
    b.loc = LOC
    emitted = b.emit(prim, *operands, **attrs)
    b.output(*(emitted if isinstance(emitted, tuple) else (emitted,)))
    return str(b.build())


# (operand types, primitive, attributes as given to the builder, expected op line)
OP_LINES = [
    (["f32[2,3]"], "exp", {}, "%1 = exp %0 : f32[2,3]"),
    (["f64[4]"], "log", {}, "%1 = log %0 : f64[4]"),
    (["f32[]"], "tanh", {}, "%1 = tanh %0 : f32[]"),
    (["f32[0,3]"], "sqrt", {}, "%1 = sqrt %0 : f32[0,3]"),
    (["f64[1]"], "sin", {}, "%1 = sin %0 : f64[1]"),
    (["f32[2]"], "cos", {}, "%1 = cos %0 : f32[2]"),
    (["i32[3]"], "neg", {}, "%1 = neg %0 : i32[3]"),
    (["i64[2,2]"], "abs", {}, "%1 = abs %0 : i64[2,2]"),
    (["bool[2]"], "stop_gradient", {}, "%1 = stop_gradient %0 : bool[2]"),
    (["f32[2,3]", "f32[2,3]"], "add", {}, "%2 = add %0, %1 : f32[2,3]"),
    (["i32[]", "i32[]"], "sub", {}, "%2 = sub %0, %1 : i32[]"),
    (["f64[3]", "f64[3]"], "mul", {}, "%2 = mul %0, %1 : f64[3]"),
    (["i64[2]", "i64[2]"], "div", {}, "%2 = div %0, %1 : i64[2]"),
    (["f32[1,1]", "f32[1,1]"], "max", {}, "%2 = max %0, %1 : f32[1,1]"),
    (["i32[0]", "i32[0]"], "min", {}, "%2 = min %0, %1 : i32[0]"),
    (["f32[3]", "f32[3]"], "pow", {}, "%2 = pow %0, %1 : f32[3]"),
    (["f32[2]", "f32[2]"], "lt", {}, "%2 = lt %0, %1 : bool[2]"),
    (["i32[]", "i32[]"], "le", {}, "%2 = le %0, %1 : bool[]"),
    (["f64[1]", "f64[1]"], "gt", {}, "%2 = gt %0, %1 : bool[1]"),
    (["i64[3]", "i64[3]"], "ge", {}, "%2 = ge %0, %1 : bool[3]"),
    (["bool[2]", "bool[2]"], "eq", {}, "%2 = eq %0, %1 : bool[2]"),
    (["f32[2]", "f32[2]"], "ne", {}, "%2 = ne %0, %1 : bool[2]"),
    (["bool[2]", "f32[2]", "f32[2]"], "select", {}, "%3 = select %0, %1, %2 : f32[2]"),
    (["f32[2,3]"], "convert", {"dtype": np.int32}, "%1 = convert %0 {dtype=i32} : i32[2,3]"),
    (["f32[3]"], "broadcast_in_dim", {"shape": [2, 3], "dims": [1]},
     "%1 = broadcast_in_dim %0 {dims=[1], shape=[2, 3]} : f32[2,3]"),
    (["f32[]"], "broadcast_in_dim", {"shape": (), "dims": ()},
     "%1 = broadcast_in_dim %0 {dims=[], shape=[]} : f32[]"),
    (["f32[2,3]"], "reshape", {"shape": (3, 2)}, "%1 = reshape %0 {shape=[3, 2]} : f32[3,2]"),
    (["f32[2,3,4]"], "transpose", {"perm": (2, 0, 1)},
     "%1 = transpose %0 {perm=[2, 0, 1]} : f32[4,2,3]"),
    (["f32[5]"], "slice", {"stride": (2,), "start": (1,), "stop": (5,)},
     "%1 = slice %0 {start=[1], stop=[5], stride=[2]} : f32[2]"),
    (["f32[2,3]"], "rev", {"dims": (1,)}, "%1 = rev %0 {dims=[1]} : f32[2,3]"),
    (["f32[3]"], "pad", {"low": (2,), "interior": (1,), "high": (1,)},
     "%1 = pad %0 {high=[1], interior=[1], low=[2]} : f32[8]"),
    (["f32[2,3]", "f32[4,3]"], "concatenate", {"axis": 0},
     "%2 = concatenate %0, %1 {axis=0} : f32[6,3]"),
    (["f32[2,3]"], "reduce_sum", {"axes": (1,)}, "%1 = reduce_sum %0 {axes=[1]} : f32[2]"),
    (["i32[2,3]"], "reduce_max", {"axes": (0, 1)}, "%1 = reduce_max %0 {axes=[0, 1]} : i32[]"),
    (["f64[4]"], "reduce_min", {"axes": ()}, "%1 = reduce_min %0 {axes=[]} : f64[4]"),
    (["f32[2,3]"], "logsumexp", {"axes": (1,)}, "%1 = logsumexp %0 {axes=[1]} : f32[2]"),
    (["f32[2,3]", "f32[3,4]"], "dot",
     {"rhs_contract": (0,), "lhs_contract": (1,), "rhs_batch": (), "lhs_batch": ()},
     "%2 = dot %0, %1 {lhs_batch=[], lhs_contract=[1], rhs_batch=[], rhs_contract=[0]}"
     " : f32[2,4]"),
    ([], "constant", {"value": np.array([1.5, -2.0], np.float32)},
     "%0 = constant {value=[1.5, -2.0]} : f32[2]"),
    ([], "constant", {"value": np.array(-2**63, np.int64)},
     "%0 = constant {value=-9223372036854775808} : i64[]"),
    ([], "constant", {"value": np.array([[True], [False]])},
     "%0 = constant {value=[true, false]} : bool[2,1]"),
    ([], "constant", {"value": np.zeros((0, 2), np.float64)},
     "%0 = constant {value=[]} : f64[0,2]"),
    ([], "iota", {"shape": (2, 3), "dtype": DType.i32, "dimension": 1},
     "%0 = iota {dimension=1, dtype=i32, shape=[2, 3]} : i32[2,3]"),
    (["f32[1,5,5,2]", "f32[3,3,2,4]"], "conv",
     {"strides": (2, 2), "padding_low": (1, 1), "padding_high": (1, 1), "lhs_dilation": (1, 1),
      "rhs_dilation": (1, 1), "feature_group_count": 1},
     "%2 = conv %0, %1 {feature_group_count=1, lhs_dilation=[1, 1], padding_high=[1, 1], "
     "padding_low=[1, 1], rhs_dilation=[1, 1], strides=[2, 2]} : f32[1,3,3,4]"),
    (["f32[4,6]"], "reduce_window_sum",
     {"window": (2, 3), "strides": (2, 3), "padding_low": (0, 0), "padding_high": (0, 0)},
     "%1 = reduce_window_sum %0 {padding_high=[0, 0], padding_low=[0, 0], strides=[2, 3], "
     "window=[2, 3]} : f32[2,2]"),
    (["i32[5]"], "reduce_window_max",
     {"window": (2,), "strides": (1,), "padding_low": (1,), "padding_high": (0,)},
     "%1 = reduce_window_max %0 {padding_high=[0], padding_low=[1], strides=[1], "
     "window=[2]} : i32[5]"),
    (["f32[7,3]", "i64[2,3]"], "gather", {"axis": 0},
     "%2 = gather %0, %1 {axis=0} : f32[2,3]"),
    (["f32[7,3]", "i32[2,3]", "f32[2,3]"], "scatter_add", {"axis": 0},
     "%3 = scatter_add %0, %1, %2 {axis=0} : f32[7,3]"),
    # control flow: several results, regions printed below the line (test_control_flow_ir)
    (["f32[3]", "f32[3]", "f32[4,3]"], "scan", scan_attrs(DType.f32, 4),
     "%3, %4 = scan %0, %1, %2 {checkpoint=false, length=4, num_carry=1, num_consts=1, "
     "reverse=false} : f32[3], f32[4,3]"),
    (["bool[]", "i32[3]", "i32[3]"], "cond", cond_branches(DType.i32),
     "%3, %4 = cond %0, %1, %2 : i32[3], i32[3]"),
    (["f64[3]", "i32[]"], "while_loop", while_regions(DType.f64),
     "%2, %3 = while_loop %0, %1 {num_consts=0} : f64[3], i32[]"),
]


def test_every_primitive_has_a_printed_line():
    assert {case[1] for case in OP_LINES} == set(ir.PRIMITIVES)


@pytest.mark.parametrize("operand_types, prim, attrs, expected", OP_LINES,
                         ids=[f"{case[1]}-{i}" for i, case in enumerate(OP_LINES)])
def test_op_line(operand_types, prim, attrs, expected):
    lines = one_op_text(operand_types, prim, attrs).split("\n")
    assert f"  {expected}  # model.py:14" in lines


def test_whole_graph_layout():
    b = Builder("loss")
    x = b.input(TensorType((32, 64), DType.f32))
    w = b.input(TensorType((64, 10), DType.f32))
    b.loc = SourceLoc("model.py", 3)
    h = b.dot(x, w, lhs_batch=(), rhs_batch=(), lhs_contract=(1,), rhs_contract=(0,))
    b.loc = None
    y = b.tanh(h)
    b.output(y, h)
    lines = str(b.build()).split("\n")
    assert lines[0] == "graph @loss {"
    assert lines[1] == "  input %0 : f32[32,64]"
    assert lines[2] == "  input %1 : f32[64,10]"
    assert lines[3].startswith("  %2 = dot %0, %1 {") and lines[3].endswith("  # model.py:3")
    assert lines[4] == "  %3 = tanh %2 : f32[32,10]"   # no location, no comment
    assert lines[5] == "  output %3 : f32[32,10]"
    assert lines[6] == "  output %2 : f32[32,10]"
    assert lines[7] == "}"
    assert len(lines) == 8


def test_values_numbered_in_definition_order_inputs_first():
    b = Builder("order")
    x = b.input(TensorType((3,), DType.f32))
    e = b.exp(x)
    y = b.input(TensorType((3,), DType.f32))   # added after an op, still numbered first
    b.output(b.add(e, y))
    lines = str(b.build()).split("\n")
    assert lines[1:5] == ["  input %0 : f32[3]", "  input %1 : f32[3]",
                          "  %2 = exp %0 : f32[3]", "  %3 = add %2, %1 : f32[3]"]


def test_residual_marks_bytes_and_source():
    b = Builder("fwd")
    x = b.input(TensorType((32, 10), DType.f32))
    r = b.input(TensorType((5,), DType.i64))
    with b.at(SourceLoc("train.py", 9)):
        t = b.tanh(x)
    b.output(t, t, r)
    graph = b.build()
    graph.residual_inputs = 1
    graph.residual_outputs = 2
    lines = str(graph).split("\n")
    assert lines[1] == "  input %0 : f32[32,10] residual"
    assert lines[2] == "  input %1 : i64[5]"
    assert lines[4] == "  output %2 : f32[32,10]"
    assert lines[5] == f"  output %2 : f32[32,10] residual  # {32 * 10 * 4} bytes, from train.py:9"
    # an input passed through as a residual has no source line
    assert lines[6] == f"  output %1 : i64[5] residual  # {5 * 8} bytes, a graph input (not copied)"


@pytest.mark.parametrize("dtype, value, text", [
    (np.float32, 0.1, "0.1"),
    (np.float64, 0.1, "0.1"),
    (np.float32, 1e-45, "1e-45"),
    (np.float64, 2.0, "2.0"),
    (np.float64, float("inf"), "inf"),
    (np.float32, -float("inf"), "-inf"),
    (np.float64, float("nan"), "nan"),
    (np.float64, -float("nan"), "-nan"),
    (np.float32, -0.0, "-0.0"),
    (np.int32, -2**31, "-2147483648"),
    (np.bool_, True, "true"),
])
def test_constant_scalars_print_exactly(dtype, value, text):
    printed = one_op_text([], "constant", {"value": np.array(value, dtype)})
    assert "{value=" + text + "}" in printed


def test_negative_nan_from_division_keeps_its_sign():
    with np.errstate(invalid="ignore"):
        nan = np.array([0.0], np.float32) / np.float32(0.0)
    printed = one_op_text([], "constant", {"value": nan})
    assert ("{value=[-nan]}" if np.signbit(nan[0]) else "{value=[nan]}") in printed
    parsed = ir.parse(printed).ops[0].attrs["value"]
    assert parsed.tobytes() == nan.tobytes()
