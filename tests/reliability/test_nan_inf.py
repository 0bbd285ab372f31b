"""NaN, ±inf, ±0, subnormals and integer extremes: compiled code gives exactly what
the interpreter gives.

- every elementwise primitive on the full grid of special values (all pairs for
  binary ops): NaN in the same places, infinities with the same sign, and every
  other element bit-identical (transcendentals and pow: within 4 ulp);
- reductions with a NaN / inf / -inf at every position of rows long enough for
  the vector loop and its remainder, rows of -inf, empty axes, integer extremes;
- dot products with inf and NaN operands;
- whole models through `pc.compile` vs `pc.interpret`, values and gradients.
"""
from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest

import codegen
import ir
import propc as pc
from ir import Builder, DType, TensorType
from propc.compile import compile

FLOAT_GRID = [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -2.0, 3.0, np.pi,
              1e-40, -1e-310, 1e-8, 88.8, -88.8, 710.0, -745.2, 1e4, -1e5,
              3.4028235e38, -3.4028235e38, 1e308]
INT_GRID = {DType.i32: [-2**31, 2**31 - 1, -1, 0, 1, 2, -2, 7, -7],
            DType.i64: [-2**63, 2**63 - 1, -1, 0, 1, 2, -2, 7, -7, 2**40]}
APPROXIMATE = {"exp", "log", "tanh", "sin", "cos", "pow"}
FLOATS = (DType.f32, DType.f64)


def _grid(dtype: DType, prim: str) -> np.ndarray:
    if dtype.is_int:
        return np.array(INT_GRID[dtype], dtype=dtype.numpy)
    values = FLOAT_GRID
    with np.errstate(over="ignore"):
        return np.array(values, dtype=dtype.numpy)


def _compiled_and_interpreted(graph: ir.Graph, *arrays):
    return codegen.compile_graph(graph)(*arrays)[0], ir.interpret(graph, *arrays)[0]


def assert_same_specials(got: np.ndarray, want: np.ndarray, ulps: float, what: str) -> None:
    """NaN where NaN, same-signed inf where inf, the rest bit-equal or within `ulps`."""
    assert got.dtype == want.dtype and got.shape == want.shape, what
    if want.dtype.kind != "f":
        bad = got != want
    else:
        nan_want = np.isnan(want)
        with np.errstate(invalid="ignore", over="ignore"):
            error = np.abs(got.astype(np.float64) - want.astype(np.float64))
            bound = ulps * np.spacing(np.abs(want)).astype(np.float64)
        same_bits = got.view(f"u{got.itemsize}") == want.view(f"u{want.itemsize}")
        close = np.isfinite(want) & np.isfinite(got) & (error <= bound) if ulps else False
        bad = (np.isnan(got) != nan_want) | (~nan_want & ~same_bits & ~close)
    if bad.any():
        where = np.flatnonzero(bad.reshape(-1))[:6]
        raise AssertionError(f"{what}: {int(bad.sum())} element(s) differ: got "
                             f"{got.reshape(-1)[where]}, interpreter {want.reshape(-1)[where]}")


def _elementwise_cases():
    for name, prim in sorted(ir.PRIMITIVES.items()):
        if not prim.elementwise or prim.attrs or name == "select":
            continue
        for dtype in FLOATS + (DType.i32, DType.i64):
            types = [TensorType((1,), dtype)] * prim.arity
            try:
                prim.result_type(types, {})
            except ir.TypeRuleError:
                continue
            yield pytest.param(name, dtype, id=f"{name}-{dtype}")


@pytest.mark.parametrize("prim,dtype", list(_elementwise_cases()))
def test_elementwise_primitive_on_every_special_value(prim, dtype):
    values = _grid(dtype, prim)
    arity = ir.PRIMITIVES[prim].arity
    picks = list(itertools.product(range(len(values)), repeat=arity))
    columns = [values[[p[k] for p in picks]] for k in range(arity)]
    builder = Builder(prim)
    inputs = [builder.input(TensorType((len(picks),), dtype)) for _ in range(arity)]
    builder.output(builder.emit(prim, *inputs))
    got, want = _compiled_and_interpreted(builder.build(), *columns)
    assert_same_specials(got, want, 4 if prim in APPROXIMATE else 0, f"{prim} {dtype}")


@pytest.mark.parametrize("source", FLOATS + (DType.i32, DType.i64), ids=str)
@pytest.mark.parametrize("target", list(DType), ids=str)
def test_convert_of_special_values(source, target):
    """float -> int of NaN, inf and out-of-range values, anything -> bool (NaN is True)."""
    values = _grid(source, "convert")
    builder = Builder("convert")
    x = builder.input(TensorType(values.shape, source))
    builder.output(builder.emit("convert", x, dtype=target))
    got, want = _compiled_and_interpreted(builder.build(), values)
    assert_same_specials(got, want, 0, f"convert {source} -> {target}")


def test_select_passes_specials_through_untouched():
    values = _grid(DType.f32, "select")
    pred = np.arange(values.size) % 2 == 0
    builder = Builder("select")
    p = builder.input(TensorType(values.shape, DType.bool))
    a = builder.input(TensorType(values.shape, DType.f32))
    b = builder.input(TensorType(values.shape, DType.f32))
    builder.output(builder.emit("select", p, a, b))
    got, want = _compiled_and_interpreted(builder.build(), pred, values, values[::-1].copy())
    assert_same_specials(got, want, 0, "select")


@functools.lru_cache(maxsize=None)
def _reduction(prim: str, shape: tuple[int, ...], dtype: DType, axis: int):
    """(graph, executable) reducing `axis`; cached, as many inputs share a shape."""
    builder = Builder(prim)
    x = builder.input(TensorType(shape, dtype))
    builder.output(builder.emit(prim, x, axes=(axis,)))
    graph = builder.build()
    return graph, codegen.compile_graph(graph)


def _reduce(prim: str, array: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    graph, executable = _reduction(prim, array.shape, DType.from_numpy(array.dtype), axis)
    return executable(array)[0], ir.interpret(graph, array)[0]


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@pytest.mark.parametrize("prim", ["reduce_max", "reduce_min", "reduce_sum"])
def test_reductions_with_a_special_value_at_every_position(prim, dtype):
    rng = np.random.default_rng(0)
    for n, special in itertools.product((1, 7, 17, 65), (np.nan, np.inf, -np.inf)):
        rows = rng.standard_normal((n, n)).astype(dtype.numpy)
        rows[np.arange(n), np.arange(n)] = special
        for axis in (0, 1):
            got, want = _reduce(prim, rows, axis)
            # sums reorder; the special positions must still agree exactly
            assert_same_specials(got, want, 0 if prim != "reduce_sum" else 64,
                                 f"{prim} {dtype} n={n} {special} axis {axis}")
        got, want = _reduce(prim, np.full((n, n), -np.inf, dtype.numpy), 1)
        assert_same_specials(got, want, 0, f"{prim} of -inf rows, n={n}")


@pytest.mark.parametrize("dtype", list(DType), ids=str)
@pytest.mark.parametrize("prim", ["reduce_max", "reduce_min", "reduce_sum"])
def test_reductions_over_empty_axes_and_integer_extremes(prim, dtype):
    if prim == "reduce_sum" and dtype is DType.bool:
        return  # reduce_sum takes numeric operands only (the rule rejects bool)
    got, want = _reduce(prim, np.zeros((2, 0), dtype.numpy), 1)
    assert_same_specials(got, want, 0, f"{prim} over an empty axis, {dtype}")
    if dtype.is_int:
        info = np.iinfo(dtype.numpy)
        for n in (1, 8, 17, 33):
            extremes = np.full((2, n), info.max, dtype.numpy)
            extremes[1] = info.min
            got, want = _reduce(prim, extremes, 1)
            assert_same_specials(got, want, 0, f"{prim} of integer extremes, n={n}")


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@pytest.mark.parametrize("k", [1, 3, 17, 70])
def test_dot_propagates_inf_and_nan(dtype, k):
    rng = np.random.default_rng(k)
    lhs = rng.standard_normal((6, k)).astype(dtype.numpy)
    rhs = rng.standard_normal((k, 5)).astype(dtype.numpy)
    lhs[1, 0], lhs[2, k - 1], lhs[3, :] = np.inf, np.nan, 0.0  # row 3 x inf column: NaN
    rhs[0, 2], rhs[k - 1, 3] = 0.0, -np.inf
    builder = Builder("dot")
    a = builder.input(TensorType(lhs.shape, dtype))
    b = builder.input(TensorType(rhs.shape, dtype))
    builder.output(builder.emit("dot", a, b, lhs_batch=(), rhs_batch=(), lhs_contract=(1,),
                                rhs_contract=(0,)))
    got, want = _compiled_and_interpreted(builder.build(), lhs, rhs)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.array_equal(got[np.isinf(want)], want[np.isinf(want)])
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-4, atol=1e-4)


def _model(params, x, labels):
    W, b, gamma = params
    hidden = pc.nn.layer_norm(pc.nn.gelu(x @ W + b), gamma, 0.0 * gamma)
    logits = hidden - pc.nn.logsumexp(hidden, axis=-1)[..., None] + pc.nn.softmax(hidden)
    return pc.nn.cross_entropy(logits, labels) + pc.sqrt(pc.abs(W)).sum() * 0.01


def _spoiled_inputs(spoil: str):
    rng = np.random.default_rng(3)
    params = (rng.standard_normal((6, 5)).astype(np.float32), np.zeros(5, np.float32),
              np.ones(5, np.float32))
    x = rng.standard_normal((4, 6)).astype(np.float32)
    if spoil == "nan_input":
        x[1, 2] = np.nan
    elif spoil == "inf_input":
        x[2, 0] = -np.inf
    elif spoil == "inf_weight":
        params[0][3, 1] = np.inf
    elif spoil == "huge":
        x[0] = 3e38
    return params, x, np.array([0, 4, 2, 1], np.int32)


def test_models_and_gradients_propagate_specials_like_the_interpreter():
    """One signature, so one trace and one compile serve every spoiled input."""
    step = pc.value_and_grad(_model)
    native, oracle = compile(step), pc.interpret(step)
    for spoil in ("none", "nan_input", "inf_input", "inf_weight", "huge"):
        args = _spoiled_inputs(spoil)
        (value, grads), (value_ref, grads_ref) = native(*args), oracle(*args)
        assert_same_specials(value, value_ref, 64, f"{spoil}: loss")
        for got, want, name in zip(grads, grads_ref, ("dW", "db", "dgamma")):
            assert np.array_equal(np.isnan(got), np.isnan(want)), f"{spoil}: NaN in {name}"
            assert np.array_equal(np.isinf(got), np.isinf(want)), f"{spoil}: inf in {name}"
            finite = np.isfinite(want)
            np.testing.assert_allclose(got[finite], want[finite], rtol=1e-3, atol=1e-5,
                                       err_msg=f"{spoil}: {name}")
    assert native.compile_count == 1
