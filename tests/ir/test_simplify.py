"""Tests of ir/passes/simplify.py and its parts (fold, algebra, cse, dce).

Every rewrite is checked twice: the simplified graph has exactly the expected ops,
and `ir.interpret` gives the same numbers before and after on random inputs that
include NaN, infinities and signed zeros.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ir
from ir import Builder, DType, SourceLoc, TensorType
from ir.passes import simplify as simplify_module
from ir.passes.dce import dce, live_ops
from ir.passes.fold import FOLD_LIMIT
from ir.passes.simplify import cse, simplify

F32, F64, I32 = DType.f32, DType.f64, DType.i32
LOC = SourceLoc("model.py", 7)


def make_graph(types, body, name="t"):
    """Build a graph: inputs of `types`, ops from `body(b, *inputs)` (a value or a
    tuple of values, the outputs), every op stamped with LOC."""
    b = Builder(name)
    b.loc = LOC
    inputs = [b.input(TensorType(shape, dtype)) for shape, dtype in types]
    outputs = body(b, *inputs)
    b.output(*(outputs if isinstance(outputs, tuple) else (outputs,)))
    return b.build()


def prims(graph):
    return [op.prim for op in graph.ops]


def random_array(shape, dtype, rng, special=True):
    if dtype.is_int:
        return rng.integers(-50, 50, size=shape).astype(dtype.numpy)
    values = rng.standard_normal(shape).astype(dtype.numpy)
    if special and values.size >= 4:
        flat = values.reshape(-1)
        flat[:4] = [np.nan, np.inf, -np.inf, -0.0]
        rng.shuffle(flat)
    return values


def assert_same_results(before, after, seed=0, exact=True):
    """Both graphs give the same outputs (same dtypes, shapes, NaN positions)."""
    rng = np.random.default_rng(seed)
    arrays = [random_array(v.shape, v.dtype, rng) for v in before.inputs]
    expected = ir.interpret(before, *arrays)
    got = ir.interpret(after, *arrays)
    assert len(expected) == len(got)
    for e, g in zip(expected, got):
        assert e.dtype == g.dtype and e.shape == g.shape
        if exact:
            np.testing.assert_array_equal(g, e)
        else:
            np.testing.assert_allclose(g, e, rtol=1e-6)


def simplified(graph, exact=True):
    """Simplify, check purity, idempotence and equal results; return the result."""
    text = str(graph)
    result = simplify(graph, verify=True)
    assert str(graph) == text
    assert str(simplify(result)) == str(result)
    assert result.input_types == graph.input_types
    assert result.output_types == graph.output_types
    assert {op.loc for op in result.ops} <= {op.loc for op in graph.ops}
    assert_same_results(graph, result, exact=exact)
    return result


# --------------------------------------------------------------------------------------
# identities with a neutral constant


NEUTRAL_CASES = {
    "x*1": lambda b, x: b.mul(x, b.ones(x.type)),
    "1*x": lambda b, x: b.mul(b.ones(x.type), x),
    "x+(-0)": lambda b, x: b.add(x, b.full(x.shape, -0.0 if x.dtype.is_float else 0, x.dtype)),
    "(-0)+x": lambda b, x: b.add(b.full(x.shape, -0.0 if x.dtype.is_float else 0, x.dtype), x),
    "x-0": lambda b, x: b.sub(x, b.zeros(x.type)),
    "x/1": lambda b, x: b.div(x, b.ones(x.type)),
    "x*dense1": lambda b, x: b.mul(x, b.constant(value=np.ones(x.shape, x.dtype.numpy))),
}


@pytest.mark.parametrize("dtype", [F32, F64, I32])
@pytest.mark.parametrize("case", sorted(NEUTRAL_CASES))
def test_neutral_constant_is_removed(case, dtype):
    graph = make_graph([((3, 4), dtype)], lambda b, x: NEUTRAL_CASES[case](b, x))
    result = simplified(graph)
    assert prims(result) == []
    assert result.outputs[0] is result.inputs[0]


@pytest.mark.parametrize("dtype", [F32, F64])
def test_float_plus_positive_zero_stays(dtype):
    """x + 0.0 is not x when x is -0.0 (1/(x + 0.0) is +inf, 1/x is -inf)."""
    graph = make_graph([((2,), dtype)], lambda b, x: b.div(
        b.ones(x.type), b.add(x, b.zeros(x.type))))
    result = simplified(graph)
    assert "add" in prims(result)
    x = np.array([-0.0, 2.0], dtype.numpy)
    with np.errstate(divide="ignore"):
        expected = 1.0 / (x + np.zeros_like(x))
    np.testing.assert_array_equal(ir.interpret(result, x)[0], expected)


def test_constant_that_is_not_neutral_stays():
    graph = make_graph([((4,), F32)], lambda b, x: (
        b.mul(x, b.full((4,), 1.5, F32)),
        b.add(x, b.constant(value=np.array([0, 0, 1, 0], np.float32))),
        b.sub(b.zeros(x.type), x)))
    kept = prims(simplified(graph))
    assert (kept.count("mul"), kept.count("add"), kept.count("sub")) == (1, 1, 1)


@pytest.mark.parametrize("build", [
    lambda b, x: b.mul(x, b.zeros(x.type)),
    lambda b, x: b.mul(b.zeros(x.type), x),
    lambda b, x: b.sub(x, x),
    lambda b, x: b.div(x, x),
], ids=["x*0", "0*x", "x-x", "x/x"])
def test_float_rules_forbidden_by_ieee_are_not_applied(build):
    graph = make_graph([((8,), F32)], build)
    result = simplified(graph)
    assert prims(result)[-1] in ("mul", "sub", "div")
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, 2.0, 3.0], np.float32)
    out = ir.interpret(result, x)[0]
    assert np.isnan(out[:3]).all(), "NaN and infinities must still give NaN"
    np.testing.assert_array_equal(out, ir.interpret(graph, x)[0])


@pytest.mark.parametrize("build", [
    lambda b, x: b.mul(x, b.zeros(x.type)),
    lambda b, x: b.sub(x, x),
], ids=["x*0", "x-x"])
def test_integer_zero_rules_fold(build):
    result = simplified(make_graph([((5,), I32)], build))
    assert "mul" not in prims(result) and "sub" not in prims(result)
    x = np.arange(5, dtype=np.int32) - 2
    np.testing.assert_array_equal(ir.interpret(result, x)[0], np.zeros(5, np.int32))


# --------------------------------------------------------------------------------------
# unary and shape rewrites


def test_double_negation_is_removed():
    result = simplified(make_graph([((3,), F32)], lambda b, x: b.neg(b.neg(x))))
    assert prims(result) == []


def test_triple_negation_keeps_one():
    result = simplified(make_graph([((3,), F32)], lambda b, x: b.neg(b.neg(b.neg(x)))))
    assert prims(result) == ["neg"]


def test_transposes_compose():
    def body(b, x):
        return b.transpose(b.transpose(x, perm=(2, 0, 1)), perm=(0, 2, 1))
    graph = make_graph([((2, 3, 4), F32)], body)
    result = simplified(graph)
    assert prims(result) == ["transpose"]
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    expected = np.transpose(np.transpose(x, (2, 0, 1)), (0, 2, 1))
    np.testing.assert_array_equal(ir.interpret(result, x)[0], expected)
    assert result.ops[0].loc == LOC


def test_transposes_that_cancel_are_removed():
    def body(b, x):
        return b.transpose(b.transpose(x, perm=(1, 2, 0)), perm=(2, 0, 1))
    assert prims(simplified(make_graph([((2, 3, 4), F32)], body))) == []


def test_reshapes_compose():
    def body(b, x):
        return b.reshape(b.reshape(x, shape=(6, 4)), shape=(4, 6))
    result = simplified(make_graph([((2, 3, 4), F32)], body))
    assert prims(result) == ["reshape"]
    assert result.ops[0].operands[0] is result.inputs[0]


def test_reshape_back_to_the_original_shape_is_removed():
    def body(b, x):
        return b.reshape(b.reshape(x, shape=(24,)), shape=(2, 3, 4))
    assert prims(simplified(make_graph([((2, 3, 4), F32)], body))) == []


@pytest.mark.parametrize("build", [
    lambda b, x: b.reshape(x, shape=(2, 3)),
    lambda b, x: b.transpose(x, perm=(0, 1)),
    lambda b, x: b.broadcast_in_dim(x, shape=(2, 3), dims=(0, 1)),
    lambda b, x: b.slice(x, start=(0, 0), stop=(2, 3), stride=(1, 1)),
    lambda b, x: b.convert(x, dtype=F32),
    lambda b, x: b.pad(x, low=(0, 0), high=(0, 0), interior=(0, 0)),
    lambda b, x: b.concatenate(x, axis=1),
    lambda b, x: b.reduce_max(x, axes=()),
], ids=["reshape", "transpose", "broadcast", "slice", "convert", "pad", "concatenate",
        "reduce_max"])
def test_identity_shape_ops_are_removed(build):
    assert prims(simplified(make_graph([((2, 3), F32)], build))) == []


def test_slices_that_are_not_identities_stay():
    def body(b, x):
        return (b.slice(x, start=(1, 0), stop=(2, 3), stride=(1, 1)),
                b.slice(x, start=(0, 0), stop=(2, 3), stride=(1, 2)))
    assert prims(simplified(make_graph([((2, 3), F32)], body))) == ["slice", "slice"]


def test_broadcasts_compose():
    def body(b, x):
        inner = b.broadcast_in_dim(x, shape=(3, 1, 4), dims=(0, 1))
        return b.broadcast_in_dim(inner, shape=(2, 3, 5, 4), dims=(1, 2, 3))
    result = simplified(make_graph([((3, 1), F32)], body))
    assert prims(result) == ["broadcast_in_dim"]
    assert result.ops[0].attrs["dims"] == (1, 2)


@pytest.mark.parametrize("path,removed", [
    ((F32, F64, F32), True), ((I32, F64, I32), True), ((DType.bool, F32, DType.bool), True),
    ((F64, F32, F64), False), ((I32, F32, I32), False), ((F32, I32, F32), False),
])
def test_convert_round_trips_only_fold_when_exact(path, removed):
    start, middle, end = path
    def body(b, x):
        return b.convert(b.convert(x, dtype=middle), dtype=end)
    graph = make_graph([((6,), start)], body)
    result = simplified(graph)
    assert prims(result) == ([] if removed else ["convert", "convert"])
    if start is F64:
        x = np.array([1 + 2.0 ** -40, 0.1, 1e300, -1e-300, np.nan, 3.0])
        np.testing.assert_array_equal(ir.interpret(result, x)[0], ir.interpret(graph, x)[0])


# --------------------------------------------------------------------------------------
# reductions, select


@pytest.mark.parametrize("dtype", [I32, F32])
def test_sum_over_no_axes_folds_for_integers_only(dtype):
    """A float sum starts from +0.0: sum(-0.0) over no axes is +0.0, not x."""
    graph = make_graph([((2,), dtype)], lambda b, x: b.reduce_sum(x, axes=()))
    result = simplified(graph)
    assert prims(result) == ([] if dtype.is_int else ["reduce_sum"])
    x = np.array([-0.0, 3], dtype.numpy)
    np.testing.assert_array_equal(np.signbit(ir.interpret(result, x)[0]),
                                  np.signbit(np.sum(x, axis=(), dtype=x.dtype)))


def test_float_sum_over_broadcast_copies_stays():
    def body(b, x):
        return b.reduce_sum(b.broadcast_in_dim(x, shape=(5, 3), dims=(1,)), axes=(0,))
    result = simplified(make_graph([((3,), F64)], body))
    assert "reduce_sum" in prims(result)
    x = np.array([-0.0, 1.5, -2.0])
    np.testing.assert_array_equal(ir.interpret(result, x)[0],
                                  np.broadcast_to(x, (5, 3)).sum(axis=0))


@pytest.mark.parametrize("dtype", [I32, DType.i64])
def test_sum_over_new_broadcast_axes_becomes_a_product(dtype):
    def body(b, x):
        wide = b.broadcast_in_dim(x, shape=(5, 3, 4, 2), dims=(1, 2))
        return b.reduce_sum(wide, axes=(0, 3))
    graph = make_graph([((3, 4), dtype)], body)
    result = simplified(graph, exact=dtype.is_int)
    assert "reduce_sum" not in prims(result) and "mul" in prims(result)
    x = random_array((3, 4), dtype, np.random.default_rng(1), special=False)
    expected = np.broadcast_to(x[None, :, :, None], (5, 3, 4, 2)).sum(axis=(0, 3), dtype=x.dtype)
    np.testing.assert_allclose(ir.interpret(result, x)[0], expected, rtol=1e-12)


def test_sum_keeping_a_stretched_axis_broadcasts_the_product():
    def body(b, x):
        return b.reduce_sum(b.broadcast_in_dim(x, shape=(3, 4), dims=(1,)), axes=(0,))
    result = simplified(make_graph([((1,), I32)], body))
    assert prims(result).count("broadcast_in_dim") >= 1 and "reduce_sum" not in prims(result)
    np.testing.assert_array_equal(ir.interpret(result, np.array([7], np.int32))[0], [21] * 4)


def test_sum_over_an_empty_new_axis_is_zero_even_for_nan():
    def body(b, x):
        return b.reduce_sum(b.broadcast_in_dim(x, shape=(0, 3), dims=(1,)), axes=(0,))
    result = simplified(make_graph([((3,), F32)], body))
    assert "reduce_sum" not in prims(result)
    x = np.array([np.nan, np.inf, 1.0], np.float32)
    np.testing.assert_array_equal(ir.interpret(result, x)[0], np.zeros(3, np.float32))


def test_sum_touching_an_original_axis_stays():
    def body(b, x):
        return b.reduce_sum(b.broadcast_in_dim(x, shape=(2, 3), dims=(1,)), axes=(0, 1))
    assert "reduce_sum" in prims(simplified(make_graph([((3,), F32)], body)))


def test_max_over_new_axes_is_the_operand():
    def body(b, x):
        return b.reduce_max(b.broadcast_in_dim(x, shape=(4, 3), dims=(1,)), axes=(0,))
    assert prims(simplified(make_graph([((3,), F32)], body))) == []


@pytest.mark.parametrize("flag", [True, False])
def test_select_with_constant_predicate_picks_a_branch(flag):
    def body(b, x, y):
        pred = b.full((4,), flag, DType.bool)
        return b.select(pred, x, y)
    result = simplified(make_graph([((4,), F32), ((4,), F32)], body))
    assert prims(result) == []
    assert result.outputs[0] is result.inputs[0 if flag else 1]


# --------------------------------------------------------------------------------------
# constant folding


def test_small_constant_expression_is_folded():
    values = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    def body(b, x):
        c = b.exp(b.constant(value=values))
        return b.add(x, b.transpose(c, perm=(1, 0)))
    result = simplified(make_graph([((4, 3), F32)], body))
    assert prims(result) == ["constant", "add"]
    np.testing.assert_array_equal(result.ops[0].attrs["value"], np.exp(values).T)
    assert result.ops[0].loc == LOC


def test_elementwise_on_a_splat_stays_a_splat_at_any_size():
    shape = (300, 300)
    graph = make_graph([], lambda b: b.tanh(b.full(shape, 0.5, F32)))
    result = simplified(graph)
    assert prims(result) == ["constant", "broadcast_in_dim"]
    assert result.ops[0].attrs["value"].shape == ()
    np.testing.assert_array_equal(ir.interpret(result)[0], np.tanh(np.full(shape, 0.5, np.float32)))


@pytest.mark.parametrize("size,folded", [(FOLD_LIMIT, True), (FOLD_LIMIT + 1, False)])
def test_folding_respects_the_size_limit(size, folded):
    graph = make_graph([], lambda b: b.convert(b.iota(shape=(size,), dtype=I32, dimension=0),
                                               dtype=F32))
    result = simplified(graph)
    assert prims(result) == (["constant"] if folded else ["iota", "convert"])
    np.testing.assert_array_equal(ir.interpret(result)[0], np.arange(size, dtype=np.float32))


def test_integer_division_by_zero_folds_like_the_interpreter():
    graph = make_graph([], lambda b: b.div(b.constant(value=np.array([7, -7, 3], np.int32)),
                                           b.constant(value=np.array([2, 0, -2], np.int32))))
    result = simplified(graph)
    assert prims(result) == ["constant"]
    np.testing.assert_array_equal(ir.interpret(result)[0], [3, 0, -2])


# --------------------------------------------------------------------------------------
# CSE, DCE, purity, bookkeeping


def test_cse_merges_duplicates_and_keeps_distinct_ops():
    def body(b, x):
        e1, e2 = b.exp(x), b.exp(x)
        s1 = b.reduce_sum(e1, axes=(0,))
        s2 = b.reduce_sum(e2, axes=(1,))
        return b.add(e1, e2), s1, s2
    graph = make_graph([((3, 3), F32)], body)
    merged = cse(graph)
    assert prims(merged) == ["exp", "reduce_sum", "reduce_sum", "add"]
    assert merged.ops[3].operands[0] is merged.ops[3].operands[1]
    assert_same_results(graph, merged)


def test_cse_merges_equal_constants_but_not_signed_zeros():
    def body(b, x):
        return (b.add(x, b.scalar(2.0, F32)), b.add(x, b.scalar(2.0, F32)),
                b.div(x, b.scalar(0.0, F32)), b.div(x, b.scalar(-0.0, F32)))
    result = simplified(make_graph([((), F32)], body))
    assert prims(result).count("constant") == 3 and prims(result).count("add") == 1


def test_dce_leaves_no_dead_op():
    def body(b, x, unused):
        b.exp(x)
        b.neg(b.tanh(x))
        return b.sin(x)
    graph = make_graph([((3,), F32), ((2,), F32)], body)
    result = dce(graph)
    assert prims(result) == ["sin"]
    assert len(result.inputs) == 2
    assert live_ops(result) == set(result.ops)


def test_simplify_keeps_residual_counts_names_and_repeated_outputs():
    graph = make_graph([((3,), F32), ((3,), F32)], lambda b, r, x: (
        b.mul(x, b.ones(x.type)), b.exp(r), b.exp(r)), name="backward")
    graph.residual_inputs = 1
    graph.residual_outputs = 1
    result = simplified(graph)
    assert (result.name, result.residual_inputs, result.residual_outputs) == ("backward", 1, 1)
    assert result.outputs[0] is result.inputs[1]
    assert result.outputs[1] is result.outputs[2]


def test_verify_flag_runs_the_verifier(monkeypatch):
    seen = []
    monkeypatch.setattr(simplify_module, "verify_graph", seen.append)
    graph = make_graph([((3,), F32)], lambda b, x: b.neg(b.neg(x)))
    simplify(graph)
    assert seen == []
    result = simplify(graph, verify=True)
    assert seen == [result]


def _ops_built(monkeypatch) -> list:
    """Records every op a Builder appends (by emit or copy) from now on."""
    built = []
    for method in ("emit", "copy"):
        original = getattr(Builder, method)

        def counting(self, *args, _original=original, **kwargs):
            built.append(args[0])
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(Builder, method, counting)
    return built


def test_regression_a_pass_that_changes_nothing_copied_the_whole_graph(monkeypatch):
    """Every pass rebuilt the graph op by op even when nothing changed, so the last
    round of simplify's fixpoint (and the DCE before the first) copied every op of
    the graph again, with its type rule re-run. Now each pass hands back the graph
    itself when it has nothing to do, and simplifying a simplified graph builds no
    op at all."""
    def body(b, x, y):
        return b.tanh(b.add(b.mul(x, b.full(x.shape, 2.0, F32)), y)), b.exp(y)
    graph = simplified(make_graph([((4, 3), F32), ((4, 3), F32)], body))
    built = _ops_built(monkeypatch)
    for simplify_pass in (dce, cse, simplify_module.fold_constants,
                          simplify_module.rewrite_algebra, simplify):
        assert simplify_pass(graph) is graph
    assert built == []


def test_a_rewrite_of_a_later_op_keeps_the_ops_before_it():
    """The copy starts at the first op a pass replaces: the ops before it are copied
    as they were, the replacement's own new ops come with it, and the results agree."""
    def body(b, x, y):
        kept = b.exp(b.tanh(x))
        return b.add(kept, b.neg(b.neg(b.sin(y)))), kept
    graph = make_graph([((5,), F32), ((5,), F32)], body)
    result = simplify_module.rewrite_algebra(graph)
    assert result is not graph
    assert prims(result) == ["tanh", "exp", "sin", "neg", "add"]  # neg(neg) folded, dead
    assert [op.loc for op in result.ops] == [LOC] * 5
    assert_same_results(graph, result)
    assert prims(simplify(graph)) == ["tanh", "exp", "sin", "add"]


def test_a_copied_op_keeps_its_type_or_is_checked_again():
    """Builder.copy reuses an op's attributes and result type on operands of the
    same types, and runs its rule again on operands of other types."""
    graph = make_graph([((2, 3), F32)], lambda b, x: b.reduce_sum(x, axes=(1,)))
    op = graph.ops[0]
    b = Builder("copy")
    same = b.copy(op, [b.input(TensorType((2, 3), F32))])
    assert same.type == op.result.type and same.producer.attrs == op.attrs
    assert same.producer.loc == LOC
    wider = b.copy(op, [b.input(TensorType((2, 3), F64))])
    assert wider.type == TensorType((2,), F64)
    with pytest.raises(ir.TypeRuleError):
        b.copy(op, [b.input(TensorType((5,), F32))])


# --------------------------------------------------------------------------------------
# random graphs


def _pick(data, pool, type_=None):
    choices = [v for v in pool if type_ is None or v.type == type_]
    return data.draw(st.sampled_from(choices))


def _random_step(data, b, pool):
    kind = data.draw(st.sampled_from(
        ["unary", "binary", "constant", "transpose", "reshape", "sum_broadcast",
         "convert", "select"]))
    x = _pick(data, pool)
    if kind == "unary":
        return getattr(b, data.draw(st.sampled_from(["neg", "exp", "tanh", "abs"])))(x)
    if kind == "binary":
        name = data.draw(st.sampled_from(["add", "sub", "mul", "div", "max"]))
        return getattr(b, name)(x, _pick(data, pool, x.type))
    if kind == "constant":
        value = data.draw(st.sampled_from([0.0, -0.0, 1.0, 2.5, np.nan, np.inf]))
        return b.full(x.shape, value, F32)
    if kind == "transpose":
        return b.transpose(x, perm=(1, 0)) if x.ndim == 2 else b.neg(x)
    if kind == "reshape":
        shape = data.draw(st.sampled_from([(2, 3), (3, 2), (6,)]))
        return b.reshape(x, shape=shape)
    if kind == "sum_broadcast":
        wide = b.broadcast_in_dim(x, shape=(2,) + x.shape, dims=tuple(range(1, x.ndim + 1)))
        return b.reduce_sum(wide, axes=(0,))
    if kind == "convert":
        return b.convert(b.convert(x, dtype=F64), dtype=F32)
    return b.select(b.gt(x, _pick(data, pool, x.type)), x, _pick(data, pool, x.type))


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_random_graphs_interpret_identically(data):
    b = Builder("random")
    pool = [b.input(TensorType((2, 3), F32)), b.input(TensorType((2, 3), F32))]
    for _ in range(data.draw(st.integers(1, 12))):
        pool.append(_random_step(data, b, pool))
    b.output(pool[-1], _pick(data, pool))
    graph = b.build()
    result = simplified(graph)


def test_rev_rules():
    """rev of rev cancels on shared axes; size-1 axes and no axes are identities."""
    def body(b, x):
        twice = b.rev(b.rev(x, dims=(0, 1)), dims=(1,))
        trivial = b.rev(b.reshape(x, shape=(2, 1, 3)), dims=(1,))
        return twice, trivial
    graph = make_graph([((2, 3), F32)], body)
    result = simplified(graph)
    assert prims(result).count("rev") == 1
    assert [op.attrs["dims"] for op in result.ops if op.prim == "rev"] == [(0,)]
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    for got, want in zip(ir.interpret(result, x), ir.interpret(graph, x)):
        np.testing.assert_array_equal(got, want)
