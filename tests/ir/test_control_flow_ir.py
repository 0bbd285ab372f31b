"""Region ops in the IR: the text form (written here by hand), parse errors, the
verifier's signature checks, cost (body x trips), simplification inside bodies."""
import numpy as np
import pytest

import ir
from control_flow_cases import cond_branches, scan_attrs, scan_body, tanh_rnn_body
from ir import Builder, DType, TensorType
from ir.passes.cost import cost
from ir.passes.simplify import simplify

F32 = DType.f32


def t(*shape, dtype=F32):
    return TensorType(shape, dtype)


def scan_graph(length=4, body=None):
    b = Builder("f")
    c, h, xs = b.input(t(3)), b.input(t(3)), b.input(t(length, 3))
    attrs = scan_attrs(F32, length)
    if body is not None:
        attrs["body"] = body
    carry, ys = b.emit("scan", c, h, xs, **attrs)
    b.output(carry, ys)
    return b.build()


EXPECTED_TEXT = """graph @f {
  input %0 : f32[3]
  input %1 : f32[3]
  input %2 : f32[4,3]
  %3, %4 = scan %0, %1, %2 {checkpoint=false, length=4, num_carry=1, num_consts=1, reverse=false} : f32[3], f32[4,3]
    graph @body {
      input %0 : f32[3]
      input %1 : f32[3]
      input %2 : f32[3]
      %3 = mul %1, %0 : f32[3]
      %4 = add %3, %2 : f32[3]
      output %4 : f32[3]
      output %1 : f32[3]
    }
  output %3 : f32[3]
  output %4 : f32[4,3]
}"""


def test_a_scan_prints_its_body_once_indented_and_parses_back():
    graph = scan_graph()
    assert str(graph) == EXPECTED_TEXT
    assert ir.parse(EXPECTED_TEXT) == graph
    assert ir.parse(EXPECTED_TEXT) != scan_graph(body=tanh_rnn_body(F32, (3,)))


def test_nested_regions_round_trip():
    outer_body = Builder("body")
    c, h, x = (outer_body.input(t(3)) for _ in range(3))
    inner = outer_body.emit("scan", c, h, outer_body.broadcast_in_dim(x, shape=(2, 3), dims=(1,)),
                            **scan_attrs(F32, 2))
    outer_body.output(inner[0], inner[1])
    graph = scan_graph(body=outer_body.build())
    text = str(graph)
    assert text.count("graph @body {") == 2 and "        graph @body {" in text
    assert ir.parse(text) == graph
    ir.verify(graph)


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.replace("    graph @body {", "    graph @cond {"), "expected region"),
    (lambda s: s[:s.index("    }")], "missing `}` at the end of a region"),
    (lambda s: s.replace("%3, %4 = scan", "%3 = scan"), "result name"),
    (lambda s: s.replace("reverse=false}", "reverse=false, body=1}"), "region"),
    (lambda s: s.replace("input %2 : f32[4,3]", "input %2 : f32[5,3]"), "leading axis 4"),
])
def test_bad_region_text_is_a_parse_error(edit, message):
    with pytest.raises(ir.ParseError, match=message):
        ir.parse(edit(EXPECTED_TEXT))


def test_the_verifier_checks_region_signatures():
    graph = scan_graph()
    op = graph.ops[0]
    op.attrs["body"] = scan_body(DType.f64)
    with pytest.raises(ir.VerifyError, match=r"region body takes \(f64\[3\].*passes \(f32\[3\]"):
        ir.verify(graph)
    op.attrs["body"] = scan_body(F32, (3,))
    op.attrs["body"].name = "loop"
    with pytest.raises(ir.VerifyError, match="named after its attribute"):
        ir.verify(graph)


def test_cond_rule_needs_a_bool_scalar_and_matching_branches():
    b = Builder("g")
    x = b.input(t(3, dtype=DType.i32))
    with pytest.raises(ir.TypeRuleError, match=r"bool\[\] \(0-d\).*f32\[\]"):
        b.emit("cond", b.input(t()), x, x, **cond_branches(DType.i32))
    branches = cond_branches(DType.i32)
    branches["false_branch"] = cond_branches(DType.i64)["false_branch"]
    with pytest.raises(ir.TypeRuleError, match="false_branch takes"):
        b.emit("cond", b.input(t(dtype=DType.bool)), x, x, **branches)


def test_scan_cost_is_the_body_cost_times_the_trips():
    body_flops = cost(scan_body(F32)).flops
    assert body_flops == 6                      # mul and add on 3 elements
    report = cost(scan_graph(length=7))
    assert report.flops == 7 * body_flops
    assert "(7 x 6 flops)" in str(report)


def test_simplify_works_inside_bodies_and_keeps_their_signature():
    body = Builder("body")
    c, h, x = (body.input(t(3)) for _ in range(3))
    one = body.full((3,), 1.0, F32)
    same = body.add(body.mul(h, one), body.mul(h, one))          # x*1 twice: fold + CSE
    body.output(body.add(same, x), body.neg(body.neg(c)))
    graph = scan_graph(body=body.build())
    simplified = simplify(graph)
    (op,) = simplified.ops
    region = op.attrs["body"]
    assert region.input_types == [t(3)] * 3 and region.output_types == [t(3)] * 2
    assert [o.prim for o in region.ops] == ["add", "add"]
    arrays = [np.arange(3, dtype=np.float32), np.ones(3, np.float32),
              np.arange(12, dtype=np.float32).reshape(4, 3)]
    for got, want in zip(ir.interpret(simplified, *arrays), ir.interpret(graph, *arrays)):
        assert np.array_equal(got, want)
