"""One test per bug the reliability checks (tests/fuzz, tests/reliability,
tools/fuzz.py) found, named after the bug. Each failed before its fix."""
from __future__ import annotations

import gc
import os

import numpy as np
import pytest

import codegen
import ir
from propc.compile import compile


def test_regression_parser_deeply_nested_list_recursion_error():
    """`value=[[[[...` 5000 deep overflowed the parser's recursion (RecursionError)
    instead of raising ParseError."""
    text = "graph @g {\n  %0 = constant {value=" + "[" * 5000 + "} : f32[]\n}"
    try:
        ir.parse(text)
    except ir.ParseError as err:
        assert err.line == 2 and "nest" in str(err)
    else:
        raise AssertionError("a 5000-deep attribute list parsed")


def test_regression_unaligned_input_rejected_by_compiled_call():
    """A contiguous but unaligned float32 view (np.frombuffer at an odd offset) was
    passed through uncopied and the native call refused it with a ValueError; SPEC
    says such arrays are accepted (copied)."""
    raw = np.zeros(4 * 6 + 1, np.uint8)
    unaligned = np.frombuffer(raw.data, dtype=np.float32, count=6, offset=1)
    unaligned = unaligned.reshape(2, 3)
    assert not unaligned.flags.aligned and unaligned.flags.c_contiguous
    result = compile(lambda a: a * 2.0 + 1.0)(unaligned)
    np.testing.assert_array_equal(result, np.array(unaligned) * np.float32(2) + np.float32(1))


def _resident_kib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024


def test_regression_llvmlite_pass_manager_leaked_on_every_compile(monkeypatch):
    """llvmlite 0.50's ModulePassManager never freed its pipeline (its `_dispose`
    resolved to ObjectRef's no-op), so each compile leaked ~55 KiB for good: a
    process compiling in a loop grew without bound. Now < 20 KiB per compile.
    The disk cache is off so that every compile really runs the optimiser."""
    monkeypatch.setenv("PROPC_CACHE", "0")
    builder = ir.Builder("leak")
    x = builder.input(ir.TensorType((8,), ir.DType.f32))
    builder.output(builder.emit("reduce_sum", builder.exp(builder.add(x, x)), axes=(0,)))
    graph = builder.build()
    values = np.arange(8, dtype=np.float32)
    for _ in range(20):
        codegen.compile_graph(graph)(values)
    gc.collect()
    before = _resident_kib()
    compiles = 100
    for _ in range(compiles):
        codegen.compile_graph(graph)(values)
    gc.collect()
    assert (_resident_kib() - before) / compiles < 20


def test_regression_big_endian_arrays_were_rejected_as_an_unsupported_dtype():
    """'>f4' is float32 stored the other way round: accepted and converted."""
    import propc as pc
    x = np.arange(4, dtype=">f4")
    double = pc.compile(lambda x: x * 2.0)
    for _ in range(2):  # the first call traces, the second takes the per-signature path
        np.testing.assert_array_equal(double(x), np.arange(4) * 2.0)
    np.testing.assert_array_equal(pc.grad(lambda x: (x * x).sum())(x), np.arange(4) * 2.0)


def test_regression_pullback_cotangents_checked_with_their_path():
    """Wrong cotangents were cast silently or failed with NumPy's own message."""
    import propc as pc
    _, pullback = pc.vjp(lambda x: {"a": x * 2.0}, np.ones(3, np.float32))
    with pytest.raises(TypeError, match=r"cotangents\['a'\]: expected f32\[3\], got str"):
        pullback({"a": "text"})
    with pytest.raises(TypeError, match=r"cotangents\['a'\]: expected f32\[3\], got dtype complex64"):
        pullback({"a": np.ones(3, np.complex64)})
    with pytest.raises(ValueError, match=r"cotangents\['a'\]: expected f32\[3\], got shape \(4,\)"):
        pullback({"a": np.ones(4, np.float32)})
    (dx,) = pullback({"a": np.ones(3, np.float64)})  # same kind: converted
    np.testing.assert_array_equal(dx, np.full(3, 2.0, np.float32))


def test_regression_region_op_type_error_pointed_past_the_end_of_its_closing_line():
    """A control-flow op's type error is found once its regions are read; it was
    reported at the op's column on the last region's closing line (parser fuzz)."""
    text = "\n".join([
        "graph @A {",
        "  input %0 : f32[]",
        "  input %1 : i32[]",
        "  %2, %3 = while_loop %0, %1 {num_consts=0} : f32[], i32[]",
        "    graph @body {",
        "      input %0 : i32[]",
        "      input %1 : f32[]",
        "      output %1 : f32[]",
        "      output %0 : i32[]",
        "    }",
        "    graph @cond {",
        "      input %0 : f32[]",
        "      input %1 : i32[]",
        "      %2 = constant {value=0} : i32[]",
        "      %3 = lt %1, %2 : bool[]",
        "      output %3 : bool[]",
        "    }",
        "  output %2 : f32[]",
        "}"])
    with pytest.raises(ir.ParseError) as caught:
        ir.parse(text)
    assert (caught.value.line, caught.value.column) == (4, 12)
    assert "region body takes" in str(caught.value)
