"""The backend's own rows, compiled vs ir.interpret: broadcast operands, edge-value
tables (pow, integer division, signed zeros and NaN, out-of-range converts), shape
ops, reductions and dots at odd shapes (bounded by their summation error), windows,
indexing and sources. Every elementwise primitive x dtype x loop shape comes from
the shared op-case table (tests/codegen/test_codegen_op_cases.py).

All one-op graphs are compiled together into one LLVM module (compile_graphs), so the
whole table costs one JIT.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

import codegen
from control_flow_cases import cond_branches, scan_attrs, scan_loss, while_regions
from ir import PRIMITIVES, Builder, DType, Graph, TensorType, interpret
from codegen_oracle import assert_matches, random_array
from op_cases import OP_CASES

F32, F64, I32, I64, BOOL = DType.f32, DType.f64, DType.i32, DType.i64, DType.bool
FLOATS = (F32, F64)
INTS = (I32, I64)
NUMERIC = FLOATS + INTS
ALL = NUMERIC + (BOOL,)

@dataclass
class Case:
    name: str
    graph: Graph
    inputs: list
    kind: str = "exact"
    options: dict = field(default_factory=dict)


CASES: list[Case] = []


def add_case(name: str, input_types, build, *, kind="exact", inputs=None, seed=0, **options):
    b = Builder(f"g{len(CASES)}")
    values = [b.input(t) for t in input_types]
    result = build(b, *values)
    b.output(result)
    rng = np.random.default_rng(seed + len(CASES))
    if inputs is None:
        inputs = [random_array(rng, t) for t in input_types]
    CASES.append(Case(name, b.build(), inputs, kind, options))


def shape_text(shape) -> str:
    return "x".join(map(str, shape)) if shape else "scalar"


# ---- elementwise binary with broadcast operands (each primitive at every dtype and
# loop shape on edge values: tests/codegen/test_codegen_op_cases.py) -----------------

def binary_cases(prim: str, dtypes, **options):
    for dtype in dtypes:
        full = (3, 17)
        # row broadcast (y: [17] -> [3,17]) and column stretch (y: [3,1] -> [3,17])
        add_case(f"{prim}-{dtype}-bcast-row", [TensorType(full, dtype), TensorType((17,), dtype)],
                 lambda b, x, y, p=prim: b.emit(
                     p, x, b.broadcast_in_dim(y, shape=full, dims=(1,))), **options)
        add_case(f"{prim}-{dtype}-bcast-col", [TensorType((3, 1), dtype), TensorType(full, dtype)],
                 lambda b, x, y, p=prim: b.emit(
                     p, b.broadcast_in_dim(x, shape=full, dims=(0, 1)), y), **options)


for prim in ("add", "sub", "mul", "max", "min", "div"):
    binary_cases(prim, NUMERIC)
for prim in ("lt", "le", "gt", "ge"):
    binary_cases(prim, NUMERIC)
for prim in ("eq", "ne"):
    binary_cases(prim, ALL)
binary_cases("pow", FLOATS, kind="ulp", ulps=4)

# pow edge table: 0**0, negative bases with integer exponents, inf/nan exponents
_bases = [-2.0, -1.5, -0.0, 0.0, 0.5, 1.0, 2.0, 3.0, np.nan, np.inf, -np.inf, -1.0]
_exponents = [0.0, 1.0, 2.0, 3.0, -1.0, 0.5, -0.5, 2.5, np.nan, np.inf, -np.inf, -2.0]
for dtype in FLOATS:
    grid_x, grid_y = np.meshgrid(_bases, _exponents)
    t = TensorType(grid_x.shape, dtype)
    add_case(f"pow-{dtype}-edges", [t, t], lambda b, x, y: b.pow(x, y), kind="ulp", ulps=4,
             inputs=[grid_x.astype(dtype.numpy), grid_y.astype(dtype.numpy)])

# integer floor division edges: x // 0 == 0, INT_MIN // -1 wraps, negative operands
for dtype in INTS:
    info = np.iinfo(dtype.numpy)
    xs = np.array([7, -7, 7, -7, 0, info.min, info.min, info.max, 5, -5, info.min, 3], dtype.numpy)
    ys = np.array([2, 2, -2, -2, 3, -1, 0, -1, 0, 0, 1, 7], dtype.numpy)
    t = TensorType(xs.shape, dtype)
    add_case(f"div-{dtype}-edges", [t, t], lambda b, x, y: b.div(x, y), inputs=[xs, ys])

# max/min with signed zeros and NaN in either operand
for dtype in FLOATS:
    xs = np.array([0.0, -0.0, np.nan, 1.0, np.nan, -1.0] * 6, dtype.numpy)
    ys = np.array([-0.0, 0.0, 1.0, np.nan, np.nan, -1.0] * 6, dtype.numpy)
    t = TensorType(xs.shape, dtype)
    for prim in ("max", "min"):
        add_case(f"{prim}-{dtype}-zeros-nan", [t, t], lambda b, x, y, p=prim: b.emit(p, x, y),
                 inputs=[xs, ys])


# ---- convert out of range (every source x target at the loop shapes: test_codegen_op_cases)

for source in FLOATS:
    big = np.array([np.nan, np.inf, -np.inf, 3e9, -3e9, 2147483520.0, -2147483648.0,
                    -2147483904.0, 1e20, -1e20, 9.3e18, -9.3e18, 0.5, -0.5, -0.0, 2.75] * 2,
                   dtype=source.numpy)
    for target in INTS + (BOOL,):
        add_case(f"convert-{source}-{target}-out-of-range", [TensorType(big.shape, source)],
                 lambda b, x, t=target: b.convert(x, dtype=t), inputs=[big])


# ---- shape ops --------------------------------------------------------------------------

for dtype in ALL:
    add_case(f"broadcast-{dtype}-scalar", [TensorType((), dtype)],
             lambda b, x: b.broadcast_in_dim(x, shape=(3, 17), dims=()))
    add_case(f"broadcast-{dtype}-middle", [TensorType((4, 1), dtype)],
             lambda b, x: b.broadcast_in_dim(x, shape=(4, 5, 3), dims=(0, 2)))
    add_case(f"broadcast-{dtype}-empty", [TensorType((2,), dtype)],
             lambda b, x: b.broadcast_in_dim(x, shape=(0, 2), dims=(1,)))
    add_case(f"reshape-{dtype}-merge", [TensorType((3, 5, 2), dtype)],
             lambda b, x: b.reshape(x, shape=(15, 2)))
    add_case(f"reshape-{dtype}-scalar", [TensorType((1, 1), dtype)],
             lambda b, x: b.reshape(x, shape=()))
    add_case(f"transpose-{dtype}-3d", [TensorType((3, 5, 7), dtype)],
             lambda b, x: b.transpose(x, perm=(2, 0, 1)))
    add_case(f"transpose-{dtype}-empty", [TensorType((0, 3), dtype)],
             lambda b, x: b.transpose(x, perm=(1, 0)))
    add_case(f"slice-{dtype}-strided", [TensorType((9, 17), dtype)],
             lambda b, x: b.slice(x, start=(1, 2), stop=(8, 17), stride=(3, 2)))
    add_case(f"slice-{dtype}-empty", [TensorType((9,), dtype)],
             lambda b, x: b.slice(x, start=(4,), stop=(4,), stride=(1,)))
    add_case(f"rev-{dtype}-fused", [TensorType((3, 33), dtype)],
             lambda b, x: b.rev(b.rev(x, dims=(1,)), dims=(0, 1)))
    add_case(f"rev-{dtype}-sliced", [TensorType((9, 17), dtype)],
             lambda b, x: b.slice(b.rev(x, dims=(0,)), start=(1, 2), stop=(8, 17),
                                  stride=(3, 2)))
    add_case(f"pad-{dtype}", [TensorType((3, 4), dtype)],
             lambda b, x: b.pad(x, low=(1, 0), high=(2, 3), interior=(0, 2)))
    add_case(f"pad-{dtype}-empty-operand", [TensorType((0, 2), dtype)],
             lambda b, x: b.pad(x, low=(1, 1), high=(0, 1), interior=(3, 0)))
    add_case(f"concatenate-{dtype}", [TensorType((2, 3), dtype), TensorType((2, 0), dtype),
                                      TensorType((2, 5), dtype)],
             lambda b, x, y, z: b.concatenate(x, y, z, axis=1))
    add_case(f"concatenate-{dtype}-axis0", [TensorType((1, 3), dtype), TensorType((4, 3), dtype)],
             lambda b, x, y: b.concatenate(x, y, axis=0))


# ---- reductions -------------------------------------------------------------------------

REDUCE_CONFIGS = [((33,), (0,)), ((), ()), ((4, 17), (1,)), ((4, 17), (0,)),
                  ((3, 5, 7), (0, 2)), ((3, 5, 7), (1,)), ((3, 0), (1,)), ((3, 0), (0,)),
                  ((2, 3), ()), ((1, 1), (0, 1))]
for prim, dtypes in (("reduce_sum", NUMERIC), ("reduce_max", ALL), ("reduce_min", ALL)):
    for dtype in dtypes:
        for shape, axes in REDUCE_CONFIGS:
            # float max/min: exact up to the sign of a zero result (kind "sum", atol 0)
            kind = "sum" if dtype.is_float else "exact"
            add_case(f"{prim}-{dtype}-{shape_text(shape)}-axes{''.join(map(str, axes))}",
                     [TensorType(shape, dtype)],
                     lambda b, x, p=prim, a=axes: b.emit(p, x, axes=a), kind=kind,
                     sum_axes=axes)
# size-1 axes around the reduced ones (a tiled max-pool VJP's window sums): the loops
# are planned from the last axis longer than 1 (codegen/emit/kernels.py)
for prim, dtypes in (("reduce_sum", NUMERIC), ("reduce_max", FLOATS)):
    for dtype in dtypes:
        for shape, axes in (((3, 1, 4, 2, 5, 1), (1, 3, 5)), ((2, 1, 3, 1), (1, 3))):
            add_case(f"{prim}-{dtype}-{shape_text(shape)}-axes{''.join(map(str, axes))}",
                     [TensorType(shape, dtype)],
                     lambda b, x, p=prim, a=axes: b.emit(p, x, axes=a),
                     kind="sum" if dtype.is_float else "exact", sum_axes=axes)

# logsumexp: two passes over each row, inline exp/log: close in ulps, plus an absolute
# allowance for results near 0 (m + log(s) cancels there)
for dtype in FLOATS:
    eps = float(np.finfo(dtype.numpy).eps)
    for shape, axes in REDUCE_CONFIGS:
        add_case(f"logsumexp-{dtype}-{shape_text(shape)}-axes{''.join(map(str, axes))}",
                 [TensorType(shape, dtype)], lambda b, x, a=axes: b.logsumexp(x, axes=a),
                 kind="ulp", ulps=8, atol=64 * eps)
    rows = np.array([[0.0, -np.inf, 1.0, 2.0], [-np.inf] * 4, [1.0, np.inf, 0.0, -np.inf],
                     [np.nan, 0.0, 1.0, 2.0], [100.0, -100.0, 99.0, 0.0],
                     [-100.0, -100.0, -100.0, -100.0], [3e38 if dtype is F32 else 1e308] * 4],
                    dtype=dtype.numpy)
    add_case(f"logsumexp-{dtype}-special-rows", [TensorType(rows.shape, dtype)],
             lambda b, x: b.logsumexp(x, axes=(1,)), kind="ulp", ulps=8, atol=64 * eps,
             inputs=[rows])


# ---- dot ---------------------------------------------------------------------------------

DOT_CONFIGS = [
    ("matmul", (5, 7), (7, 3), (), (), (1,), (0,)),
    ("matmul-odd", (3, 33), (33, 17), (), (), (1,), (0,)),
    ("lhs-transposed", (7, 5), (7, 3), (), (), (0,), (0,)),
    ("rhs-transposed", (5, 7), (3, 7), (), (), (1,), (1,)),
    ("batched", (2, 3, 4), (2, 4, 5), (0,), (0,), (2,), (1,)),
    ("batch-last", (3, 4, 2), (4, 5, 2), (2,), (2,), (1,), (0,)),
    ("matvec", (5, 9), (9,), (), (), (1,), (0,)),
    ("vecmat", (9,), (9, 4), (), (), (0,), (0,)),
    ("inner", (17,), (17,), (), (), (0,), (0,)),
    ("outer", (3,), (4,), (), (), (), ()),
    ("two-contract", (4, 2, 3), (2, 3, 5), (), (), (1, 2), (0, 1)),
    ("empty-k", (3, 0), (0, 4), (), (), (1,), (0,)),
    ("empty-m", (0, 3), (3, 4), (), (), (1,), (0,)),
]
for dtype in NUMERIC:
    for name, ls, rs, lb, rb, lc, rc in DOT_CONFIGS:
        add_case(f"dot-{dtype}-{name}", [TensorType(ls, dtype), TensorType(rs, dtype)],
                 lambda b, x, y, a=(lb, rb, lc, rc): b.dot(
                     x, y, lhs_batch=a[0], rhs_batch=a[1], lhs_contract=a[2],
                     rhs_contract=a[3]),
                 kind="sum" if dtype.is_float else "exact", dot=True, seed=1)


# ---- windows and indexing (ir/ops_window.py) ---------------------------------------------


def _conv_attrs(strides, low, high, lhs=(1, 1), rhs=(1, 1), groups=1):
    return dict(strides=strides, padding_low=low, padding_high=high, lhs_dilation=lhs,
                rhs_dilation=rhs, feature_group_count=groups)


CONV_CONFIGS = [   # (name, x shape, w shape, attrs): the sgemm path (f32, one group) and
    ("same", (2, 5, 6, 3), (3, 3, 3, 4), _conv_attrs((1, 1), (1, 1), (1, 1))),   # the loops
    ("grouped-strided", (1, 7, 5, 4), (2, 3, 2, 6), _conv_attrs((2, 2), (0, 1), (1, 0),
                                                                rhs=(2, 1), groups=2)),
    ("dilated-cropped", (2, 4, 3, 2), (3, 2, 2, 3), _conv_attrs((1, 2), (2, -1), (1, 2),
                                                                lhs=(2, 3))),
]
for dtype in FLOATS:
    for name, xs, ws, conv_attrs in CONV_CONFIGS:
        add_case(f"conv-{dtype}-{name}", [TensorType(xs, dtype), TensorType(ws, dtype)],
                 lambda b, x, w, a=conv_attrs: b.conv(b.tanh(x), w, **a), kind="ulp",
                 ulps=64, atol=1e-5)
for prim in ("reduce_window_sum", "reduce_window_max"):
    for dtype in NUMERIC:
        for name, low, high in (("fused", (0, 0, 0), (0, 0, 0)), ("padded", (0, 1, 1), (0, 1, 0))):
            # an elementwise producer: fused into the unpadded loop, a buffer otherwise
            add_case(f"{prim}-{dtype}-{name}", [TensorType((2, 5, 7), dtype)],
                     lambda b, x, p=prim, lo=low, hi=high: b.emit(
                         p, b.add(x, x), window=(1, 2, 3), strides=(1, 2, 2), padding_low=lo,
                         padding_high=hi), kind="ulp", ulps=4)
for dtype in ALL:
    picks = np.array([[0, 4, 4, 1, 2, 3]] * 3, np.int32)           # in range: debug builds
    add_case(f"gather-{dtype}", [TensorType((3, 5), dtype), TensorType((3, 6), I32)],
             lambda b, x, i: b.gather(x, i, axis=1),
             inputs=[random_array(np.random.default_rng(3), TensorType((3, 5), dtype)), picks])
for dtype in NUMERIC:
    picks = np.array([[2, 0], [2, 2], [1, 0]], np.int64)
    rng = np.random.default_rng(4)
    add_case(f"scatter_add-{dtype}",
             [TensorType((3, 2), dtype), TensorType((3, 2), I64), TensorType((3, 2), dtype)],
             lambda b, x, i, u: b.scatter_add(x, i, u, axis=0),
             inputs=[random_array(rng, TensorType((3, 2), dtype)), picks,
                     random_array(rng, TensorType((3, 2), dtype))], kind="ulp", ulps=2)


# ---- sources -----------------------------------------------------------------------------

for dtype in ALL:
    rng = np.random.default_rng(7)
    varied = random_array(rng, TensorType((3, 5), dtype))
    add_case(f"constant-{dtype}-array", [TensorType((3, 5), dtype)],
             lambda b, x, v=varied: b.add(x, b.constant(value=v)) if dtype.is_numeric
             else b.eq(x, b.constant(value=v)))
    add_case(f"constant-{dtype}-output", [], lambda b, v=varied: b.constant(value=v))
    add_case(f"constant-{dtype}-splat", [],
             lambda b, v=varied: b.constant(value=np.full((4, 9), v.flat[1])))
    add_case(f"constant-{dtype}-scalar", [],
             lambda b, v=varied: b.constant(value=np.asarray(v.flat[2])))
    add_case(f"constant-{dtype}-empty", [],
             lambda b, v=varied: b.constant(value=v[:0]))
for dtype in NUMERIC:
    for shape, dim in (((17,), 0), ((3, 5), 1), ((3, 5), 0), ((0, 4), 1)):
        add_case(f"iota-{dtype}-{shape_text(shape)}-d{dim}", [],
                 lambda b, s=shape, d=dim, t=dtype: b.iota(shape=s, dtype=t, dimension=d))


# ---- control flow: native loops and branches (codegen/loops_scan.py) -----------------------

for dtype in (I32, I64):
    add_case(f"scan-{dtype}", [TensorType((3,), dtype)] * 2 + [TensorType((4, 3), dtype)],
             lambda b, *xs, d=dtype: b.emit("scan", *xs, **scan_attrs(d, 4))[0])
    add_case(f"scan-{dtype}-reversed", [TensorType((3,), dtype)] * 2 + [TensorType((4, 3), dtype)],
             lambda b, *xs, d=dtype: b.emit("scan", *xs, **scan_attrs(d, 4, True))[1])
    for pred in (True, False):
        add_case(f"cond-{dtype}-{pred}", [TensorType((), BOOL)] + [TensorType((3,), dtype)] * 2,
                 lambda b, *xs, d=dtype: b.emit("cond", *xs, **cond_branches(d))[0],
                 inputs=[np.array(pred), np.arange(3).astype(dtype.numpy),
                         np.array([5, -2, 7], dtype.numpy)])
    add_case(f"while_loop-{dtype}", [TensorType((3,), dtype), TensorType((), I32)],
             lambda b, *xs, d=dtype: b.emit("while_loop", *xs, **while_regions(d))[0],
             inputs=[np.array([1, -2, 3], dtype.numpy), np.array(-4, np.int32)])
add_case("scan-f32-rnn", [TensorType((2, 3), F32)] * 2 + [TensorType((6, 2, 3), F32)],
         lambda b, c, h, xs: scan_loss(b, c, h, xs), kind="ulp", ulps=64, atol=1e-5)
add_case("scan-f32-rnn-reversed-empty", [TensorType((3,), F32)] * 2 + [TensorType((0, 3), F32)],
         lambda b, c, h, xs: scan_loss(b, c, h, xs, reverse=True), kind="ulp", ulps=8)
# (the loss sums the carry: a reduction's order differs compiled, so a few ulps)


# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compiled():
    executables = codegen.compile_graphs([case.graph for case in CASES])
    return {case.name: exe for case, exe in zip(CASES, executables)}


def test_case_names_are_unique():
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))


def test_table_covers_every_primitive():
    """This table's rows and the shared op-case table's elementwise rows, which
    test_codegen_op_cases runs at every loop shape on edge values."""
    covered = {op.prim for case in CASES for op in case.graph.ops}
    covered |= {case.prim for case in OP_CASES if PRIMITIVES[case.prim].elementwise}
    assert covered == set(PRIMITIVES)


def _sum_bound(case: Case, inputs) -> np.ndarray:
    """n * eps * sum|terms| per output element, computed in float64 (0 for max/min)."""
    if case.graph.ops[-1].prim in ("reduce_max", "reduce_min"):
        return np.zeros(case.graph.outputs[0].shape)
    eps = np.finfo(case.graph.outputs[0].dtype.numpy).eps
    if case.options.get("dot"):
        op = case.graph.ops[-1]
        lhs, rhs = (np.abs(a).astype(np.float64) for a in inputs)
        terms = interpret(_abs_dot_graph(op), lhs, rhs)[0]
        count = int(np.prod([op.operands[0].shape[a] for a in op.attrs["lhs_contract"]]))
    else:
        axes = case.options["sum_axes"]
        x = np.abs(inputs[0]).astype(np.float64)
        terms = np.sum(x, axis=axes)
        count = int(np.prod([x.shape[a] for a in axes]))
    return 2 * (count + 1) * eps * terms


def _abs_dot_graph(op) -> Graph:
    b = Builder("absdot")
    lhs = b.input(op.operands[0].type.with_dtype(F64))
    rhs = b.input(op.operands[1].type.with_dtype(F64))
    b.output(b.dot(lhs, rhs, **op.attrs))
    return b.build()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_compiled_matches_interpreter(compiled, case: Case):
    got = compiled[case.name](*case.inputs)
    want = interpret(case.graph, *case.inputs)
    assert len(got) == len(want) == 1
    options = {k: v for k, v in case.options.items() if k in ("ulps", "atol")}
    if case.kind == "sum":
        options["atol"] = _sum_bound(case, case.inputs)
    assert_matches(got[0], want[0], case.name, case.kind, **options)
