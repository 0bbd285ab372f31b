"""Trace-time errors: the right propc exception (and builtin base), a message naming the
operation, shapes/dtypes and this file's offending line, a hint, and a short traceback."""
from __future__ import annotations

import inspect
import os
import traceback

import numpy as np
import pytest

import propc as pc
from propc import nn

HERE = os.path.basename(__file__)
PACKAGE_DIRS = tuple(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), name) + os.sep for name in ("propc", "ir", "codegen"))

F32 = np.ones((3, 4), np.float32)


def marked_line(fn) -> str:
    """`test_errors.py:N` for the line of `fn` marked with `# error here`."""
    lines, start = inspect.getsourcelines(fn)
    for offset, text in enumerate(lines):
        if "# error here" in text:
            return f"{HERE}:{start + offset}"
    raise LookupError("no marked line")


def raises(exc_type, fn, *args, contains=()):
    """Run fn through pc.interpret; check the exception type and its message."""
    with pytest.raises(exc_type) as info:
        pc.interpret(fn)(*args)
    message = str(info.value)
    assert marked_line(fn) in message, message
    for text in contains:
        assert text in message, f"{text!r} not in {message!r}"
    return info.value


# -- using a traced value as a Python value ----------------------------------------------


def test_if_on_a_tracer():
    def f(x):
        if x.sum() > 0:  # error here
            return x
        return -x

    err = raises(pc.ConcretizationError, f, F32, contains=["pc.where", "bool[]"])
    assert isinstance(err, TypeError) and isinstance(err, pc.TraceError)


@pytest.mark.parametrize("convert", [float, int, bool, np.asarray, complex])
def test_python_conversions_of_a_tracer(convert):
    def f(x):
        return convert(x.sum())  # error here

    raises(pc.ConcretizationError, f, F32, contains=["f32[]"])


def test_tracer_as_index_and_item():
    def f(x):
        return [1, 2, 3][x.sum()]  # error here

    raises(pc.ConcretizationError, f, np.int32(1))

    def g(x):
        return x.max().item()  # error here

    raises(pc.ConcretizationError, g, F32)


# -- shapes and axes -----------------------------------------------------------------------


def test_incompatible_shapes():
    def f(x, y):
        return x + y  # error here

    err = raises(pc.ShapeError, f, F32, np.ones(5, np.float32),
                 contains=["add", "f32[3,4]", "f32[5]"])
    assert isinstance(err, ValueError)


def test_matmul_inner_dims():
    def f(x, W):
        return x @ W  # error here

    raises(pc.ShapeError, f, np.ones((32, 64), np.float32), np.ones((32, 10), np.float32),
           contains=["matmul", "f32[32,64] @ f32[32,10]", "64 != 32"])

    def g(x, W):
        return x @ W  # error here

    raises(pc.ShapeError, g, np.ones((2, 3, 4), np.float32), np.ones((5, 4, 2), np.float32),
           contains=["matmul", "batch"])

    def h(x):
        return x @ 2.0  # error here

    raises(pc.ShapeError, h, F32, contains=["matmul", "dimension"])


@pytest.mark.parametrize("axis", [2, -3, (0, 0), (1, 5)])
def test_bad_reduction_axes(axis):
    def f(x):
        return x.sum(axis=axis)  # error here

    raises(pc.ShapeError, f, F32, contains=["sum", "f32[3,4]"])


def test_bad_reshape_transpose_broadcast_concatenate():
    def f(x):
        return x.reshape(5, -1)  # error here

    raises(pc.ShapeError, f, F32, contains=["reshape", "f32[3,4]"])

    def g(x):
        return x.transpose(0, 0)  # error here

    raises(pc.ShapeError, g, F32, contains=["transpose"])

    def h(x):
        return pc.broadcast_to(x, (4, 3))  # error here

    raises(pc.ShapeError, h, F32, contains=["broadcast_to", "f32[3,4]"])

    def k(x):
        return pc.concatenate([x, x.T], axis=0)  # error here

    raises(pc.ShapeError, k, F32, contains=["concatenate", "f32[4,3]"])


def test_max_over_an_empty_axis():
    def f(x):
        return x.max(axis=1)  # error here

    raises(pc.ShapeError, f, np.ones((2, 0), np.float32), contains=["max", "f32[2,0]"])


def test_indexing_errors():
    def f(x):
        return x[3]  # error here

    err = raises(pc.ShapeError, f, F32, contains=["out of bounds", "f32[3,4]"])
    assert isinstance(err, IndexError)

    def g(x):
        return x[0, 0, 0]  # error here

    raises(pc.ShapeError, g, F32, contains=["too many indices"])

    def h(x):
        return x[::0]  # error here

    raises(ValueError, h, F32, contains=["slice step cannot be zero"])

    def k(x):
        return x[np.array([0, 1])]  # error here

    raises(TypeError, k, F32, contains=["index"])


def test_nn_shape_errors_point_at_the_user_call():
    def f(logits, labels):
        return nn.cross_entropy(logits, labels)  # error here

    raises(pc.ShapeError, f, F32, np.zeros(4, np.int32),
           contains=["cross_entropy", "f32[3,4]", "i32[4]"])

    def g(x):
        return nn.layer_norm(x, np.ones(3, np.float32), np.zeros(4, np.float32))  # error here

    raises(pc.ShapeError, g, F32, contains=["layer_norm", "gamma"])


# -- dtypes ------------------------------------------------------------------------------


def test_unsupported_dtypes_are_type_errors():
    def f(x):
        return x.astype(np.float16)  # error here

    err = raises(TypeError, f, F32, contains=["float16"])
    assert isinstance(err, pc.TraceError)

    def g(x):
        return x * np.ones(4, np.uint8)  # error here

    raises(TypeError, g, F32, contains=["uint8"])

    def h(x):
        return pc.exp(x > 0)  # error here

    raises(TypeError, h, F32, contains=["exp", "float16"])


def test_operations_numpy_also_rejects():
    def f(x):
        return (x > 0) - (x > 1)  # error here

    raises(TypeError, f, F32, contains=["subtract", "bool"])

    def g(x):
        return x ** -1  # error here

    raises(TypeError, g, np.ones(3, np.int32), contains=["power", "negative"])

    def h(x, y):
        return x ** y  # error here

    raises(TypeError, h, np.ones(3, np.int32), np.ones(3, np.int32), contains=["power"])


def test_python_int_out_of_range_for_the_array():
    def f(x):
        return x + 2 ** 40  # error here

    raises(TypeError, f, np.ones(3, np.int32), contains=["int32"])


def test_unsupported_output():
    def f(x):
        return {"name": "x"}  # error here

    with pytest.raises(TypeError, match=r"output\['name'\]"):
        pc.interpret(f)(F32)


# -- escaped tracers, tracebacks -------------------------------------------------------


def test_escaped_tracer():
    saved = []
    pc.interpret(lambda x: saved.append(x) or x)(F32)

    def f(y):
        return y + saved[0]  # error here

    raises(pc.TraceError, f, F32, contains=["escaped"])


def test_traceback_has_no_internal_frames():
    def helper(x):
        return x @ x  # error here

    def f(x):
        return helper(x) * 2

    with pytest.raises(pc.ShapeError) as info:
        pc.interpret(f)(F32)
    frames = traceback.extract_tb(info.value.__traceback__)
    internal = [fr for fr in frames if os.path.abspath(fr.filename).startswith(PACKAGE_DIRS)]
    assert len(internal) <= 1, [f"{fr.filename}:{fr.lineno}" for fr in internal]
    last = frames[-1]
    assert f"{os.path.basename(last.filename)}:{last.lineno}" == marked_line(helper)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_errors_from_pc_trace_too():
    def f(x):
        return x.reshape(7)  # error here

    with pytest.raises(pc.ShapeError) as info:
        pc.trace(f, pc.ShapeDtype((3, 4)))
    assert marked_line(f) in str(info.value)


def test_len_and_iter_of_0d():
    def f(x):
        return len(x.sum())  # error here

    raises(TypeError, f, F32, contains=["len"])
