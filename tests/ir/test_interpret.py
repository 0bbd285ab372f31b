"""Tests of ir/interpret.py: multi-op graphs vs NumPy, input checking, fresh outputs,
and the named edge cases of the reference semantics (NaN in max/min, division by
zero, select with NaN in the untaken branch, 0**0, reductions over empty axes).
"""
from __future__ import annotations

import numpy as np
import pytest

import ir
from ir import Builder, DType, Graph, InterpretError, Op, TensorType
from tolerances import tol

F32, F64, I32, I64, BOOL = DType.f32, DType.f64, DType.i32, DType.i64, DType.bool
DOT_2D = dict(lhs_batch=(), rhs_batch=(), lhs_contract=(1,), rhs_contract=(0,))


def one_op(prim: str, *arrays: np.ndarray, **attrs) -> np.ndarray:
    """Interpret `prim` applied to graph inputs holding `arrays`."""
    b = Builder(prim)
    inputs = [b.input(TensorType(a.shape, DType.from_numpy(a.dtype))) for a in arrays]
    b.output(b.emit(prim, *inputs, **attrs))
    (result,) = ir.interpret(b.build(), *arrays)
    return result


def mlp_layer_graph(batch: int, n_in: int, n_out: int, dtype: DType) -> Graph:
    """sum over features of tanh(x @ W + b), with b broadcast over the batch."""
    b = Builder("layer")
    x = b.input(TensorType((batch, n_in), dtype))
    w = b.input(TensorType((n_in, n_out), dtype))
    bias = b.input(TensorType((n_out,), dtype))
    xw = b.dot(x, w, **DOT_2D)
    hidden = b.tanh(b.add(xw, b.broadcast_in_dim(bias, shape=(batch, n_out), dims=(1,))))
    b.output(b.reduce_sum(hidden, axes=(1,)), hidden)
    return b.build()


# --------------------------------------------------------------------------------------
# multi-op graphs


@pytest.mark.parametrize("dtype", [F32, F64])
def test_mlp_layer_matches_numpy(dtype):
    rng = np.random.default_rng(0)
    x, w, bias = (rng.normal(size=s).astype(dtype.numpy) for s in [(4, 3), (3, 5), (5,)])
    total, hidden = ir.interpret(mlp_layer_graph(4, 3, 5, dtype), x, w, bias)
    expected_hidden = np.tanh(x @ w + bias)
    assert hidden.dtype == total.dtype == dtype.numpy
    assert hidden.shape == (4, 5) and total.shape == (4,)
    np.testing.assert_allclose(hidden, expected_hidden, **tol("op", dtype))
    np.testing.assert_allclose(total, expected_hidden.sum(axis=1), **tol("op", dtype))


def test_two_layer_mse_loss_is_a_0d_float32_array():
    rng = np.random.default_rng(1)
    b = Builder("loss")
    x, w1 = b.input(TensorType((6, 4), F32)), b.input(TensorType((4, 8), F32))
    w2, target = b.input(TensorType((8, 2), F32)), b.input(TensorType((6, 2), F32))
    hidden = b.max(b.dot(x, w1, **DOT_2D), b.zeros(TensorType((6, 8), F32)))
    error = b.sub(b.dot(hidden, w2, **DOT_2D), target)
    total = b.reduce_sum(b.mul(error, error), axes=(0, 1))
    b.output(b.div(total, b.scalar(12.0, F32)))
    arrays = [rng.normal(size=s).astype(np.float32) for s in [(6, 4), (4, 8), (8, 2), (6, 2)]]
    (loss,) = ir.interpret(b.build(), *arrays)
    xs, a1, a2, t = arrays
    expected = np.mean((np.maximum(xs @ a1, 0) @ a2 - t) ** 2)
    assert isinstance(loss, np.ndarray) and loss.shape == () and loss.dtype == np.float32
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_outputs_are_fresh_arrays_even_for_an_input_or_a_repeated_value():
    b = Builder("passthrough")
    x = b.input(TensorType((3,), F32))
    y = b.neg(x)
    b.output(x, y, y)
    data = np.arange(3, dtype=np.float32)
    out_x, out_y, out_y_again = ir.interpret(b.build(), data)
    out_x[0] = 100.0
    out_y[1] = 100.0
    assert data[0] == 0.0 and out_y_again[1] == -1.0


# --------------------------------------------------------------------------------------
# input checking


def test_wrong_input_count_raises():
    graph = mlp_layer_graph(2, 3, 4, F32)
    with pytest.raises(InterpretError, match="takes 3 inputs, got 2"):
        ir.interpret(graph, np.zeros((2, 3), np.float32), np.zeros((3, 4), np.float32))


def test_wrong_input_shape_raises_naming_expected_type():
    graph = mlp_layer_graph(2, 3, 4, F32)
    args = [np.zeros((2, 3), np.float32), np.zeros((3, 5), np.float32), np.zeros(4, np.float32)]
    with pytest.raises(InterpretError, match=r"input 1: expected f32\[3,4\]"):
        ir.interpret(graph, *args)


@pytest.mark.parametrize("bad_dtype", [np.float64, np.int32, np.bool_])
def test_wrong_input_dtype_raises(bad_dtype):
    graph = mlp_layer_graph(2, 3, 4, F32)
    args = [np.zeros((2, 3), bad_dtype), np.zeros((3, 4), np.float32), np.zeros(4, np.float32)]
    with pytest.raises(InterpretError, match=r"input 0: expected f32\[2,3\]"):
        ir.interpret(graph, *args)


def test_unknown_primitive_raises_interpret_error():
    graph = Graph("bad")
    x = ir.Value(TensorType((2,), F32))
    graph.inputs.append(x)
    op = Op("no_such_prim", [x], {}, TensorType((2,), F32))
    graph.ops.append(op)
    graph.outputs.append(op.result)
    with pytest.raises(InterpretError, match="no_such_prim"):
        ir.interpret(graph, np.zeros(2, np.float32))


def test_operand_defined_nowhere_raises_interpret_error():
    graph = Graph("dangling")
    stray = ir.Value(TensorType((2,), F32))
    op = Op("neg", [stray], {}, TensorType((2,), F32))
    graph.ops.append(op)
    graph.outputs.append(op.result)
    with pytest.raises(InterpretError, match="neg"):
        ir.interpret(graph)


# --------------------------------------------------------------------------------------
# named edge cases


@pytest.mark.parametrize("prim", ["max", "min"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_min_propagate_nan_from_either_side(prim, dtype):
    x = np.array([np.nan, 1.0, np.nan, -2.0], dtype)
    y = np.array([3.0, np.nan, np.nan, -5.0], dtype)
    result = one_op(prim, x, y)
    assert np.isnan(result[:3]).all()
    assert result[3] == (-2.0 if prim == "max" else -5.0)


@pytest.mark.parametrize("prim", ["reduce_max", "reduce_min"])
def test_reduce_max_min_propagate_nan(prim):
    x = np.array([[1.0, np.nan, 3.0], [4.0, 5.0, 6.0]], np.float32)
    result = one_op(prim, x, axes=(1,))
    assert np.isnan(result[0])
    assert result[1] == (6.0 if prim == "reduce_max" else 4.0)


def test_ties_in_max_and_reduce_max_give_the_tied_value():
    x = np.array([2.0, -1.0, 0.5], np.float32)
    np.testing.assert_array_equal(one_op("max", x, x.copy()), x)
    row = np.array([[3, 7, 7, 1]], np.int32)
    assert one_op("reduce_max", row, axes=(1,)).tolist() == [7]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_division_by_zero_is_ieee(dtype):
    x = np.array([1.0, -1.0, 0.0, np.inf], dtype)
    result = one_op("div", x, np.zeros(4, dtype))
    assert result.dtype == dtype
    assert result[0] == np.inf and result[1] == -np.inf
    assert np.isnan(result[2]) and result[3] == np.inf


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_integer_division_floors_and_by_zero_gives_zero(dtype):
    x = np.array([7, -7, 7, -7, 5, 0, -3], dtype)
    y = np.array([2, 2, -2, -2, 0, 0, 0], dtype)
    result = one_op("div", x, y)
    assert result.dtype == dtype
    assert result.tolist() == [3, -4, -4, 3, 0, 0, 0]


def test_select_ignores_nan_and_inf_in_the_untaken_branch():
    pred = np.array([True, False, True, False])
    on_true = np.array([1.0, np.nan, 3.0, np.inf], np.float32)
    on_false = np.array([np.nan, 2.0, -np.inf, 4.0], np.float32)
    result = one_op("select", pred, on_true, on_false)
    assert result.dtype == np.float32
    assert result.tolist() == [1.0, 2.0, 3.0, 4.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pow_zero_to_the_zero_is_one(dtype):
    base = np.array([0.0, np.nan, 0.0, 2.0], dtype)
    exponent = np.array([0.0, 0.0, -1.0, 0.5], dtype)
    result = one_op("pow", base, exponent)
    assert result.dtype == dtype
    assert result[0] == 1.0 and result[1] == 1.0 and result[2] == np.inf
    np.testing.assert_allclose(result[3], np.sqrt(2.0), rtol=1e-6)


@pytest.mark.parametrize("dtype,lowest,highest", [
    (np.float32, -np.inf, np.inf), (np.float64, -np.inf, np.inf),
    (np.int32, -2**31, 2**31 - 1), (np.int64, -2**63, 2**63 - 1), (np.bool_, False, True),
])
def test_reductions_over_an_empty_axis_give_the_identity(dtype, lowest, highest):
    empty = np.zeros((0, 3), dtype)
    for prim, identity in [("reduce_max", lowest), ("reduce_min", highest)]:
        result = one_op(prim, empty, axes=(0,))
        assert result.dtype == dtype and result.shape == (3,)
        assert result.tolist() == [identity] * 3
    if dtype is not np.bool_:
        total = one_op("reduce_sum", empty, axes=(0,))
        assert total.dtype == dtype and total.tolist() == [0, 0, 0]


def test_reduction_over_all_axes_of_an_empty_array_is_0d():
    result = one_op("reduce_max", np.zeros((2, 0), np.float32), axes=(0, 1))
    assert isinstance(result, np.ndarray) and result.shape == () and result == -np.inf


def test_float32_stays_float32_through_transcendentals_and_reductions():
    x = np.linspace(0.1, 2.0, 6, dtype=np.float32).reshape(2, 3)
    for prim in ["exp", "log", "tanh", "sqrt", "sin", "cos"]:
        assert one_op(prim, x).dtype == np.float32
    assert one_op("reduce_sum", x, axes=(0, 1)).dtype == np.float32


def test_zero_d_results_are_ndarrays_not_scalars():
    scalar = np.array(2.0, np.float32)
    for result in [one_op("exp", scalar), one_op("add", scalar, scalar),
                   one_op("lt", scalar, scalar), one_op("reduce_sum", scalar, axes=())]:
        assert type(result) is np.ndarray and result.shape == ()


def test_convert_truncates_toward_zero_and_nonzero_is_true():
    x = np.array([2.7, -2.7, 0.0, np.nan], np.float32)
    assert one_op("convert", x[:3], dtype=DType.i32).tolist() == [2, -2, 0]
    assert one_op("convert", x, dtype=DType.bool).tolist() == [True, True, False, True]
