"""Every propc function, Tensor operator and method against plain NumPy on the same
inputs, run through pc.interpret: dtypes, broadcasting, 0-d inputs, negative axes."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import propc as pc
from frontend_helpers import DTYPES, NUMERIC, assert_same, run, sample

FAST = settings(max_examples=60, deadline=None)

# -- unary functions ------------------------------------------------------------------

FLOAT_UNARY = [(pc.exp, np.exp), (pc.log, np.log), (pc.tanh, np.tanh), (pc.sqrt, np.sqrt),
               (pc.sin, np.sin), (pc.cos, np.cos)]


@pytest.mark.parametrize("pc_fn,np_fn", FLOAT_UNARY, ids=lambda f: getattr(f, "__name__", ""))
@pytest.mark.parametrize("dtype", NUMERIC)
@pytest.mark.parametrize("shape", [(), (5,), (2, 3)])
def test_float_unary_matches_numpy(pc_fn, np_fn, dtype, shape):
    x = sample(shape, dtype, seed=1, low=1, high=4)  # positive: log and sqrt defined
    assert_same(run(pc_fn, x), np_fn(x), f"{np_fn.__name__} {dtype.__name__}{shape}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_abs_and_neg(dtype):
    x = sample((4, 3), dtype, seed=2)
    assert_same(run(pc.abs, x), np.abs(x), "pc.abs")
    assert_same(run(lambda t: abs(t), x), np.abs(x), "abs()")
    if dtype is not np.bool_:
        assert_same(run(lambda t: -t, x), -x, "unary -")


# -- binary operators and functions, with broadcasting --------------------------------

BINARY = {
    "+": (lambda a, b: a + b, np.add),
    "-": (lambda a, b: a - b, np.subtract),
    "*": (lambda a, b: a * b, np.multiply),
    "/": (lambda a, b: a / b, np.divide),
    "maximum": (pc.maximum, np.maximum),
    "minimum": (pc.minimum, np.minimum),
    "<": (lambda a, b: a < b, np.less),
    "<=": (lambda a, b: a <= b, np.less_equal),
    ">": (lambda a, b: a > b, np.greater),
    ">=": (lambda a, b: a >= b, np.greater_equal),
    "==": (lambda a, b: a == b, np.equal),
    "!=": (lambda a, b: a != b, np.not_equal),
}


@st.composite
def broadcast_pair(draw):
    """Two shapes that broadcast: random rank, axes dropped or set to 1 on either side."""
    ndim = draw(st.integers(0, 3))
    base = draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim))
    shapes = []
    for _ in range(2):
        drop = draw(st.integers(0, ndim))
        shape = [1 if draw(st.booleans()) else d for d in base[drop:]]
        shapes.append(tuple(shape))
    return shapes


@FAST
@given(pair=broadcast_pair(), op=st.sampled_from(sorted(BINARY)),
       dtypes=st.tuples(st.sampled_from(NUMERIC), st.sampled_from(NUMERIC)),
       seed=st.integers(0, 1000))
def test_binary_broadcasting_matches_numpy(pair, op, dtypes, seed):
    pc_fn, np_fn = BINARY[op]
    a = sample(pair[0], dtypes[0], seed)
    b = sample(pair[1], dtypes[1], seed + 1)
    if op == "/":
        b = np.where(b == 0, 1, b).astype(b.dtype)
    with np.errstate(all="ignore"):
        expected = np_fn(a, b)
    assert_same(run(pc_fn, a, b), expected, f"{a.dtype}{a.shape} {op} {b.dtype}{b.shape}")


@pytest.mark.parametrize("op", sorted(BINARY))
@pytest.mark.parametrize("scalar", [2, -3, 1.5, True])
@pytest.mark.parametrize("dtype", NUMERIC)
def test_binary_with_python_scalars_on_both_sides(op, scalar, dtype):
    pc_fn, np_fn = BINARY[op]
    x = sample((3, 2), dtype, seed=3, low=1, high=5)
    if op == "-" and isinstance(scalar, bool):
        scalar = 7
    assert_same(run(lambda t: pc_fn(t, scalar), x), np_fn(x, scalar), f"x {op} {scalar!r}")
    assert_same(run(lambda t: pc_fn(scalar, t), x), np_fn(scalar, x), f"{scalar!r} {op} x")


@pytest.mark.parametrize("op", ["+", "*", "maximum", "minimum", "==", "!=", "<", ">="])
def test_bool_binary_ops(op):
    pc_fn, np_fn = BINARY[op]
    a, b = sample((4, 4), np.bool_, 5), sample((4,), np.bool_, 6)
    assert_same(run(pc_fn, a, b), np_fn(a, b), f"bool {op}")


def test_numpy_reduction_functions_on_tracers():
    x = sample((2, 3), np.int32, 40)
    assert_same(run(lambda t: np.sum(t, axis=0), x), np.sum(x, axis=0), "np.sum")
    assert_same(run(lambda t: np.mean(t), x), np.mean(x), "np.mean")
    assert_same(run(lambda t: np.max(t, axis=-1, keepdims=True), x),
                np.max(x, axis=-1, keepdims=True), "np.max")
    assert_same(run(lambda t: t.sum(dtype=np.float32), x), x.sum(dtype=np.float32), "dtype=")


def test_numpy_array_on_the_left_dispatches_to_tensor():
    x = sample((2, 3), np.float32, 7)
    c = sample((2, 3), np.float32, 8)
    assert_same(run(lambda t: c * t + c, x), c * x + c, "ndarray * Tensor")
    assert_same(run(lambda t: np.exp(t) - c, x), np.exp(x) - c, "np.exp(Tensor)")


# -- power ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", NUMERIC)
@pytest.mark.parametrize("exponent", [0, 1, 2, 3, 5])
def test_power_by_python_int(dtype, exponent):
    x = sample((3, 4), dtype, seed=9, low=-3, high=3)
    assert_same(run(lambda t: t ** exponent, x), x ** exponent, f"{dtype.__name__} ** {exponent}")


@pytest.mark.parametrize("dtype,exponent", [
    (np.float32, 0.5), (np.float32, -1), (np.float32, 2.5), (np.float32, -2.0),
    (np.float64, 0.5), (np.float64, -1), (np.int32, 0.5), (np.int32, -2.0), (np.int64, 2.5)])
def test_power_by_python_float_or_negative(dtype, exponent):
    x = sample((3, 4), dtype, seed=10, low=1, high=4)
    assert_same(run(lambda t: t ** exponent, x), x ** exponent, f"{dtype} ** {exponent}")


def test_power_tensor_exponent_and_reflected():
    x = sample((3,), np.float32, 11, low=0.5, high=2)
    y = sample((2, 3), np.float32, 12, low=-2, high=2)
    assert_same(run(lambda a, b: a ** b, x, y), x ** y, "tensor ** tensor")
    assert_same(run(lambda a: 2.0 ** a, y), 2.0 ** y, "2.0 ** tensor")
    assert_same(run(lambda a: pc.numpy_api.power(a, 3), x), x ** 3, "power()")


# -- matmul -------------------------------------------------------------------------------

MATMUL_SHAPES = [
    ((4,), (4,)), ((4,), (4, 3)), ((2, 4), (4,)), ((2, 4), (4, 3)),
    ((5, 2, 4), (4, 3)), ((2, 4), (5, 4, 3)), ((2, 1, 3, 4), (5, 4, 6)),
    ((4,), (2, 4, 3)), ((2, 3, 4), (4,)), ((1, 2, 4), (3, 4, 2)), ((2, 0), (0, 3)),
]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul_follows_numpy_rules(shapes):
    a = sample(shapes[0], np.float32, 13)
    b = sample(shapes[1], np.float32, 14)
    assert_same(run(lambda x, y: x @ y, a, b), a @ b, f"{shapes} @")
    assert_same(run(pc.matmul, a, b), np.matmul(a, b), f"{shapes} matmul")


@pytest.mark.parametrize("dtypes", [(np.int32, np.int32), (np.int64, np.int32),
                                    (np.float32, np.float64), (np.int32, np.float32),
                                    (np.bool_, np.bool_)])
def test_matmul_dtypes(dtypes):
    a = sample((3, 4), dtypes[0], 15)
    b = sample((4, 2), dtypes[1], 16)
    assert_same(run(lambda x, y: x @ y, a, b), a @ b, f"{dtypes} @")


def test_matmul_with_numpy_left_operand():
    a = sample((3, 4), np.float32, 17)
    b = sample((4, 2), np.float32, 18)
    assert_same(run(lambda y: a @ y, b), a @ b, "ndarray @ Tensor")


# -- reductions ---------------------------------------------------------------------------

AXES = [None, 0, -1, (0, 2), (-1, 0), (), 1]


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions_match_numpy(name, dtype, axis, keepdims):
    x = sample((2, 3, 4), dtype, seed=19)
    np_fn = getattr(np, name)
    expected = np_fn(x, axis=axis, keepdims=keepdims)
    pc_fn = getattr(pc, name)
    assert_same(run(lambda t: pc_fn(t, axis=axis, keepdims=keepdims), x), expected,
                f"pc.{name} axis={axis}")
    assert_same(run(lambda t: getattr(t, name)(axis=axis, keepdims=keepdims), x), expected,
                f".{name} axis={axis}")


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min"])
def test_reductions_of_0d_and_empty(name):
    x = np.asarray(2.5, dtype=np.float32)
    assert_same(run(lambda t: getattr(t, name)(), x), getattr(np, name)(x), f"0-d {name}")
    if name in ("sum", "mean"):
        empty = np.zeros((3, 0), np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            expected = getattr(np, name)(empty, axis=1)
        assert_same(run(lambda t: getattr(t, name)(axis=1), empty), expected, f"empty {name}")


# -- shape functions ----------------------------------------------------------------------


def test_reshape_forms():
    x = sample((2, 3, 4), np.float32, 20)
    assert_same(run(lambda t: t.reshape(6, 4), x), x.reshape(6, 4), "reshape(*shape)")
    assert_same(run(lambda t: t.reshape((4, -1)), x), x.reshape((4, -1)), "reshape(tuple, -1)")
    assert_same(run(lambda t: pc.reshape(t, (-1,)), x), x.reshape(-1), "pc.reshape -1")
    assert_same(run(lambda t: t.reshape(()), x[:1, :1, :1]), x[:1, :1, :1].reshape(()), "to 0-d")


def test_transpose_forms():
    x = sample((2, 3, 4), np.int32, 21)
    assert_same(run(lambda t: t.T, x), x.T, ".T")
    assert_same(run(lambda t: t.transpose(), x), x.transpose(), "transpose()")
    assert_same(run(lambda t: t.transpose(1, -1, 0), x), x.transpose(1, -1, 0), "transpose(*)")
    assert_same(run(lambda t: t.transpose((2, 0, 1)), x), x.transpose((2, 0, 1)), "tuple")
    assert_same(run(lambda t: pc.transpose(t, (0, 2, 1)), x), np.transpose(x, (0, 2, 1)), "pc")


def test_broadcast_to():
    x = sample((3, 1), np.float64, 22)
    assert_same(run(lambda t: pc.broadcast_to(t, (2, 3, 4)), x), np.broadcast_to(x, (2, 3, 4)),
                "broadcast_to")
    s = np.asarray(1.5, np.float32)
    assert_same(run(lambda t: pc.broadcast_to(t, (2,)), s), np.broadcast_to(s, (2,)), "0-d")


@pytest.mark.parametrize("axis", [0, 1, -1, None])
def test_concatenate(axis):
    a = sample((2, 3), np.float32, 23)
    b = sample((2, 3), np.float64, 24)
    c = sample((2, 3), np.int32, 25)
    assert_same(run(lambda x, y, z: pc.concatenate([x, y, z], axis=axis), a, b, c),
                np.concatenate([a, b, c], axis=axis), f"concatenate axis={axis}")
    assert_same(run(lambda x: pc.concatenate((x, x), axis), a), np.concatenate((a, a), axis),
                "same dtype")


@pytest.mark.parametrize("dtype", DTYPES)
def test_zeros_like_ones_like(dtype):
    x = sample((2, 3), dtype, 26)
    assert_same(run(pc.zeros_like, x), np.zeros_like(x), "zeros_like")
    assert_same(run(pc.ones_like, x), np.ones_like(x), "ones_like")
    assert_same(run(lambda t: pc.ones_like(t, dtype=np.int64), x),
                np.ones_like(x, dtype=np.int64), "ones_like dtype")


def test_where_broadcasts_and_promotes():
    cond = sample((3, 1), np.bool_, 27)
    a = sample((4,), np.float32, 28)
    b = sample((3, 4), np.int32, 29)
    assert_same(run(pc.where, cond, a, b), np.where(cond, a, b), "where")
    assert_same(run(lambda c, x: pc.where(c, x, 0.0), cond, a), np.where(cond, a, 0.0), "scalar")
    ints = sample((3, 4), np.int32, 30)
    assert_same(run(lambda c, x: pc.where(c, x, -x), ints, a), np.where(ints, a, -a), "int cond")


def test_where_with_nan_in_the_untaken_branch():
    x = np.array([-1.0, 0.0, 4.0], np.float32)
    got = run(lambda t: pc.where(t > 0, pc.sqrt(t), 0.0), x)
    with np.errstate(invalid="ignore"):
        assert_same(got, np.where(x > 0, np.sqrt(x), 0.0).astype(np.float32), "where nan")


@pytest.mark.parametrize("source", DTYPES)
@pytest.mark.parametrize("target", DTYPES)
def test_astype(source, target):
    x = sample((5,), source, 31, low=-2, high=2)
    assert_same(run(lambda t: t.astype(target), x), x.astype(target), f"{source}->{target}")


def test_stop_gradient_keeps_values_and_pytrees():
    x = sample((3,), np.float32, 32)
    got = run(lambda t: pc.stop_gradient({"a": t, "b": (t * 2,)}), x)
    assert_same(got["a"], x, "stop_gradient a")
    assert_same(got["b"][0], x * 2, "stop_gradient b")


def test_properties():
    seen = {}

    def f(t):
        seen.update(shape=t.shape, ndim=t.ndim, dtype=t.dtype, len=len(t))
        return t

    run(f, np.zeros((3, 2), np.int64))
    assert seen == {"shape": (3, 2), "ndim": 2, "dtype": np.dtype(np.int64), "len": 3}


def test_iteration_over_first_axis():
    x = sample((3, 2), np.float32, 33)
    got = run(lambda t: [row * 2 for row in t], x)
    for row, expected in zip(got, x):
        assert_same(row, expected * 2, "row")


# -- indexing -----------------------------------------------------------------------------

INDICES = [
    1, -1, (0, 2), (-2, -1, 3), slice(1, None), slice(None, None, 2), (slice(None), 1),
    (Ellipsis, 0), (None, 1), (slice(1, -1), None, slice(None, None, 3)), (..., None),
    (slice(-3, None), slice(4, 1)), slice(10, 20), (0, ..., slice(0, 5, 2)), (),
]


@pytest.mark.parametrize("key", INDICES, ids=str)
def test_indexing_matches_numpy(key):
    x = sample((3, 4, 5), np.float32, 34)
    assert_same(run(lambda t: t[key], x), x[key], f"x[{key}]")


@FAST
@given(data=st.data())
def test_random_slices_match_numpy(data):
    shape = tuple(data.draw(st.lists(st.integers(0, 6), min_size=1, max_size=3)))
    bound = st.none() | st.integers(-8, 8)
    key = tuple(slice(data.draw(bound), data.draw(bound), data.draw(st.none() | st.integers(1, 3)))
                for _ in shape)
    x = np.arange(int(np.prod(shape)), dtype=np.int32).reshape(shape)
    assert_same(run(lambda t: t[key], x), x[key], f"x{shape}[{key}]")


# -- Python scalars as arguments ----------------------------------------------------------


def test_python_scalar_arguments_are_weak():
    x = sample((3,), np.float32, 35)
    assert_same(run(lambda t, s: t * s, x, 2.5), x * 2.5, "f32 * python float")
    assert_same(run(lambda t, n: t + n, x.astype(np.int32), 3), x.astype(np.int32) + 3,
                "i32 + python int")
    got = run(lambda a, b: a * b, 3, 0.5)
    assert isinstance(got, np.ndarray) and got.shape == () and got.dtype == np.float32
    assert float(got) == 1.5


NEGATIVE_STEP_KEYS = [np.s_[::-1], np.s_[:, ::-1], np.s_[3:0:-2, 5::-3], np.s_[::-1, 2],
                      np.s_[-1::-1, 1:4], np.s_[0:3:-1], np.s_[::-7], np.s_[..., ::-2],
                      np.s_[None, ::-1], np.s_[-2:-5:-1, ::2]]


@pytest.mark.parametrize("key", NEGATIVE_STEP_KEYS, ids=str)
def test_negative_slice_steps_like_numpy(key):
    x = np.arange(24, dtype=np.float32).reshape(4, 6)
    np.testing.assert_array_equal(pc.interpret(lambda x: x[key])(x), x[key])
    np.testing.assert_array_equal(pc.compile(lambda x: x[key])(x), x[key])
    weights = np.random.default_rng(0).standard_normal(x[key].shape).astype(np.float32)
    grad = pc.grad(lambda x: (x[key] * weights).sum())(x)
    expected = np.zeros_like(x)
    expected[key] = weights  # basic indexing: each element of x is picked at most once
    np.testing.assert_array_equal(grad, expected)
