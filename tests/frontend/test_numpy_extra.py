"""The NumPy functions of issue 17 (pad, stack, arange, zeros/ones/full, argmax/argmin,
clip, squeeze/expand_dims, einsum, take/take_along_axis, var/std, log1p/expm1/erf,
// and %, nn.softplus, nn.embedding) against NumPy (or math.erf) on the same inputs,
interpreted, with dtypes and broadcasting; plus a compiled run of all of them in one
function and the errors at the user's line."""
from __future__ import annotations

import math

import numpy as np
import pytest

import propc as pc
from frontend_helpers import DTYPES, NUMERIC, assert_same, run, sample

FLOATS = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", NUMERIC)
def test_floor_divide_and_mod_broadcast_like_numpy(dtype):
    a = sample((3, 4), dtype, seed=1, low=-9, high=9)
    b = sample((4,), dtype, seed=2, low=-4, high=4)
    if np.dtype(dtype).kind == "f":
        b = np.where(np.abs(b) < 0.25, 1.5, b).astype(dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        assert_same(run(lambda x, y: x // y, a, b), a // b, "//")
        assert_same(run(lambda x, y: x % y, a, b), a % b, "%")
        assert_same(run(pc.floor_divide, a, 3), np.floor_divide(a, 3), "// 3")
        assert_same(run(pc.mod, 7, b), np.mod(np.asarray(7, dtype), b), "7 % b")


@pytest.mark.parametrize("dtype", FLOATS)
def test_log1p_expm1_erf_softplus_match_numpy(dtype):
    x = np.concatenate([sample((20,), dtype, seed=3, low=-4, high=4),
                        np.array([0.0, 1e-9, -1e-7, 3e-4, -0.49, 0.51, 6.0], dtype)])
    assert_same(run(pc.log1p, np.abs(x)), np.log1p(np.abs(x)), "log1p")
    edges = np.array([np.inf, -np.inf, np.nan, -1.0, -0.5, 1e30], dtype)
    with np.errstate(all="ignore"):
        assert_same(run(pc.log1p, edges), np.log1p(edges), "log1p edges")
        assert_same(run(pc.expm1, edges), np.expm1(edges), "expm1 edges")
    assert_same(run(pc.expm1, x), np.expm1(x), "expm1")
    erf = np.array([math.erf(v) for v in x.astype(np.float64)], dtype)
    assert_same(run(pc.erf, x), erf, "erf", rtol=2e-6, atol=2e-7)
    softplus = np.logaddexp(0, x.astype(np.float64)).astype(dtype)
    assert_same(run(pc.nn.softplus, x), softplus, "softplus")


@pytest.mark.parametrize("dtype", NUMERIC)
def test_clip_var_std_like_numpy(dtype):
    a = sample((3, 5), dtype, seed=4)
    assert_same(run(lambda x: pc.clip(x, -1, 2), a), np.clip(a, -1, 2), "clip")
    assert_same(run(lambda x: pc.clip(x, None, np.zeros(5, dtype)), a),
                np.clip(a, None, np.zeros(5, dtype)), "clip broadcast bound")
    assert_same(run(pc.var, a), np.var(a), "var")
    assert_same(run(lambda x: pc.var(x, axis=0, ddof=1), a), np.var(a, axis=0, ddof=1), "var 0")
    assert_same(run(lambda x: pc.std(x, axis=-1, keepdims=True), a),
                np.std(a, axis=-1, keepdims=True), "std")


@pytest.mark.parametrize("dtype", DTYPES)
def test_argmax_argmin_first_extreme_int64(dtype):
    a = sample((4, 6), dtype, seed=5, low=-2, high=2)   # small range: many ties
    for pc_fn, np_fn in ((pc.argmax, np.argmax), (pc.argmin, np.argmin)):
        assert_same(run(pc_fn, a), np_fn(a), np_fn.__name__)
        assert_same(run(lambda x: pc_fn(x, axis=0), a), np_fn(a, axis=0), np_fn.__name__)
        assert_same(run(lambda x: pc_fn(x, axis=-1), a), np_fn(a, axis=-1), np_fn.__name__)


def test_argmax_picks_the_first_nan_like_numpy():
    a = np.array([[1.0, np.nan, 5.0, np.nan], [2.0, 0.0, 2.0, -1.0]], np.float32)
    assert_same(run(lambda x: pc.argmax(x, axis=1), a), np.argmax(a, axis=1))
    assert_same(run(lambda x: pc.argmin(x, axis=1), a), np.argmin(a, axis=1))


@pytest.mark.parametrize("dtype", DTYPES)
def test_shape_functions_like_numpy(dtype):
    a = sample((2, 1, 3), dtype, seed=6)
    b = sample((2, 1, 3), dtype, seed=7)
    assert_same(run(pc.squeeze, a), np.squeeze(a), "squeeze")
    assert_same(run(lambda x: pc.squeeze(x, axis=1), a), np.squeeze(a, axis=1), "squeeze 1")
    assert_same(run(lambda x: pc.expand_dims(x, (0, -1)), a), np.expand_dims(a, (0, -1)))
    assert_same(run(lambda x, y: pc.stack([x, y], axis=-1), a, b), np.stack([a, b], axis=-1))
    assert_same(run(lambda x: pc.pad(x, ((1, 0), (0, 2), (1, 1))), a),
                np.pad(a, ((1, 0), (0, 2), (1, 1))), "pad")
    if dtype is not np.bool_:
        assert_same(run(lambda x: pc.pad(x, 1, constant_values=3), a),
                    np.pad(a, 1, constant_values=3), "pad with 3")


def test_creation_functions_like_numpy():
    assert_same(run(lambda: pc.arange(5)), np.arange(5), "arange int")
    assert_same(run(lambda: pc.arange(1, 10, 3)), np.arange(1, 10, 3), "arange step")
    assert_same(run(lambda: pc.arange(0.5, 2.0, 0.25)), np.arange(0.5, 2.0, 0.25))
    assert_same(run(lambda: pc.arange(5, 0, -2, dtype=np.int32)),
                np.arange(5, 0, -2, dtype=np.int32))
    assert_same(run(lambda: pc.zeros((2, 3), np.int32)), np.zeros((2, 3), np.int32))
    assert_same(run(lambda: pc.ones(4)), np.ones(4, np.float32), "ones: float32 default")
    assert_same(run(lambda: pc.full((2,), 7)), np.full((2,), 7), "full int")
    assert_same(run(lambda: pc.full((2, 2), 1.5, np.float64)), np.full((2, 2), 1.5))


EINSUMS = [
    ("ij,jk->ik", [(3, 4), (4, 5)]), ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("ij->ji", [(3, 4)]), ("ij->", [(3, 4)]), ("i,i->", [(5,), (5,)]), ("i,j->ij", [(3,), (4,)]),
    ("ij,kj", [(3, 4), (5, 4)]), ("ijk,ik->j", [(2, 3, 4), (2, 4)]),
    ("ab,bc,cd->ad", [(2, 3), (3, 4), (4, 5)]), ("abc->cb", [(2, 3, 4)]),
]


@pytest.mark.parametrize("subscripts,shapes", EINSUMS, ids=[e[0] for e in EINSUMS])
@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_einsum_like_numpy(subscripts, shapes, dtype):
    arrays = [sample(shape, dtype, seed=8 + i) for i, shape in enumerate(shapes)]
    expected = np.einsum(subscripts, *arrays).astype(dtype)
    assert_same(run(lambda *xs: pc.einsum(subscripts, *xs), *arrays), expected, subscripts)


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("dtype", DTYPES)
def test_take_and_take_along_axis_like_numpy(dtype, index_dtype):
    a = sample((4, 5), dtype, seed=9)
    idx = np.array([[3, 0], [-1, 2], [1, 1]], index_dtype)     # repeats, negative
    assert_same(run(lambda x, i: pc.take(x, i, axis=1), a, idx), np.take(a, idx, axis=1))
    assert_same(run(lambda x, i: pc.take(x, i), a, idx), np.take(a, idx), "flattened")
    along = np.array([[0, 4, 4], [1, 2, 3], [-1, 0, 0], [2, 2, 2]], index_dtype)
    assert_same(run(lambda x, i: pc.take_along_axis(x, i, axis=1), a, along),
                np.take_along_axis(a, along, axis=1))
    column = np.array([[1], [0], [3], [2]], index_dtype)      # broadcast-style picks
    assert_same(run(lambda x, i: pc.take_along_axis(x, i, 1), a, column),
                np.take_along_axis(a, column, 1), "label picking")


def test_out_of_range_indices_clamp_and_debug_builds_report_them(monkeypatch):
    a = np.arange(5, dtype=np.float32)
    idx = np.array([7, -9, 4, 0], np.int64)
    expected = a[np.clip(np.where(idx < 0, idx + 5, idx), 0, 4)]
    assert_same(run(lambda x, i: pc.take(x, i), a, idx), expected)
    monkeypatch.delenv("PROPC_DEBUG", raising=False)
    assert_same(pc.compile(lambda x, i: pc.take(x, i))(a, idx), expected, "compiled")
    monkeypatch.setenv("PROPC_DEBUG", "1")
    with pytest.raises(RuntimeError, match="gather"):       # codegen's BoundsCheckError
        pc.compile(lambda x, i: pc.take(x, i))(a, idx)


def test_embedding_and_its_gradient_accumulate_repeated_ids():
    table = sample((6, 3), np.float64, seed=10)
    ids = np.array([[1, 4, 1], [1, 0, 5]], np.int32)
    assert_same(run(pc.nn.embedding, ids, table), table[ids], "embedding")
    weights = sample((2, 3, 3), np.float64, seed=11)
    grad = pc.grad(lambda t: (pc.nn.embedding(ids, t) * weights).sum())(table)
    expected = np.zeros_like(table)
    np.add.at(expected, ids, weights)          # id 1 appears three times
    assert_same(grad, expected, "scatter_add of the cotangent")
    assert pc.check_grad(lambda t: (pc.nn.embedding(ids, t) ** 2).sum(), table).ok


def test_everything_compiled_matches_interpreted():
    rng = np.random.default_rng(12)
    x = rng.normal(size=(3, 4)).astype(np.float32)
    idx = np.array([2, 0, 2], np.int64)

    def f(x, idx):
        return (pc.log1p(pc.abs(x)), pc.expm1(x), pc.erf(x), x // 0.7, x % 0.7,
                pc.clip(x, -0.5, 0.5), pc.var(x, axis=1), pc.std(x), pc.argmax(x, axis=0),
                pc.argmin(x), pc.squeeze(pc.expand_dims(x, 0)), pc.stack([x, x]),
                pc.pad(x, 1, constant_values=2.0), pc.einsum("ij,kj->ik", x, x),
                pc.take(x, idx, axis=0), pc.take_along_axis(x, idx[:, None], 1),
                pc.nn.softplus(x), pc.arange(3) + pc.zeros(3, np.int64), pc.full((2,), 1.5))
    assert pc.compare(f, x, idx).ok


def test_gradients_of_the_compositions():
    x = sample((3, 4), np.float64, seed=13, low=-2, high=2)
    assert pc.check_grad(lambda x: (pc.erf(x) * pc.expm1(x) * pc.log1p(x * x)).sum(), x).ok
    assert pc.check_grad(lambda x: (pc.var(x, axis=0) + pc.nn.softplus(x).sum()).sum(), x).ok
    assert pc.check_grad(lambda x: pc.einsum("ij,kj->", x, x * x), x).ok
    assert pc.check_grad(lambda x: (pc.take_along_axis(x, np.array([[1], [3], [0]]), 1) ** 2)
                         .sum(), x).ok


# -- errors at the user's line --------------------------------------------------------


def test_non_integer_index_array_is_an_error_at_the_user_line():
    x = np.zeros((3, 4), np.float32)
    with pytest.raises(TypeError, match=r"test_numpy_extra.py:\d+.*int32 or int64"):
        run(lambda x: pc.take(x, np.array([0.0, 1.0])), x)


def test_einsum_label_size_mismatch_is_a_shape_error():
    with pytest.raises(pc.ShapeError, match="label 'j'"):
        run(lambda a, b: pc.einsum("ij,jk->ik", a, b), np.ones((2, 3)), np.ones((4, 2)))
