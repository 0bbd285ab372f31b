"""Every primitive x every dtype it accepts x shape classes, interpreted vs the
independent references of tests/op_cases.py, plus hypothesis tests over random shapes
and broadcast patterns for elementwise, reduction, transpose/reshape and dot ops.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ir
from ir import PRIMITIVES, Builder, DType, TensorType
from op_cases import (ALL_DTYPES, NUMERIC, OP_CASES, OpCase, assert_close, cases,
                      fill_for)
from op_references import reference_for
from control_flow_cases import retyped_attrs

CONTROL_FLOW = ("scan", "cond", "while_loop")

HYPOTHESIS = settings(max_examples=60, deadline=None)


def run_case(case: OpCase, arrays: list[np.ndarray]) -> np.ndarray:
    """Interpret the one-op graph of `case`; check it left the inputs alone."""
    before = [a.copy() for a in arrays]
    graph = case.graph(arrays)
    (result,) = ir.interpret(graph, *arrays)
    for original, after in zip(before, arrays):
        assert np.array_equal(original, after, equal_nan=original.dtype.kind == "f")
    assert result.dtype == graph.outputs[0].dtype.numpy
    assert result.shape == graph.outputs[0].shape
    return result


@pytest.mark.parametrize("case", OP_CASES, ids=lambda case: case.id)
def test_interpreter_matches_reference(case: OpCase):
    arrays = case.make_inputs(np.random.default_rng(0))
    result = run_case(case, arrays)
    shapes = ", ".join(str(a.shape) for a in arrays)
    assert_close(result, case.reference(*arrays), case.exact, f"{case.id} on {shapes}")


# --------------------------------------------------------------------------------------
# the table itself: every primitive, every dtype its rule accepts, size-0 and 0-d shapes


def _retyped_builds(case: OpCase, dtype: DType) -> bool:
    """Does the rule accept `case` with its main dtype replaced by `dtype`?"""
    builder = Builder("probe")
    operands = [builder.input(TensorType(shape, dtype if a.dtype == case.dtype.numpy else
                                         DType.from_numpy(a.dtype)))
                for shape, a in zip(case.shapes, case.make_inputs(np.random.default_rng(0)))]
    attrs = dict(case.attrs)
    if case.prim == "iota":
        attrs["dtype"] = dtype
    if case.prim == "constant":
        attrs["value"] = attrs["value"].astype(dtype.numpy)
    try:
        if case.prim in CONTROL_FLOW:
            attrs = retyped_attrs(case, dtype)
        builder.emit(case.prim, *operands, **attrs)
    except ir.TypeRuleError:
        return False
    return True


@pytest.mark.parametrize("prim", sorted(PRIMITIVES))
def test_table_has_every_dtype_the_rule_accepts(prim):
    rows = cases(prim)
    assert rows, f"no OP_CASES rows for {prim}"
    template = next(c for c in rows if c.dtype is not DType.bool)
    accepted = {d for d in ALL_DTYPES if _retyped_builds(template, d)}
    assert {c.dtype for c in rows} == accepted


@pytest.mark.parametrize("prim", sorted(PRIMITIVES))
def test_table_has_size0_and_0d_shapes(prim):
    def shapes(case):
        arrays = case.make_inputs(np.random.default_rng(0))
        return [a.shape for a in arrays] + [case.graph(arrays).outputs[0].shape]

    all_shapes = [s for case in cases(prim) for s in shapes(case)]
    assert any(0 in s for s in all_shapes), f"{prim}: no size-0 case"
    if prim not in ("concatenate", "iota", "conv", "gather", "scatter_add"):  # rank >= 1
        assert any(s == () for s in all_shapes), f"{prim}: no 0-d case"


# --------------------------------------------------------------------------------------
# hypothesis: random shapes and broadcast patterns

shapes_st = st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple)
seeds = st.integers(0, 2**32 - 1)
ELEMENTWISE_TEMPLATES = [c for c in OP_CASES
                         if PRIMITIVES[c.prim].elementwise and c.shape_class == "general"]


@HYPOTHESIS
@given(st.sampled_from(ELEMENTWISE_TEMPLATES), shapes_st, seeds)
def test_elementwise_random_shapes(template, shape, seed):
    arrays = template.fill(np.random.default_rng(seed), [shape] * len(template.shapes))
    result = run_case(template, arrays)
    assert_close(result, template.reference(*arrays), template.exact, f"{template.id} {shape}")


@st.composite
def broadcast_patterns(draw):
    """(operand shape, target shape, dims): each target axis kept, kept as 1, or new."""
    target = draw(shapes_st)
    operand, dims = [], []
    for axis, size in enumerate(target):
        choice = draw(st.sampled_from(["keep", "one", "new"]))
        if choice != "new":
            dims.append(axis)
            operand.append(size if choice == "keep" else 1)
    return tuple(operand), target, tuple(dims)


@HYPOTHESIS
@given(broadcast_patterns(), st.sampled_from(NUMERIC), seeds)
def test_broadcast_then_add_matches_numpy_broadcasting(pattern, dtype, seed):
    operand_shape, target, dims = pattern
    rng = np.random.default_rng(seed)
    x = np.asarray(rng.integers(-9, 10, size=operand_shape), dtype=dtype.numpy)
    y = np.asarray(rng.integers(-9, 10, size=target), dtype=dtype.numpy)
    b = Builder("bcast_add")
    xv, yv = b.input(TensorType(operand_shape, dtype)), b.input(TensorType(target, dtype))
    b.output(b.add(b.broadcast_in_dim(xv, shape=target, dims=dims), yv))
    (result,) = ir.interpret(b.build(), x, y)
    aligned = [1] * len(target)
    for i, d in enumerate(dims):
        aligned[d] = operand_shape[i]
    expected = x.reshape(aligned) + y             # NumPy's own broadcasting rules
    assert_close(result, np.asarray(expected, dtype=dtype.numpy), True, str(pattern))


def _random_case(prim: str, dtype: DType, attrs: dict, shapes: tuple) -> OpCase:
    """An OpCase outside the table: same operand generator and reference."""
    exact = not (prim in ("dot", "reduce_sum") and dtype.is_float)
    return OpCase(prim, dtype, "random", shapes, attrs, fill_for(prim, dtype),
                  reference_for(prim, attrs, dtype), exact=exact)


@HYPOTHESIS
@given(st.sampled_from(["reduce_sum", "reduce_max", "reduce_min"]), st.sampled_from(ALL_DTYPES),
       shapes_st, st.data())
def test_reductions_random_shapes_and_axes(prim, dtype, shape, data):
    if prim == "reduce_sum" and dtype is DType.bool:
        dtype = DType.i64
    axes = data.draw(st.sets(st.integers(0, len(shape) - 1))) if shape else set()
    case = _random_case(prim, dtype, dict(axes=tuple(sorted(axes))), (shape,))
    arrays = case.make_inputs(np.random.default_rng(data.draw(seeds)))
    assert_close(run_case(case, arrays), case.reference(*arrays), case.exact, f"{shape} {axes}")


@HYPOTHESIS
@given(shapes_st, st.sampled_from(ALL_DTYPES), st.data())
def test_transpose_random_permutations(shape, dtype, data):
    perm = tuple(data.draw(st.permutations(range(len(shape)))))
    case = _random_case("transpose", dtype, dict(perm=perm), (shape,))
    arrays = [np.asarray(np.arange(int(np.prod(shape))).reshape(shape), dtype=dtype.numpy)]
    assert_close(run_case(case, arrays), case.reference(*arrays), True, f"{shape} {perm}")


@HYPOTHESIS
@given(shapes_st, st.sampled_from(ALL_DTYPES), st.data())
def test_reshape_to_shuffled_dims_with_extra_ones(shape, dtype, data):
    target = list(data.draw(st.permutations(shape)))
    for _ in range(data.draw(st.integers(0, 2))):
        target.insert(data.draw(st.integers(0, len(target))), 1)
    case = _random_case("reshape", dtype, dict(shape=tuple(target)), (shape,))
    arrays = [np.asarray(np.arange(int(np.prod(shape))).reshape(shape), dtype=dtype.numpy)]
    assert_close(run_case(case, arrays), case.reference(*arrays), True, f"{shape}->{target}")


@HYPOTHESIS
@given(st.lists(st.integers(0, 3), min_size=4, max_size=4), st.sampled_from(NUMERIC), seeds)
def test_batched_dot_random_sizes(sizes, dtype, seed):
    batch, m, k, n = sizes
    attrs = dict(lhs_batch=(0,), rhs_batch=(0,), lhs_contract=(2,), rhs_contract=(1,))
    case = _random_case("dot", dtype, attrs, ((batch, m, k), (batch, k, n)))
    arrays = case.make_inputs(np.random.default_rng(seed))
    assert_close(run_case(case, arrays), case.reference(*arrays), case.exact, str(sizes))
