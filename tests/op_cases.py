"""The per-primitive test table: `OP_CASES`, one row per primitive x dtype x shape class.

Each `OpCase` knows how to make seeded operands for its primitive (inside the op's
domain: positive inputs for log/sqrt/pow, denominators away from zero for float div,
operands kept apart for max/min so finite differences see no kink), the attributes,
and an independent NumPy reference (tests/op_references.py: element loops over Python
scalars, np.einsum, index assignment) that never calls `ir.interpret`.

Other test suites drive their checks from the same rows:

    for case in OP_CASES:                  # or cases("dot")
        arrays = case.make_inputs(np.random.default_rng(0))
        graph = case.graph(arrays)         # a one-op ir.Graph
        expected = case.reference(*arrays)
        assert_close(actual, expected, case.dtype_out, exact=case.exact)

`case.id` ("exp-f32-0d", "convert-f32-to_i32-general") is a readable pytest id.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ir import PRIMITIVES, Builder, DType, Graph, TensorType
from op_cases_window import window_cases
from control_flow_cases import control_flow_cases
from op_references import TRANSCENDENTAL, reference_for

Shape = tuple[int, ...]
Fill = Callable[[np.random.Generator, Sequence[Shape]], list[np.ndarray]]

F32, F64, I32, I64, BOOL = DType.f32, DType.f64, DType.i32, DType.i64, DType.bool
FLOATS = (F32, F64)
NUMERIC = (F32, F64, I32, I64)
ALL_DTYPES = (F32, F64, I32, I64, BOOL)

# One per-dtype tolerance table for results that are not bit-exact (transcendentals,
# sums and contractions accumulated in a different order than the reference).
TOLERANCES: dict[DType, dict[str, float]] = {
    F32: dict(rtol=1e-5, atol=1e-5),
    F64: dict(rtol=1e-12, atol=1e-12),
}

ELEMENTWISE_SHAPES: dict[str, Shape] = {
    "0d": (), "size1": (1, 4, 1), "general": (3, 5), "odd": (2, 17), "empty": (0, 3),
}


@dataclass(frozen=True)
class OpCase:
    """One primitive applied to operands of `shapes` with main operand dtype `dtype`.

    `fill(rng, shapes)` makes operands of any shapes (hypothesis tests reuse it with
    other shapes); `reference(*arrays)` is the expected result with exact dtype and
    shape; `exact` says whether results must match bit for bit (NaN equal to NaN).
    """

    prim: str
    dtype: DType
    shape_class: str
    shapes: tuple[Shape, ...]
    attrs: dict[str, Any]
    fill: Fill
    reference: Callable[..., np.ndarray]
    exact: bool = True
    variant: str = ""

    @property
    def id(self) -> str:
        parts = [self.prim, self.dtype.value, self.variant, self.shape_class]
        return "-".join(p for p in parts if p)

    def make_inputs(self, rng: np.random.Generator) -> list[np.ndarray]:
        """Seeded operands of this case's shapes."""
        return self.fill(rng, self.shapes)

    def graph(self, arrays: Sequence[np.ndarray]) -> Graph:
        """A graph with one input per array and the single op as its output."""
        builder = Builder(self.prim)
        inputs = [builder.input(TensorType(a.shape, DType.from_numpy(a.dtype))) for a in arrays]
        emitted = builder.emit(self.prim, *inputs, **self.attrs)
        builder.output(emitted[0] if isinstance(emitted, tuple) else emitted)
        return builder.build()


def assert_close(actual: np.ndarray, expected: np.ndarray, exact: bool, context: str) -> None:
    """Exact dtype and shape; values bit-equal (exact) or within TOLERANCES."""
    assert isinstance(actual, np.ndarray), f"{context}: got {type(actual).__name__}"
    assert actual.dtype == expected.dtype, f"{context}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{context}: shape {actual.shape} != {expected.shape}"
    dtype = DType.from_numpy(expected.dtype)
    if exact or not dtype.is_float:
        equal_nan = dtype.is_float
        assert np.array_equal(actual, expected, equal_nan=equal_nan), (
            f"{context}: expected\n{expected}\ngot\n{actual}")
    else:
        np.testing.assert_allclose(actual, expected, err_msg=context, **TOLERANCES[dtype])


# --------------------------------------------------------------------------------------
# operand generation


def random_array(rng: np.random.Generator, shape: Shape, dtype: DType,
                 domain: str = "any") -> np.ndarray:
    """Random values of `dtype` in a domain: any, positive, away0 (|x| >= 0.25), wide."""
    if dtype is BOOL:
        return np.asarray(rng.random(shape) < 0.5)
    if dtype.is_int:
        low = 1 if domain == "positive" else -9
        return np.asarray(rng.integers(low, 10, size=shape), dtype=dtype.numpy)
    if domain == "positive":
        values = rng.uniform(0.5, 3.0, size=shape)
    elif domain == "away0":
        values = rng.uniform(0.25, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    elif domain == "wide":
        values = rng.normal(scale=20.0, size=shape)
    else:
        values = rng.normal(size=shape)
    return np.asarray(values, dtype=dtype.numpy)


def fill_with(dtype: DType, *domains: str) -> Fill:
    """Fill operand i with `random_array` in domains[i] (the last domain repeats)."""
    domains = domains or ("any",)

    def fill(rng, shapes):
        return [random_array(rng, shape, dtype, domains[min(i, len(domains) - 1)])
                for i, shape in enumerate(shapes)]
    return fill


def _fill_apart(dtype: DType) -> Fill:
    """max/min operands: floats differ by at least 0.1 (no tie, no kink)."""
    def fill(rng, shapes):
        x = random_array(rng, shapes[0], dtype)
        if not dtype.is_float:
            return [x, random_array(rng, shapes[1], dtype)]
        offset = random_array(rng, shapes[1], dtype, "away0")
        return [x, np.asarray(x + offset, dtype=dtype.numpy)]
    return fill


def _fill_div(dtype: DType) -> Fill:
    """Float denominators away from zero; integer denominators include zero."""
    if dtype.is_float:
        return fill_with(dtype, "any", "away0")

    def fill(rng, shapes):
        return [random_array(rng, shapes[0], dtype),
                np.asarray(rng.integers(-3, 4, size=shapes[1]), dtype=dtype.numpy)]
    return fill


def _fill_pow(dtype: DType) -> Fill:
    def fill(rng, shapes):
        base = random_array(rng, shapes[0], dtype, "positive")
        exponent = np.asarray(rng.uniform(-2.0, 2.0, size=shapes[1]), dtype=dtype.numpy)
        return [base, exponent]
    return fill


def _fill_select(dtype: DType) -> Fill:
    def fill(rng, shapes):
        return [random_array(rng, shapes[0], BOOL)] + fill_with(dtype)(rng, shapes[1:])
    return fill


def fill_for(prim: str, dtype: DType) -> Fill:
    """The operand generator a primitive's cases use."""
    special = {"log": fill_with(dtype, "positive"), "sqrt": fill_with(dtype, "positive"),
               "abs": fill_with(dtype, "away0"), "max": _fill_apart(dtype),
               "min": _fill_apart(dtype), "div": _fill_div(dtype), "pow": _fill_pow(dtype),
               "select": _fill_select(dtype), "convert": fill_with(dtype, "wide")}
    return special.get(prim, fill_with(dtype))


# --------------------------------------------------------------------------------------
# the table


def _dot_attrs(lhs_batch=(), rhs_batch=(), lhs_contract=(), rhs_contract=()) -> dict:
    return dict(lhs_batch=lhs_batch, rhs_batch=rhs_batch, lhs_contract=lhs_contract,
                rhs_contract=rhs_contract)


_REDUCE_CASES = [
    ("0d", [()], dict(axes=())), ("size1", [(1, 4, 1)], dict(axes=(0, 2))),
    ("general", [(3, 5)], dict(axes=(1,))), ("all", [(3, 5)], dict(axes=(0, 1))),
    ("none", [(3, 5)], dict(axes=())), ("odd", [(2, 17)], dict(axes=(1,))),
    ("empty", [(0, 3)], dict(axes=(0,))), ("emptykept", [(0, 3)], dict(axes=(1,))),
]

# Non-elementwise primitives: (shape class, operand shapes, attributes).
STRUCTURED_CASES: dict[str, list[tuple[str, list[Shape], dict[str, Any]]]] = {
    "broadcast_in_dim": [
        ("0d", [()], dict(shape=(2, 3), dims=())),
        ("size1", [(1, 3)], dict(shape=(4, 3), dims=(0, 1))),
        ("general", [(3,)], dict(shape=(2, 3, 5), dims=(1,))),
        ("bcast", [(3, 1)], dict(shape=(2, 3, 4), dims=(1, 2))),
        ("identity", [(3, 5)], dict(shape=(3, 5), dims=(0, 1))),
        ("empty", [(1, 3)], dict(shape=(0, 3), dims=(0, 1))),
    ],
    "reshape": [
        ("0d", [()], dict(shape=(1, 1))), ("size1", [(1, 4, 1)], dict(shape=(4,))),
        ("general", [(3, 5)], dict(shape=(5, 3))), ("odd", [(2, 17)], dict(shape=(34,))),
        ("empty", [(0, 3)], dict(shape=(3, 0, 2))),
    ],
    "transpose": [
        ("0d", [()], dict(perm=())), ("size1", [(1, 4, 1)], dict(perm=(2, 0, 1))),
        ("general", [(3, 5)], dict(perm=(1, 0))), ("rank3", [(2, 3, 4)], dict(perm=(1, 2, 0))),
        ("empty", [(0, 3)], dict(perm=(1, 0))),
    ],
    "slice": [
        ("0d", [()], dict(start=(), stop=(), stride=())),
        ("size1", [(1, 6)], dict(start=(0, 1), stop=(1, 6), stride=(1, 2))),
        ("general", [(3, 5)], dict(start=(1, 0), stop=(3, 5), stride=(1, 2))),
        ("odd", [(2, 17)], dict(start=(0, 3), stop=(2, 17), stride=(2, 3))),
        ("empty", [(3, 5)], dict(start=(1, 2), stop=(1, 5), stride=(1, 1))),
    ],
    "rev": [
        ("0d", [()], dict(dims=())), ("size1", [(1, 6)], dict(dims=(0, 1))),
        ("general", [(3, 5)], dict(dims=(1,))), ("odd", [(2, 17)], dict(dims=(0, 1))),
        ("rank3", [(2, 3, 4)], dict(dims=(2, 0))), ("empty", [(0, 3)], dict(dims=(0,))),
    ],
    "pad": [
        ("0d", [()], dict(low=(), high=(), interior=())),
        ("size1", [(1, 3)], dict(low=(1, 0), high=(0, 2), interior=(0, 1))),
        ("general", [(3, 5)], dict(low=(1, 2), high=(2, 0), interior=(1, 2))),
        ("empty", [(0, 3)], dict(low=(1, 1), high=(2, 0), interior=(3, 1))),
    ],
    "concatenate": [
        ("single", [(2, 3)], dict(axis=0)), ("size1", [(1, 3), (1, 3)], dict(axis=0)),
        ("general", [(3, 5), (3, 2), (3, 1)], dict(axis=1)),
        ("empty", [(0, 3), (2, 3)], dict(axis=0)),
    ],
    "reduce_sum": _REDUCE_CASES, "reduce_max": _REDUCE_CASES, "reduce_min": _REDUCE_CASES,
    "logsumexp": _REDUCE_CASES,
    "dot": [
        ("0d", [(), ()], _dot_attrs()),
        ("size1", [(1, 3), (3, 1)], _dot_attrs(lhs_contract=(1,), rhs_contract=(0,))),
        ("general", [(3, 5), (5, 4)], _dot_attrs(lhs_contract=(1,), rhs_contract=(0,))),
        ("batch", [(2, 3, 4), (2, 4, 5)],
         _dot_attrs((0,), (0,), lhs_contract=(2,), rhs_contract=(1,))),
        ("transposed", [(5, 3), (4, 5)], _dot_attrs(lhs_contract=(0,), rhs_contract=(1,))),
        ("twocontract", [(4, 2, 3), (2, 3, 5)],
         _dot_attrs(lhs_contract=(1, 2), rhs_contract=(0, 1))),
        ("outer", [(3,), (4,)], _dot_attrs()),
        ("odd", [(2, 17), (17, 3)], _dot_attrs(lhs_contract=(1,), rhs_contract=(0,))),
        ("empty", [(3, 0), (0, 4)], _dot_attrs(lhs_contract=(1,), rhs_contract=(0,))),
    ],
}

# Dtypes each primitive accepts (its main operand dtype; select: the branches;
# convert: the source; iota/constant: the result).
_DTYPES: dict[str, tuple[DType, ...]] = {
    **{p: FLOATS for p in ("exp", "log", "tanh", "sqrt", "sin", "cos", "pow", "logsumexp")},
    **{p: NUMERIC for p in ("neg", "abs", "add", "sub", "mul", "div", "max", "min",
                            "lt", "le", "gt", "ge", "reduce_sum", "dot", "iota")},
    **{p: ALL_DTYPES for p in ("stop_gradient", "eq", "ne", "select", "convert",
                               "broadcast_in_dim", "reshape", "transpose", "slice", "rev", "pad",
                               "concatenate", "reduce_max", "reduce_min", "constant")},
}


def _inexact(prim: str, dtype: DType) -> bool:
    """Float results whose rounding may differ from the reference's."""
    return dtype.is_float and prim in TRANSCENDENTAL + ("reduce_sum", "dot", "logsumexp")


def _elementwise_cases(prim: str, dtype: DType) -> list[OpCase]:
    arity = PRIMITIVES[prim].arity
    targets = ALL_DTYPES if prim == "convert" else (None,)
    cases = []
    for target in targets:
        attrs = {} if target is None else dict(dtype=target)
        variant = "" if target is None else f"to_{target.value}"
        for shape_class, shape in ELEMENTWISE_SHAPES.items():
            cases.append(OpCase(prim, dtype, shape_class, (shape,) * arity, attrs,
                                fill_for(prim, dtype), reference_for(prim, attrs, dtype),
                                exact=not _inexact(prim, dtype), variant=variant))
    return cases


def _structured_cases(prim: str, dtype: DType) -> list[OpCase]:
    return [OpCase(prim, dtype, shape_class, tuple(shapes), attrs, fill_for(prim, dtype),
                   reference_for(prim, attrs, dtype), exact=not _inexact(prim, dtype))
            for shape_class, shapes, attrs in STRUCTURED_CASES[prim]]


def _source_cases(prim: str, dtype: DType) -> list[OpCase]:
    """constant and iota take no operands: their shape and dtype are attributes."""
    rng = np.random.default_rng(1234)
    if prim == "constant":
        rows = [(name, dict(value=random_array(rng, shape, dtype)))
                for name, shape in (("0d", ()), ("general", (3, 5)), ("empty", (0, 3)))]
    else:
        rows = [(name, dict(shape=shape, dtype=dtype, dimension=dim)) for name, shape, dim in
                (("rank1", (5,), 0), ("size1", (1, 4), 1), ("general", (3, 5), 0),
                 ("rank3", (2, 3, 4), 2), ("empty", (0, 3), 1))]
    return [OpCase(prim, dtype, name, (), attrs, fill_with(dtype),
                   reference_for(prim, attrs, dtype)) for name, attrs in rows]


def _build_table() -> list[OpCase]:
    table = []
    for prim, dtypes in _DTYPES.items():
        for dtype in dtypes:
            if prim in ("constant", "iota"):
                table.extend(_source_cases(prim, dtype))
            elif prim in STRUCTURED_CASES:
                table.extend(_structured_cases(prim, dtype))
            else:
                table.extend(_elementwise_cases(prim, dtype))
    return table + window_cases(OpCase, fill_with, random_array)


OP_CASES: list[OpCase] = _build_table() + control_flow_cases(OpCase)


def cases(prim: str) -> list[OpCase]:
    """The rows of OP_CASES for one primitive."""
    return [case for case in OP_CASES if case.prim == prim]
