"""Tests of ir/parser.py (and its lexer, ir/lexer.py).

Round trips: `ir.parse(str(g)) == g` and `str(ir.parse(str(g))) == str(g)` for one
graph per primitive and dtype, for special constants, residual graphs and random
graphs. Hand-written text with odd spacing and names parses to the graph a Builder
makes. Malformed text raises ParseError at the offending line and column (the
expected column is where the offending token sits in the text), and randomly
damaged text gives a Graph or a ParseError, nothing else.
"""
from __future__ import annotations

from typing import Callable

import functools
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ir
from graph_strategies import graphs
from control_flow_cases import example as control_flow_example
from ir import Builder, DType, SourceLoc, TensorType, TypeRuleError

LOC = SourceLoc("model.py", 14)


def assert_roundtrip(graph: ir.Graph) -> ir.Graph:
    text = str(graph)
    parsed = ir.parse(text)
    assert parsed == graph, text
    assert str(parsed) == text
    assert ir.verify(parsed) is parsed
    return parsed


# --------------------------------------------------------------------------------------
# one graph per primitive and accepted dtype


def T(shape, dtype):
    return TensorType(tuple(shape), dtype)


def _elementwise(prim: str) -> Callable:
    arity = ir.PRIMITIVES[prim].arity

    def make(b: Builder, d: DType):
        return b.emit(prim, *[b.input(T((2, 3), d)) for _ in range(arity)])
    return make


def _dot(b, d):
    lhs, rhs = b.input(T((2, 3, 4), d)), b.input(T((2, 4, 5), d))
    return b.dot(lhs, rhs, lhs_batch=(0,), rhs_batch=(0,), lhs_contract=(2,), rhs_contract=(1,))


def _concatenate(b, d):
    parts = [b.input(T((n, 3), d)) for n in (2, 1, 0)]
    return b.concatenate(*parts, axis=0)


EXAMPLES: dict[str, Callable] = {
    name: _elementwise(name) for name, prim in ir.PRIMITIVES.items()
    if prim.elementwise and not prim.attrs and name != "select"}
EXAMPLES.update({
    "select": lambda b, d: b.select(b.input(T((4,), DType.bool)), b.input(T((4,), d)),
                                    b.input(T((4,), d))),
    "convert": lambda b, d: b.convert(b.input(T((3,), d)),
                                      dtype=list(DType)[(list(DType).index(d) + 1) % 5]),
    "broadcast_in_dim": lambda b, d: b.broadcast_in_dim(b.input(T((3, 1), d)),
                                                        shape=(2, 3, 4), dims=(1, 2)),
    "reshape": lambda b, d: b.reshape(b.input(T((2, 3), d)), shape=(3, 1, 2)),
    "transpose": lambda b, d: b.transpose(b.input(T((2, 3, 4), d)), perm=(1, 2, 0)),
    "slice": lambda b, d: b.slice(b.input(T((5, 4), d)), start=(1, 0), stop=(5, 3),
                                  stride=(2, 2)),
    "rev": lambda b, d: b.rev(b.input(T((5, 4), d)), dims=(1,)),
    "pad": lambda b, d: b.pad(b.input(T((3,), d)), low=(1,), high=(0,), interior=(2,)),
    "concatenate": _concatenate,
    "reduce_sum": lambda b, d: b.reduce_sum(b.input(T((2, 3, 4), d)), axes=(2, 0)),
    "reduce_max": lambda b, d: b.reduce_max(b.input(T((2, 3, 4), d)), axes=(1,)),
    "logsumexp": lambda b, d: b.logsumexp(b.input(T((2, 3, 4), d)), axes=(0, 2)),
    "reduce_min": lambda b, d: b.reduce_min(b.input(T((2, 0), d)), axes=(0, 1)),
    "dot": _dot,
    "constant": lambda b, d: b.constant(value=np.arange(6).reshape(2, 3).astype(d.numpy)),
    "iota": lambda b, d: b.iota(shape=(2, 3), dtype=d, dimension=0),
    "conv": lambda b, d: b.conv(b.input(T((1, 5, 4, 2), d)), b.input(T((3, 2, 1, 4), d)),
                                strides=(2, 1), padding_low=(1, -1), padding_high=(1, 0),
                                lhs_dilation=(1, 2), rhs_dilation=(2, 1),
                                feature_group_count=2),
    "reduce_window_sum": lambda b, d: b.reduce_window_sum(
        b.input(T((4, 5), d)), window=(2, 3), strides=(2, 1), padding_low=(0, -1),
        padding_high=(1, 1)),
    "reduce_window_max": lambda b, d: b.reduce_window_max(
        b.input(T((4, 5), d)), window=(2, 2), strides=(2, 2), padding_low=(0, 1),
        padding_high=(0, 0)),
    "gather": lambda b, d: b.gather(b.input(T((3, 4), d)), b.input(T((3, 6), DType.i32)),
                                    axis=1),
    "scatter_add": lambda b, d: b.scatter_add(b.input(T((3, 4), d)),
                                              b.input(T((5, 4), DType.i64)),
                                              b.input(T((5, 4), d)), axis=0),
    **{prim: functools.partial(control_flow_example, prim) for prim in ("scan", "cond", "while_loop")},
})


def example_graph(prim: str, dtype: DType) -> ir.Graph:
    b = Builder(f"{prim}_{dtype}")
    b.loc = LOC
    b.output(EXAMPLES[prim](b, dtype))
    return b.build()


def accepted(prim: str, dtype: DType) -> bool:
    try:
        example_graph(prim, dtype)
    except TypeRuleError:
        return False
    return True


PRIM_DTYPES = [(prim, d) for prim in sorted(ir.PRIMITIVES) for d in DType if accepted(prim, d)]


def test_examples_cover_every_primitive():
    assert set(EXAMPLES) == set(ir.PRIMITIVES)
    assert {prim for prim, _ in PRIM_DTYPES} == set(ir.PRIMITIVES)


@pytest.mark.parametrize("prim, dtype", PRIM_DTYPES, ids=[f"{p}-{d}" for p, d in PRIM_DTYPES])
def test_roundtrip_each_primitive(prim, dtype):
    parsed = assert_roundtrip(example_graph(prim, dtype))
    assert all(op.loc == LOC for op in parsed.ops)


def test_changed_text_gives_a_different_graph():
    graph = example_graph("exp", DType.f32)
    text = str(graph)
    assert ir.parse(text.replace("model.py:14", "model.py:15")) != graph
    assert ir.parse(text.replace("@exp_f32", "@other")) != graph
    assert ir.parse(text.replace("  # model.py:14", "")) != graph


# --------------------------------------------------------------------------------------
# constants, shapes, residuals


F32_INFO, F64_INFO = np.finfo(np.float32), np.finfo(np.float64)
SPECIAL_CONSTANTS = [
    np.array([np.nan, -np.nan, np.inf, -np.inf, -0.0, 0.0], np.float32),
    np.array([np.nan, -np.nan, np.inf, -np.inf, -0.0, 0.1], np.float64),
    np.array([F64_INFO.max, -F64_INFO.max, F64_INFO.tiny, 5e-324, 1e300, 1 / 3], np.float64),
    np.array([F32_INFO.max, F32_INFO.tiny, np.float32(1e-45), np.float32(1 / 3)], np.float32),
    np.array([np.iinfo(np.int64).min, np.iinfo(np.int64).max, 0, -1], np.int64),
    np.array([np.iinfo(np.int32).min, np.iinfo(np.int32).max], np.int32),
    np.array([[True, False], [False, True]]),
    np.array(np.nan, np.float32),
    np.array(-7, np.int64),
    np.array(False),
    np.zeros((0,), np.float32),
    np.zeros((3, 0, 2), np.int32),
    np.ones((1, 1, 1), np.float64),
]


@pytest.mark.parametrize("value", SPECIAL_CONSTANTS, ids=lambda v: f"{v.dtype}{list(v.shape)}")
def test_constants_read_back_bit_exact(value):
    b = Builder("consts")
    b.output(b.constant(value=value))
    parsed = assert_roundtrip(b.build())
    got = parsed.ops[0].attrs["value"]
    assert got.dtype == value.dtype and got.shape == value.shape
    assert got.tobytes() == value.tobytes()


@pytest.mark.parametrize("shape", [(), (1,), (0,), (1, 0, 3), (1, 1), (4, 1, 2)])
def test_shapes_0d_size1_size0(shape):
    b = Builder("shapes")
    x = b.input(TensorType(shape, DType.f64))
    b.output(b.reduce_sum(b.neg(x), axes=tuple(range(len(shape)))), x)
    assert_roundtrip(b.build())


def test_residual_inputs_and_outputs():
    b = Builder("backward")
    r1 = b.input(TensorType((3,), DType.f32))
    r2 = b.input(TensorType((), DType.i32))
    g = b.input(TensorType((3,), DType.f32))
    with b.at(LOC):
        y = b.mul(r1, g)
    b.output(y, y, r2)
    graph = b.build()
    graph.residual_inputs = 2
    graph.residual_outputs = 2
    parsed = assert_roundtrip(graph)
    assert (parsed.residual_inputs, parsed.residual_outputs) == (2, 2)


@settings(max_examples=100, deadline=None)
@given(graphs())
def test_roundtrip_random_graphs(graph):
    assert_roundtrip(graph)


# --------------------------------------------------------------------------------------
# hand-written text


HAND_WRITTEN = """
# leading comment, then a blank line

graph   @hand{
\tinput %x : f32[3]   residual
  input %y:f32[ 3 ]

  %10 = add %x,%y : f32[3]   # a comment that is not a location
  %sum = reduce_sum %10 {axes = [ 0 ]} : f32[]  #  my file.py:7
     output %sum : f32 []
  output %10 : f32[3] residual # anything
}
# trailing comment
"""


def hand_written_expected() -> ir.Graph:
    b = Builder("hand")
    x = b.input(TensorType((3,), DType.f32))
    y = b.input(TensorType((3,), DType.f32))
    s = b.add(x, y)
    total = b.reduce_sum(s, axes=(0,), loc=SourceLoc("my file.py", 7))
    b.output(total, s)
    graph = b.build()
    graph.residual_inputs = 1
    graph.residual_outputs = 1
    return graph


def test_hand_written_names_spacing_and_comments():
    assert ir.parse(HAND_WRITTEN) == hand_written_expected()


def test_comment_that_is_not_a_location():
    for comment in ["model.py", "model.py:", "model.py:x", "a:1.5", "a:" + "1" * 5000]:
        op = "%0 = iota {dimension=0, dtype=i32, shape=[2]} : i32[2]"
        text = f"graph @c {{\n  {op}  # {comment}\n}}"
        assert ir.parse(text).ops[0].loc is None


def test_windows_line_endings():
    assert ir.parse(HAND_WRITTEN.replace("\n", "\r\n")) == hand_written_expected()


def test_loose_numbers_in_constants():
    text = ("graph @c {\n %0 = constant {value=[1, +2.5, .5, 1e2, -inf, nan]} : f64[6]\n"
            " output %0 : f64[6]\n}")
    value = ir.parse(text).ops[0].attrs["value"]
    expected = np.array([1.0, 2.5, 0.5, 100.0, -np.inf, np.nan])
    np.testing.assert_array_equal(value, expected)


# --------------------------------------------------------------------------------------
# malformed text: ParseError at the right line and column


def body(*lines: str) -> str:
    """A graph `@t` with input %0 : f32[3] and the given body lines (line 3 onward)."""
    return "\n".join(["graph @t {", "  input %0 : f32[3]", *("  " + l for l in lines), "}"])


# (text, line, offending text on that line: its first occurrence, or (text, n) for the
#  n-th, or None for the end of the line; part of the message)
BAD_TEXTS = [
    ("", 1, None, "expected `graph @name {`"),
    ("  input %0 : f32[3]\n}", 1, "input", "expected `graph @name {`, found `input`"),
    ("graph t {\n}", 1, "t", "graph name"),
    (body("%1 = expp %0 : f32[3]", "output %1 : f32[3]"), 3, "expp", "unknown primitive"),
    (body("%1 = exp %0 : f16[3]"), 3, "f16", "unknown dtype"),
    (body("%1 = exp %0 : f32[3,]"), 3, "]", "dimension"),
    (body("%1 = exp %0 : f32[-3]"), 3, "-3", ">= 0"),
    (body("%1 = exp %5 : f32[3]"), 3, "%5", "used before it is defined"),
    (body("%0 = exp %0 : f32[3]"), 3, "%0", "already defined on line 2"),
    (body("%1 = exp %0 f32[3]"), 3, "f32", "expected `:`"),
    (body("%1 = reduce_sum %0 {axes=[0, *]} : f32[]"), 3, "*", "unexpected character"),
    (body("%1 = reduce_sum %0 {axes=} : f32[]"), 3, "}", "attribute value"),
    (body("%1 = reduce_sum %0 {axes=0} : f32[]"), 3, "0}", "list of ints"),
    (body("%1 = reduce_sum %0 {axes=[0.0]} : f32[]"), 3, "0.0", "expects an int"),
    (body("%1 = convert %0 {dtype=3} : f32[3]"), 3, "3", "expects a dtype"),
    (body("%1 = convert %0 {dtype=f16} : f32[3]"), 3, "f16", "expects a dtype"),
    (body("%1 = reduce_sum %0 {axis=[0]} : f32[]"), 3, "axis", "no attribute 'axis'"),
    (body("%1 = reduce_sum %0 {axes=[0], axes=[0]} : f32[]"), 3, "axes=[0]}", "given twice"),
    (body("%1 = reduce_sum %0 : f32[]"), 3, "reduce_sum", "needs attribute(s) axes"),
    (body("%1 = reduce_sum %0 {axes=[0, 1} : f32[]"), 3, "}", "expected `,` or `]`"),
    (body("%1 = reduce_sum %0 {axes=[0, 1"), 3, None, "unterminated list"),
    (body("%1 = reduce_sum %0 {axes=[3]} : f32[]"), 3, "reduce_sum", "out of range"),
    (body("%1 = exp %0 : f32[4]"), 3, "f32[4]", "differs from f32[3]"),
    (body("%1 = add %0, %0, %0 : f32[3]"), 3, "add", "takes 2 operand"),
    (body("%1 = exp %0 : f32[3] extra"), 3, "extra", "expected the end of the line"),
    (body("%1 = exp %0 : f32[3]", "output %1 : f64[3]"), 4, "f64", "annotated f64[3]"),
    (body("output %7 : f32[3]"), 3, "%7", "used before it is defined"),
    ("graph @t {\n  input %0 : f32[3]\n  input %1 : f32[3] residual\n}", 3, "residual",
     "residual inputs must be the first"),
    (body("output %0 : f32[3] residual", "output %0 : f32[3]"), 4, "output",
     "residual outputs must be the last"),
    (body("output %0 : f32[3] resid"), 3, "resid", "`residual` or the end"),
    (body("output %0 : f32[3]", "%1 = exp %0 : f32[3]"), 4, "%1", "before the outputs"),
    (body("%1 = exp %0 : f32[3]", "input %2 : f32[3]"), 4, "input", "inputs must come before"),
    ("graph @t {\n  input %0 : f32[3]\n  output %0 : f32[3]", 3, None, "missing `}`"),
    (body() + "\nfoo", 4, "foo", "after the end of the graph"),
    (body() + " }", 3, ("}", 2), "expected the end of the line"),
    (body("%1 = constant {value=[1.0, 2.0]} : f32[3]"), 3, "[1.0", "has 2 element(s)"),
    (body("%1 = constant {value=[1.5]} : i32[1]"), 3, "1.5", "expects an int"),
    (body("%1 = constant {value=1} : bool[]"), 3, "1}", "true or false"),
    (body("%1 = constant {value=2147483648} : i32[]"), 3, "2147483648", "out of range for i32"),
    (body("%1 = constant {value=[1e39]} : f32[1]"), 3, "1e39", "out of range for f32"),
    (body("%1 = constant {value=1e999} : f64[]"), 3, "1e999", "out of range for f64"),
    (body("%1 = constant {value=[[1.0]]} : f32[1]"), 3, "[1.0]", "found a list"),
    (body("%1 = constant {value=1.2.3} : f32[]"), 3, "1.2.3", "malformed number"),
    (body("%1 = constant {value=1e} : f32[]"), 3, "1e", "malformed number"),
    (body("%1 = constant {value=-infinity} : f32[]"), 3, "-infinity", "malformed number"),
    (body("% = exp %0 : f32[3]"), 3, "%", "value name after `%`"),
    (body("%1 = exp %0 : f32[" + "7" * 5000 + "]"), 3, "7", "too long"),
    (body("%1 = constant {value=" + "[" * 5000 + "} : f32[]"), 3, ("[", 33), "nest deeper"),
    (body("exp %0"), 3, "exp", "expected `input`, `output`"),
]


@pytest.mark.parametrize("text, line, offending, message", BAD_TEXTS,
                         ids=[f"{i}-{case[3][:24]}" for i, case in enumerate(BAD_TEXTS)])
def test_parse_errors(text, line, offending, message):
    with pytest.raises(ir.ParseError) as info:
        ir.parse(text)
    error = info.value
    source_line = text.split("\n")[line - 1]
    column = len(source_line) + 1
    if offending is not None:
        token, nth = offending if isinstance(offending, tuple) else (offending, 1)
        column = -1
        for _ in range(nth):
            column = source_line.index(token, column + 1)
        column += 1
    assert message in error.detail, str(error)
    assert (error.line, error.column) == (line, column), str(error)
    assert str(error).startswith(f"{line}:{column}: ")


def test_non_string_input_is_a_parse_error():
    with pytest.raises(ir.ParseError):
        ir.parse(b"graph @t {\n}")


# --------------------------------------------------------------------------------------
# damaged text never raises anything but ParseError


NOISE = "%@{}[],:=#-+.0123456789abefilnrstux _\n\t"


@st.composite
def damaged_texts(draw):
    text = str(draw(graphs(max_ops=4)))
    rnd = draw(st.randoms(use_true_random=True))   # uniform positions (integers() favours 0)
    for _ in range(draw(st.integers(1, 3))):
        position = rnd.randrange(len(text) + 1)
        kind = draw(st.sampled_from(["delete", "insert", "replace"]))
        char = draw(st.sampled_from(NOISE) | st.characters())
        if kind == "delete":
            text = text[:position] + text[position + 1:]
        elif kind == "insert":
            text = text[:position] + char + text[position:]
        else:
            text = text[:position] + char + text[position + 1:]
    return text


@settings(max_examples=200, deadline=None)
@given(damaged_texts())
def test_damaged_text_gives_graph_or_parse_error(text):
    try:
        graph = ir.parse(text)
    except ir.ParseError as error:
        assert error.line >= 1 and error.column >= 1
        return
    assert ir.verify(graph) is graph
