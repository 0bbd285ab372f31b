"""gather / scatter_add compiled: out-of-range indices clamp in normal builds (like
the interpreter) and stop the call with BoundsCheckError in debug mode; duplicates
accumulate; int32 and int64 indices."""
from __future__ import annotations

import numpy as np
import pytest

import codegen
from codegen.emit.bounds import BoundsCheckError
from ir import Builder, DType, TensorType, interpret


def gather_graph(index_dtype: DType):
    b = Builder("pick")
    x = b.input(TensorType((3, 4), DType.f32))
    i = b.input(TensorType((3, 5), index_dtype))
    b.output(b.gather(x, i, axis=1))
    return b.build()


def scatter_graph(index_dtype: DType):
    b = Builder("spread")
    x = b.input(TensorType((4, 2), DType.f64))
    i = b.input(TensorType((6, 2), index_dtype))
    u = b.input(TensorType((6, 2), DType.f64))
    b.output(b.scatter_add(x, i, u, axis=0))
    return b.build()


@pytest.mark.parametrize("index_dtype", [DType.i32, DType.i64], ids=str)
def test_out_of_range_indices_clamp_and_duplicates_accumulate(index_dtype):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4)).astype(np.float32)
    idx = np.array([[0, 3, 3, 9, -4]] * 3, index_dtype.numpy)
    graph = gather_graph(index_dtype)
    (got,) = codegen.compile_graph(graph, debug=False)(x, idx)
    np.testing.assert_array_equal(got, x[:, np.clip(idx[0], 0, 3)])
    np.testing.assert_array_equal(got, interpret(graph, x, idx)[0])

    base = rng.normal(size=(4, 2))
    picks = np.array([[1, 1], [1, 0], [7, 3], [-1, 2], [1, 3], [0, 0]], index_dtype.numpy)
    updates = rng.normal(size=(6, 2))
    expected = base.copy()
    for row in range(6):
        for col in range(2):
            expected[min(max(picks[row, col], 0), 3), col] += updates[row, col]
    graph = scatter_graph(index_dtype)
    (got,) = codegen.compile_graph(graph, debug=False)(base, picks, updates)
    np.testing.assert_allclose(got, expected, rtol=1e-14)


def test_debug_mode_reports_an_out_of_range_index():
    x = np.zeros((3, 4), np.float32)
    fine = np.zeros((3, 5), np.int64)
    exe = codegen.compile_graph(gather_graph(DType.i64), debug=True)
    exe(x, fine)                                   # in range: no error
    bad = fine.copy()
    bad[1, 2] = 4
    with pytest.raises(BoundsCheckError, match="gather"):
        exe(x, bad)
