"""Every VJP rule of ir/passes/vjp_rules.py against float64 central finite differences,
plus named edge cases (ties, NaN in untaken branches, the double-where idiom)."""
from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ir
from control_flow_cases import cond_loss, scan_loss
from ir import PRIMITIVES, DType, TensorType
from ir.passes.autodiff import vjp_graph
from ir.passes.vjp_rules import VJP_RULES

from fd import check_vjp, f64, graph_of, random_array, vjp_by_graph


def positive(rng, shape):
    return rng.uniform(0.5, 2.0, shape)


def away_from_zero(rng, shape):
    return rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


@dataclass
class Case:
    name: str
    fn: Callable
    types: tuple[TensorType, ...]
    sample: tuple[Callable | None, ...] = ()   # per input: rng, shape -> array (None: normal)
    eps: float = 1e-6
    tolerance: tuple[float, float] | None = None

    def inputs(self, rng):
        arrays = []
        for i, t in enumerate(self.types):
            maker = self.sample[i] if i < len(self.sample) else None
            arrays.append(random_array(t, rng) if maker is None
                          else np.asarray(maker(rng, t.shape), dtype=t.dtype.numpy))
        return arrays


def unary(prim, sample=None, **attrs):
    return lambda shape: Case(f"{prim}{list(shape)}", lambda b, x: b.emit(prim, x, **attrs),
                              (f64(*shape),), (sample,))


def binary(prim, first=None, second=None):
    return lambda shape: Case(f"{prim}{list(shape)}", lambda b, x, y: b.emit(prim, x, y),
                              (f64(*shape), f64(*shape)), (first, second))


ELEMENTWISE = [
    unary("exp"), unary("log", positive), unary("tanh"), unary("sqrt", positive),
    unary("sin"), unary("cos"), unary("neg"), unary("abs", away_from_zero),
    binary("add"), binary("sub"), binary("mul"), binary("div", None, away_from_zero),
    binary("pow", positive), binary("max"), binary("min"),
]


def dot_case(name, lhs, rhs, lb=(), rb=(), lc=(), rc=()):
    return Case(f"dot {name}", lambda b, x, y: b.dot(x, y, lhs_batch=lb, rhs_batch=rb,
                                                     lhs_contract=lc, rhs_contract=rc),
                (f64(*lhs), f64(*rhs)))


DOT_CASES = [
    dot_case("matmul", (3, 4), (4, 5), lc=(1,), rc=(0,)),
    dot_case("batched matmul", (2, 3, 4), (2, 4, 5), lb=(0,), rb=(0,), lc=(2,), rc=(1,)),
    dot_case("lhs contracts axis 0", (4, 3), (4, 5), lc=(0,), rc=(0,)),
    dot_case("rhs contracts its last axis", (3, 4), (5, 4), lc=(1,), rc=(1,)),
    dot_case("two contracting axes", (2, 3, 4), (3, 4, 5), lc=(1, 2), rc=(0, 1)),
    dot_case("contracting axes paired out of order", (2, 3, 4), (4, 3, 5), lc=(2, 1), rc=(0, 1)),
    dot_case("rhs contracting axes out of order", (2, 3, 4), (4, 3, 5), lc=(1, 2), rc=(1, 0)),
    dot_case("lhs free axes around the contraction", (2, 4, 3), (4, 5), lc=(1,), rc=(0,)),
    dot_case("batch axis in the middle", (3, 2, 4), (4, 2, 5), lb=(1,), rb=(1,), lc=(2,), rc=(0,)),
    dot_case("two batch axes, swapped", (2, 3, 4, 2), (3, 2, 2, 5), lb=(0, 1), rb=(1, 0),
             lc=(3,), rc=(2,)),
    dot_case("outer product", (3,), (4,), ),
    dot_case("vector inner product to 0-d", (4,), (4,), lc=(0,), rc=(0,)),
    dot_case("matrix-vector", (3, 4), (4,), lc=(1,), rc=(0,)),
]

SHAPE_CASES = [
    Case("broadcast_in_dim row to matrix", lambda b, x: b.broadcast_in_dim(
        x, shape=(2, 3), dims=(1,)), (f64(3),)),
    Case("broadcast_in_dim stretches size-1 axes", lambda b, x: b.broadcast_in_dim(
        x, shape=(4, 2, 3), dims=(1, 2)), (f64(1, 3),)),
    Case("broadcast_in_dim keeps an unstretched size-1 axis", lambda b, x: b.broadcast_in_dim(
        x, shape=(2, 3, 1), dims=(1, 2)), (f64(3, 1),)),
    Case("broadcast_in_dim of a 0-d value", lambda b, x: b.broadcast_in_dim(
        x, shape=(2, 2), dims=()), (f64(),)),
    Case("reshape", lambda b, x: b.reshape(x, shape=(3, 4)), (f64(2, 6),)),
    Case("reshape to 0-d", lambda b, x: b.reshape(x, shape=()), (f64(1, 1),)),
    Case("transpose", lambda b, x: b.transpose(x, perm=(2, 0, 1)), (f64(2, 3, 4),)),
    Case("slice with strides", lambda b, x: b.slice(
        x, start=(1, 0), stop=(7, 5), stride=(2, 3)), (f64(7, 5),)),
    Case("slice with a stride past the end", lambda b, x: b.slice(
        x, start=(0, 2), stop=(6, 4), stride=(4, 1)), (f64(6, 5),)),
    Case("slice of everything", lambda b, x: b.slice(
        x, start=(0, 0), stop=(2, 3), stride=(1, 1)), (f64(2, 3),)),
    Case("rev of two axes, then a weighting", lambda b, x: b.mul(
        b.rev(x, dims=(0, 2)), b.sin(x)), (f64(3, 2, 4),)),
    Case("pad by nothing", lambda b, x: b.pad(
        x, low=(0, 0), high=(0, 0), interior=(0, 0)), (f64(2, 3),)),
    Case("pad with interior", lambda b, x: b.pad(
        x, low=(1, 0), high=(2, 1), interior=(2, 1)), (f64(3, 2),)),
    Case("concatenate", lambda b, x, y, z: b.concatenate(x, y, z, axis=1),
         (f64(2, 1), f64(2, 3), f64(2, 2))),
    Case("reduce_sum over two axes", lambda b, x: b.reduce_sum(x, axes=(0, 2)),
         (f64(2, 3, 4),)),
    Case("reduce_sum to 0-d", lambda b, x: b.reduce_sum(x, axes=(0, 1)), (f64(2, 3),)),
    Case("reduce_sum over no axes", lambda b, x: b.reduce_sum(x, axes=()), (f64(3,),)),
    Case("reduce_max over two axes", lambda b, x: b.reduce_max(x, axes=(0, 2)),
         (f64(2, 3, 4),)),
    Case("reduce_min over one axis", lambda b, x: b.reduce_min(x, axes=(1,)), (f64(3, 4),)),
    Case("reduce_max to 0-d", lambda b, x: b.reduce_max(x, axes=(0,)), (f64(5,),)),
    Case("logsumexp over two axes", lambda b, x: b.logsumexp(x, axes=(0, 2)), (f64(2, 3, 4),)),
    Case("logsumexp of a leading axis", lambda b, x: b.logsumexp(x, axes=(0,)), (f64(4, 3),)),
    Case("select", lambda b, p, x, y: b.select(p, x, y),
         (TensorType((3, 4), DType.bool), f64(3, 4), f64(3, 4))),
    Case("convert f64 -> f32 -> f64", lambda b, x: b.convert(
        b.mul(b.convert(x, dtype=DType.f32), b.convert(x, dtype=DType.f32)), dtype=DType.f64),
        (f64(3,),), eps=1e-2, tolerance=(1e-4, 1e-5)),   # f32 values: larger step
    *[Case(f"{prim} gives no gradient", lambda b, x, y, prim=prim: b.select(
        b.emit(prim, x, y), x, b.neg(y)), (f64(5,), f64(5,)))
      for prim in ("lt", "le", "gt", "ge", "eq", "ne")],
    Case("int convert cuts the gradient", lambda b, x: b.mul(
        x, b.convert(b.convert(b.mul(x, b.full((4,), 3.0, DType.f64)), dtype=DType.i32),
                     dtype=DType.f64)), (f64(4,),)),
    Case("iota and constant", lambda b, x: b.mul(b.add(x, b.iota(
        shape=(2, 3), dtype=DType.f64, dimension=1)), b.full((2, 3), 2.5, DType.f64)),
        (f64(2, 3),)),
]

def _conv(b, x, w, strides, low, high, lhs_dilation=(1, 1), rhs_dilation=(1, 1), groups=1):
    return b.conv(x, w, strides=strides, padding_low=low, padding_high=high,
                  lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation,
                  feature_group_count=groups)


def _indices(b, values, dtype=DType.i64):
    return b.emit("constant", value=np.asarray(values, dtype=dtype.numpy))


# the indices repeat (duplicates accumulate) and leave the axis (-1, 7 clamp)
_PICKS = [[0, 2, 2, -1], [3, 3, 7, 1]]

WINDOW_CASES = [
    Case("conv SAME", lambda b, x, w: _conv(b, x, w, (1, 1), (1, 1), (1, 1)),
         (f64(2, 4, 5, 3), f64(3, 3, 3, 2))),
    Case("conv strided, dilated, grouped, cropped", lambda b, x, w: _conv(
        b, x, w, (2, 1), (0, -1), (1, 2), (1, 2), (2, 1), 2), (f64(1, 6, 3, 4), f64(2, 2, 2, 4))),
    Case("conv 1-d", lambda b, x, w: _conv(b, x, w, (2,), (1,), (0,), (1,), (1,)),
         (f64(2, 7, 2), f64(3, 2, 3))),
    Case("reduce_window_sum strided and padded", lambda b, x: b.reduce_window_sum(
        x, window=(2, 3), strides=(2, 2), padding_low=(1, 0), padding_high=(0, 2)),
        (f64(5, 6),)),
    Case("reduce_window_max overlapping windows", lambda b, x: b.reduce_window_max(
        x, window=(3, 2), strides=(1, 2), padding_low=(1, 1), padding_high=(1, 0)),
        (f64(4, 5),)),
    Case("reduce_window_max tiling windows", lambda b, x: b.reduce_window_max(
        x, window=(1, 2, 3), strides=(1, 2, 3), padding_low=(0, 0, 0), padding_high=(0, 0, 0)),
        (f64(2, 4, 6),)),
    Case("gather with repeated and clamped indices", lambda b, x: b.gather(
        x, _indices(b, _PICKS), axis=1), (f64(2, 5),)),
    Case("scatter_add with repeated indices", lambda b, x, u: b.scatter_add(
        x, _indices(b, _PICKS, DType.i32), u, axis=1), (f64(2, 5), f64(2, 4))),
]

BOOL = TensorType((), DType.bool)
CONTROL_FLOW_CASES = [
    Case("scan", scan_loss, (f64(2, 3), f64(2, 3), f64(5, 2, 3))),
    Case("scan reversed, checkpointed", functools.partial(scan_loss, reverse=True,
                                                           checkpoint=True),
         (f64(2, 3), f64(2, 3), f64(4, 2, 3))),
    Case("scan of no trips", scan_loss, (f64(3,), f64(3,), f64(0, 3))),
    Case("cond taking the true branch", cond_loss, (BOOL, f64(3,), f64(3,)),
         (lambda rng, shape: np.array(True),)),
    Case("cond taking the false branch", cond_loss, (BOOL, f64(3,), f64(3,)),
         (lambda rng, shape: np.array(False),)),
]

ALL_CASES = ([make(shape) for make in ELEMENTWISE for shape in [(3, 4), ()]]
             + DOT_CASES + SHAPE_CASES + WINDOW_CASES + CONTROL_FLOW_CASES)


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda case: case.name)
def test_vjp_matches_central_differences(case):
    rng = np.random.default_rng(zlib.crc32(case.name.encode()))
    graph = graph_of(case.fn, *case.types)
    check_vjp(graph, case.inputs(rng), rng, eps=case.eps, tolerance=case.tolerance,
              what=case.name)


def test_every_primitive_has_a_rule():
    assert set(VJP_RULES) == set(PRIMITIVES)


def test_every_primitive_is_exercised():
    used = {op.prim for case in ALL_CASES for op in graph_of(case.fn, *case.types).ops}
    # stop_gradient's true derivative differs from its rule, and while_loop has none:
    # named tests cover them
    assert set(PRIMITIVES) - used == {"stop_gradient", "while_loop"}


@pytest.mark.parametrize("dims", [dict(lb=(), rb=(), lc=(1,), rc=(0,)),
                                  dict(lb=(0,), rb=(0,), lc=(2,), rc=(1,))])
def test_matmul_backward_needs_no_transpose(dims):
    lhs, rhs = ((3, 4), (4, 5)) if not dims["lb"] else ((2, 3, 4), (2, 4, 5))
    graph = graph_of(lambda b, x, y: b.dot(x, y, lhs_batch=dims["lb"], rhs_batch=dims["rb"],
                                           lhs_contract=dims["lc"], rhs_contract=dims["rc"]),
                     f64(*lhs), f64(*rhs))
    prims = [op.prim for op in vjp_graph(graph).graph.ops]
    assert prims.count("dot") == 3 and "transpose" not in prims


# --------------------------------------------------------------------------------------
# hypothesis: random shapes for broadcasts, reductions and elementwise chains


@st.composite
def broadcasts(draw):
    """A target shape, increasing dims into it, and an operand shape with size-1 axes."""
    target = draw(st.lists(st.integers(1, 3), min_size=0, max_size=3).map(tuple))
    dims = tuple(sorted(draw(st.sets(st.sampled_from(range(len(target))) if target
                                     else st.nothing()))))
    operand = tuple(draw(st.sampled_from([1, target[d]])) for d in dims)
    return operand, target, dims


@settings(max_examples=40, deadline=None)
@given(broadcasts(), st.integers(0, 2**16))
def test_broadcast_in_dim_vjp_random_shapes(spec, seed):
    operand, target, dims = spec
    rng = np.random.default_rng(seed)
    graph = graph_of(lambda b, x: b.tanh(b.broadcast_in_dim(x, shape=target, dims=dims)),
                     f64(*operand))
    check_vjp(graph, [random_array(graph.inputs[0].type, rng)], rng, what=f"{spec}")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 3), min_size=1, max_size=3).map(tuple),
       st.sampled_from(["reduce_sum", "reduce_max", "reduce_min", "logsumexp"]), st.data())
def test_reduction_vjp_random_axes(shape, prim, data):
    axes = tuple(sorted(data.draw(st.sets(st.sampled_from(range(len(shape)))))))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    graph = graph_of(lambda b, x: b.emit(prim, x, axes=axes), f64(*shape))
    check_vjp(graph, [random_array(graph.inputs[0].type, rng)], rng, what=f"{prim} {axes}")


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 3), min_size=0, max_size=3).map(tuple),
       st.lists(st.sampled_from(["add", "sub", "mul", "max", "min"]), min_size=1, max_size=4),
       st.integers(0, 2**16))
def test_binary_chain_vjp_random_shapes(shape, prims, seed):
    """x op y op x op y ...: fan-out of both inputs through several binary ops."""
    def chain(b, x, y):
        value = x
        for i, prim in enumerate(prims):
            value = b.emit(prim, value, y if i % 2 == 0 else x)
        return value
    rng = np.random.default_rng(seed)
    graph = graph_of(chain, f64(*shape), f64(*shape))
    check_vjp(graph, [random_array(t, rng) for t in graph.input_types], rng, what=str(prims))


# --------------------------------------------------------------------------------------
# named edge cases


def joint_grads(graph, inputs, cotangents, wrt=None):
    return vjp_by_graph(graph, inputs, cotangents, wrt)[1]


def test_binary_max_min_ties_split_equally():
    x = np.array([1.0, 2.0, 3.0, -1.0])
    y = np.array([1.0, 5.0, 0.0, -1.0])
    g = np.array([2.0, 3.0, 5.0, 7.0])
    for prim, x_wins in (("max", x > y), ("min", x < y)):
        graph = graph_of(lambda b, a, c: b.emit(prim, a, c), f64(4), f64(4))
        ct_x, ct_y = joint_grads(graph, [x, y], [g])
        tie = x == y
        np.testing.assert_array_equal(ct_x, np.where(tie, g / 2, np.where(x_wins, g, 0.0)))
        np.testing.assert_array_equal(ct_y, np.where(tie, g / 2, np.where(x_wins, 0.0, g)))


@pytest.mark.parametrize("prim,np_reduce", [("reduce_max", np.max), ("reduce_min", np.min)])
def test_reduce_max_min_ties_split_equally(prim, np_reduce):
    x = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [-1.0, 4.0, 0.0, -1.0]])
    g = np.array([6.0, 10.0, 3.0])
    graph = graph_of(lambda b, a: b.emit(prim, a, axes=(1,)), f64(3, 4))
    (ct,) = joint_grads(graph, [x], [g])
    hits = x == np_reduce(x, axis=1, keepdims=True)
    expected = hits * (g / hits.sum(axis=1))[:, None]
    np.testing.assert_array_equal(ct, expected)


def test_reduce_max_with_nan_row_gives_finite_zero_cotangent():
    x = np.array([[1.0, np.nan], [2.0, 5.0]])
    graph = graph_of(lambda b, a: b.reduce_max(a, axes=(1,)), f64(2, 2))
    (ct,) = joint_grads(graph, [x], [np.array([1.0, 1.0])])
    np.testing.assert_array_equal(ct, [[0.0, 0.0], [0.0, 1.0]])


def test_abs_gradient_is_zero_at_zero():
    x = np.array([-2.0, 0.0, 3.0, -0.0])
    graph = graph_of(lambda b, a: b.abs(a), f64(4))
    (ct,) = joint_grads(graph, [x], [np.full(4, 5.0)])
    np.testing.assert_array_equal(ct, 5.0 * np.sign(x))


def test_select_with_nan_in_untaken_branch_keeps_cotangents_finite():
    pred = np.array([True, False, True, False])
    a = np.array([1.0, np.nan, 2.0, np.inf])
    c = np.array([np.nan, 3.0, -np.inf, 4.0])
    g = np.array([2.0, 3.0, 5.0, 7.0])
    graph = graph_of(lambda b, p, x, y: b.select(p, x, y),
                     TensorType((4,), DType.bool), f64(4), f64(4))
    ct_a, ct_c = joint_grads(graph, [pred, a, c], [g])
    np.testing.assert_array_equal(ct_a, np.where(pred, g, 0.0))
    np.testing.assert_array_equal(ct_c, np.where(pred, 0.0, g))


def test_double_where_sqrt_has_finite_gradient_at_and_below_zero():
    def safe_sqrt(b, x):
        zero = b.zeros(x.type)
        positive_x = b.gt(x, zero)
        inner = b.select(positive_x, x, b.ones(x.type))
        return b.select(positive_x, b.sqrt(inner), zero)
    x = np.array([-1.0, 0.0, 0.25, 4.0])
    g = np.array([1.0, 2.0, 3.0, 4.0])
    graph = graph_of(safe_sqrt, f64(4))
    (ct,) = joint_grads(graph, [x], [g])
    assert np.all(np.isfinite(ct))
    np.testing.assert_allclose(ct, np.where(x > 0, g * 0.5 / np.sqrt(np.maximum(x, 1e-300)), 0))


def test_pow_gradients_at_zero_base_and_zero_exponent_are_finite():
    x = np.array([0.0, 2.0, 0.0])
    y = np.array([2.0, 0.0, 0.0])
    graph = graph_of(lambda b, a, c: b.pow(a, c), f64(3), f64(3))
    ct_x, ct_y = joint_grads(graph, [x, y], [np.ones(3)])
    np.testing.assert_array_equal(ct_x, [0.0, 0.0, 0.0])           # 2*0**1, 0, 0
    np.testing.assert_array_equal(ct_y, [0.0, np.log(2.0), 0.0])    # log(x) * x**y


def test_integer_and_bool_operands_get_no_cotangent():
    graph = graph_of(lambda b, n, x: b.mul(b.convert(n, dtype=DType.f64), x),
                     TensorType((3,), DType.i32), f64(3))
    vjp = vjp_graph(graph)
    assert vjp.wrt == (1,)
    n, x, g = np.array([1, -2, 3], np.int32), np.ones(3), np.array([1.0, 2.0, 3.0])
    (ct_x,) = ir.interpret(vjp.graph, n, x, g)[1:]
    np.testing.assert_array_equal(ct_x, n * g)


def test_stop_gradient_blocks_the_cotangent():
    graph = graph_of(lambda b, a: b.mul(a, b.stop_gradient(b.exp(a))), f64(4))
    x, g = np.array([-1.0, 0.0, 0.5, 2.0]), np.array([1.0, 2.0, 3.0, 4.0])
    (ct,) = joint_grads(graph, [x], [g])
    np.testing.assert_allclose(ct, g * np.exp(x), rtol=1e-15)   # not g * (1 + x) * exp(x)
