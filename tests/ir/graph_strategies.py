"""Hypothesis strategies for random well-typed IR graphs, built with `ir.Builder`.

    from graph_strategies import graphs, sample_inputs

    @settings(max_examples=50, deadline=None)
    @given(graphs(max_ops=6))
    def test_something(graph):
        arrays = sample_inputs(graph, np.random.default_rng(0))
        ...

`graphs()` draws ops from every primitive in `ir.PRIMITIVES` (or the `prims` you
name), with every dtype each primitive accepts, and shapes that include 0-d, size-1
and size-0 dimensions. Operands are earlier values of the right type when there are
some (so graphs chain and fan out) or fresh inputs otherwise. Constants include NaN
(both signs), infinities, -0.0, subnormals and integer extremes. Ops carry random
source locations, and graphs random residual counts.

`MAKERS` holds one maker per primitive; tests/ir/test_verify.py fails when a
primitive has none, like the other per-primitive tables. (tests/conftest.py puts
this folder on sys.path, so `from graph_strategies import ...` works anywhere.)
"""
from __future__ import annotations

from typing import Callable, Iterable, Sequence

import numpy as np
from hypothesis import strategies as st

from ir import PRIMITIVES, Builder, DType, Graph, SourceLoc, TensorType, Value

ALL_DTYPES = tuple(DType)
DIM_SIZES = (1, 2, 3, 0, 5)   # first entries are what shrinking prefers
MAX_RANK = 4
MAX_OPERAND_SIZE = 300        # keeps chains of pads/broadcasts small


def shapes(min_rank: int = 0, max_rank: int = 3) -> st.SearchStrategy[tuple[int, ...]]:
    """Shapes with dims from DIM_SIZES (0-d, size-1 and size-0 included)."""
    return st.lists(st.sampled_from(DIM_SIZES), min_size=min_rank, max_size=max_rank).map(tuple)


def tensor_types(dtypes: Sequence[DType] = ALL_DTYPES, min_rank: int = 0,
                 max_rank: int = 3) -> st.SearchStrategy[TensorType]:
    return st.builds(TensorType, shapes(min_rank, max_rank), st.sampled_from(tuple(dtypes)))


def rule_accepts(prim: str, types: list[TensorType], attrs: dict) -> bool:
    """Whether `prim`'s rule accepts these operand types and attributes."""
    try:
        PRIMITIVES[prim].result_type(types, attrs)
    except (ValueError, TypeError):
        return False
    return True


def accepted_dtypes(prim: str, operand_count: int = 1, attrs: dict | None = None,
                    shape: tuple[int, ...] = ()) -> tuple[DType, ...]:
    """The dtypes `prim`'s rule accepts for operands all of one type (probed)."""
    return tuple(d for d in ALL_DTYPES
                 if rule_accepts(prim, [TensorType(shape, d)] * operand_count, dict(attrs or {})))


# --------------------------------------------------------------------------------------
# the context a maker draws operands from


class GraphContext:
    """A builder, the values made so far, and hypothesis' `draw`."""

    def __init__(self, draw: Callable, builder: Builder):
        self.draw = draw
        self.builder = builder
        self.values: list[Value] = []

    def new_input(self, type: TensorType) -> Value:
        value = self.builder.input(type)
        self.values.append(value)
        return value

    def emit(self, prim: str, *operands: Value, **attrs) -> Value:
        value = self.builder.emit(prim, *operands, **attrs)
        self.values.append(value)
        return value

    def operand(self, dtypes: Iterable[DType] = ALL_DTYPES, min_rank: int = 0,
                max_rank: int = MAX_RANK - 1) -> Value:
        """An earlier value with one of `dtypes` and a fitting rank, or a new input."""
        dtypes = tuple(dtypes)
        fits = [v for v in self.values if v.dtype in dtypes and min_rank <= v.ndim <= max_rank
                and v.type.size <= MAX_OPERAND_SIZE]
        if fits and self.draw(st.integers(0, 3)) > 0:
            return self.draw(st.sampled_from(fits))
        return self.new_input(self.draw(tensor_types(dtypes, min_rank, min(max_rank, 3))))

    def of_type(self, type: TensorType) -> Value:
        """An earlier value of exactly `type` (sometimes), else a new input."""
        fits = [v for v in self.values if v.type == type]
        if fits and self.draw(st.booleans()):
            return self.draw(st.sampled_from(fits))
        return self.new_input(type)

    def ints(self, low: int, high: int) -> int:
        return self.draw(st.integers(low, high))

    def subset_of_axes(self, ndim: int) -> tuple[int, ...]:
        """Distinct axes in any order (possibly none)."""
        order = self.draw(st.permutations(list(range(ndim))))
        return tuple(order[:self.ints(0, ndim)])


# --------------------------------------------------------------------------------------
# one maker per primitive


Maker = Callable[[GraphContext], Value]
MAKERS: dict[str, Maker] = {}


def _maker(*names: str):
    def register(fn: Maker) -> Maker:
        for name in names:
            MAKERS[name] = fn
        return fn
    return register


def _simple_elementwise(name: str) -> Maker:
    arity = PRIMITIVES[name].arity

    def make(ctx: GraphContext) -> Value:
        first = ctx.operand(accepted_dtypes(name, arity))
        rest = [ctx.of_type(first.type) for _ in range(arity - 1)]
        return ctx.emit(name, first, *rest)
    return make


for _name, _prim in PRIMITIVES.items():
    if _prim.elementwise and not _prim.attrs and _prim.arity in (1, 2):
        MAKERS[_name] = _simple_elementwise(_name)


@_maker("select")
def _select(ctx: GraphContext) -> Value:
    on_true = ctx.operand()
    pred = ctx.of_type(on_true.type.with_dtype(DType.bool))
    return ctx.emit("select", pred, on_true, ctx.of_type(on_true.type))


@_maker("convert")
def _convert(ctx: GraphContext) -> Value:
    return ctx.emit("convert", ctx.operand(), dtype=ctx.draw(st.sampled_from(ALL_DTYPES)))


@_maker("broadcast_in_dim")
def _broadcast_in_dim(ctx: GraphContext) -> Value:
    x = ctx.operand()
    rank = ctx.ints(x.ndim, min(x.ndim + 2, MAX_RANK))
    dims = tuple(sorted(ctx.draw(st.permutations(list(range(rank))))[:x.ndim]))
    shape = [ctx.draw(st.sampled_from(DIM_SIZES)) for _ in range(rank)]
    for axis, dim in enumerate(dims):
        if x.shape[axis] != 1:
            shape[dim] = x.shape[axis]
    return ctx.emit("broadcast_in_dim", x, shape=tuple(shape), dims=dims)


def _shape_with_size(ctx: GraphContext, size: int) -> tuple[int, ...]:
    """A random shape of rank <= 3 holding exactly `size` elements."""
    if size == 0:
        shape = [ctx.draw(st.sampled_from(DIM_SIZES)) for _ in range(ctx.ints(0, 2))]
        shape.insert(ctx.ints(0, len(shape)), 0)
        return tuple(shape)
    rank = ctx.ints(0 if size == 1 else 1, 3)
    shape = [1] * rank
    factor, rest = 2, size
    while rest > 1:
        while rest % factor:
            factor += 1
        shape[ctx.ints(0, rank - 1)] *= factor
        rest //= factor
    return tuple(shape)


@_maker("reshape")
def _reshape(ctx: GraphContext) -> Value:
    x = ctx.operand()
    return ctx.emit("reshape", x, shape=_shape_with_size(ctx, x.type.size))


@_maker("transpose")
def _transpose(ctx: GraphContext) -> Value:
    x = ctx.operand()
    return ctx.emit("transpose", x, perm=tuple(ctx.draw(st.permutations(list(range(x.ndim))))))


@_maker("slice")
def _slice(ctx: GraphContext) -> Value:
    x = ctx.operand()
    start = tuple(ctx.ints(0, dim) for dim in x.shape)
    stop = tuple(ctx.ints(lo, dim) for lo, dim in zip(start, x.shape))
    stride = tuple(ctx.ints(1, 3) for _ in x.shape)
    return ctx.emit("slice", x, start=start, stop=stop, stride=stride)


@_maker("rev")
def _rev(ctx: GraphContext) -> Value:
    x = ctx.operand()
    dims = tuple(axis for axis in range(x.ndim) if ctx.draw(st.booleans()))
    return ctx.emit("rev", x, dims=dims)


@_maker("pad")
def _pad(ctx: GraphContext) -> Value:
    x = ctx.operand()
    low, high, interior = (tuple(ctx.ints(0, 2) for _ in x.shape) for _ in range(3))
    return ctx.emit("pad", x, low=low, high=high, interior=interior)


@_maker("concatenate")
def _concatenate(ctx: GraphContext) -> Value:
    first = ctx.operand(min_rank=1)
    axis = ctx.ints(0, first.ndim - 1)
    operands = [first]
    for _ in range(ctx.ints(0, 2)):
        shape = list(first.shape)
        shape[axis] = ctx.draw(st.sampled_from(DIM_SIZES))
        operands.append(ctx.of_type(first.type.with_shape(shape)))
    order = ctx.draw(st.permutations(operands))
    return ctx.emit("concatenate", *order, axis=axis)


def _reduction(name: str) -> Maker:
    def make(ctx: GraphContext) -> Value:
        x = ctx.operand(accepted_dtypes(name, 1, {"axes": (0,)}, shape=(1,)))
        return ctx.emit(name, x, axes=ctx.subset_of_axes(x.ndim))
    return make


for _name in ("reduce_sum", "reduce_max", "reduce_min", "logsumexp"):
    MAKERS[_name] = _reduction(_name)


@_maker("dot")
def _dot(ctx: GraphContext) -> Value:
    """Batch, contracting and free axes of random sizes placed in random orders."""
    probe = {"lhs_batch": (), "rhs_batch": (), "lhs_contract": (0,), "rhs_contract": (0,)}
    dtype = ctx.draw(st.sampled_from(accepted_dtypes("dot", 2, probe, shape=(1,))))
    sizes = {kind: [ctx.draw(st.sampled_from(DIM_SIZES)) for _ in range(ctx.ints(0, 1))]
             for kind in ("batch", "contract", "lhs_free", "rhs_free")}
    attrs = {}
    operands = []
    for side in ("lhs", "rhs"):
        axes = ([("batch", i) for i in range(len(sizes["batch"]))]
                + [("contract", i) for i in range(len(sizes["contract"]))]
                + [(f"{side}_free", i) for i in range(len(sizes[f"{side}_free"]))])
        axes = ctx.draw(st.permutations(axes))
        for kind in ("batch", "contract"):
            attrs[f"{side}_{kind}"] = tuple(axes.index((kind, i)) for i in range(len(sizes[kind])))
        shape = tuple(sizes[kind][i] for kind, i in axes)
        operands.append(ctx.of_type(TensorType(shape, dtype)))
    return ctx.emit("dot", *operands, **attrs)


# --------------------------------------------------------------------------------------
# windowed and indexed primitives (ir/ops_window.py)


def _window_attrs(ctx: GraphContext, sizes, windows, signed: bool) -> dict:
    """Strides and paddings (negative ones when `signed`) that fit each axis."""
    attrs = {"strides": [], "padding_low": [], "padding_high": []}
    lowest_pad = -1 if signed else 0
    for size, window in zip(sizes, windows):
        attrs["strides"].append(ctx.ints(1, 2))
        low = ctx.ints(lowest_pad, 2)
        high = ctx.ints(lowest_pad, 2)
        if size > 0 and low + size + high < window:
            low, high = window - 1, 0
        attrs["padding_low"].append(low)
        attrs["padding_high"].append(high)
    return {key: tuple(value) for key, value in attrs.items()}


@_maker("conv")
def _conv(ctx: GraphContext) -> Value:
    """1 or 2 spatial axes, 1-2 groups, random strides, paddings and dilations."""
    dtype = ctx.draw(st.sampled_from((DType.f32, DType.f64)))
    spatial = ctx.ints(1, 2)
    groups = ctx.ints(1, 2)
    sizes = [ctx.draw(st.sampled_from((1, 2, 3, 5))) for _ in range(spatial)]
    windows = [ctx.ints(1, 3) for _ in range(spatial)]
    lhs_dilation = tuple(ctx.ints(1, 2) for _ in range(spatial))
    rhs_dilation = tuple(ctx.ints(1, 2) for _ in range(spatial))
    extents = [(w - 1) * r + 1 for w, r in zip(windows, rhs_dilation)]
    spread = [(n - 1) * d + 1 for n, d in zip(sizes, lhs_dilation)]
    attrs = _window_attrs(ctx, spread, extents, signed=True)
    channels = groups * ctx.ints(1, 2)
    features = groups * ctx.ints(1, 2)
    lhs = ctx.of_type(TensorType((ctx.ints(0, 2), *sizes, channels), dtype))
    rhs = ctx.of_type(TensorType((*windows, channels // groups, features), dtype))
    return ctx.emit("conv", lhs, rhs, lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation,
                    feature_group_count=groups, **attrs)


def _reduce_window(name: str) -> Maker:
    def make(ctx: GraphContext) -> Value:
        x = ctx.operand(accepted_dtypes(name, 1, {"window": (), "strides": (),
                                                  "padding_low": (), "padding_high": ()}))
        windows = tuple(ctx.ints(1, max(1, min(size, 3))) for size in x.shape)
        attrs = _window_attrs(ctx, x.shape, windows, signed=name == "reduce_window_sum")
        return ctx.emit(name, x, window=windows, **attrs)
    return make


for _name in ("reduce_window_sum", "reduce_window_max"):
    MAKERS[_name] = _reduce_window(_name)


def _indices_for(ctx: GraphContext, operand: Value, axis: int) -> Value:
    """Indices matching `operand` off `axis`, from -2 to the axis size + 1 at run time
    (sample_inputs draws small ints, some out of range: they clamp)."""
    shape = list(operand.shape)
    shape[axis] = ctx.draw(st.sampled_from(DIM_SIZES)) if operand.shape[axis] else 0
    dtype = ctx.draw(st.sampled_from((DType.i32, DType.i64)))
    return ctx.of_type(TensorType(tuple(shape), dtype))


@_maker("gather")
def _gather(ctx: GraphContext) -> Value:
    operand = ctx.operand(min_rank=1)
    axis = ctx.ints(0, operand.ndim - 1)
    return ctx.emit("gather", operand, _indices_for(ctx, operand, axis), axis=axis)


@_maker("scatter_add")
def _scatter_add(ctx: GraphContext) -> Value:
    operand = ctx.operand((DType.f32, DType.f64, DType.i32, DType.i64), min_rank=1)
    axis = ctx.ints(0, operand.ndim - 1)
    indices = _indices_for(ctx, operand, axis)
    updates = ctx.of_type(indices.type.with_dtype(operand.dtype))
    return ctx.emit("scatter_add", operand, indices, updates, axis=axis)


def elements(dtype: DType) -> st.SearchStrategy:
    """Array elements of `dtype`, special values included."""
    if dtype.is_bool:
        return st.booleans()
    if dtype.is_int:
        info = np.iinfo(dtype.numpy)
        return st.integers(int(info.min), int(info.max))
    width = 32 if dtype is DType.f32 else 64
    specials = st.sampled_from([float("nan"), -float("nan"), float("inf"), -float("inf"), -0.0])
    return st.floats(allow_nan=False, width=width) | specials


@_maker("constant")
def _constant(ctx: GraphContext) -> Value:
    type = ctx.draw(tensor_types(max_rank=2))
    flat = ctx.draw(st.lists(elements(type.dtype), min_size=type.size, max_size=type.size))
    value = np.array(flat, dtype=type.dtype.numpy).reshape(type.shape)
    return ctx.emit("constant", value=value)


@_maker("iota")
def _iota(ctx: GraphContext) -> Value:
    dtypes = [d for d in ALL_DTYPES
              if rule_accepts("iota", [], {"shape": (1,), "dtype": d, "dimension": 0})]
    shape = ctx.draw(shapes(min_rank=1))
    return ctx.emit("iota", shape=shape, dtype=ctx.draw(st.sampled_from(dtypes)),
                    dimension=ctx.ints(0, len(shape) - 1))


from control_flow_strategies import CONTROL_FLOW_MAKERS  # noqa: E402

MAKERS.update(CONTROL_FLOW_MAKERS)


# --------------------------------------------------------------------------------------
# whole graphs


graph_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
source_locs = st.none() | st.builds(
    SourceLoc, st.sampled_from(["model.py", "train.py", "<stdin>", "my file.py"]),
    st.integers(1, 100_000))


@st.composite
def graphs(draw: Callable, max_ops: int = 8, prims: Iterable[str] | None = None,
           locs: bool = True, residuals: bool = True) -> Graph:
    """A random well-typed graph of 1..max_ops ops drawn from `prims` (default: all).

    Outputs are 1-3 values (the last op's result always among them); with
    `residuals`, random residual counts are set; with `locs`, ops get random
    source locations.
    """
    names = sorted(prims if prims is not None else PRIMITIVES)
    missing = [name for name in names if name not in MAKERS]
    if missing:
        raise ValueError(f"graph_strategies has no maker for primitive(s) {missing}")
    builder = Builder(draw(graph_names))
    ctx = GraphContext(draw, builder)
    for _ in range(draw(st.integers(0, 2))):
        ctx.new_input(draw(tensor_types()))
    for _ in range(draw(st.integers(1, max(1, max_ops)))):
        builder.loc = draw(source_locs) if locs else None
        MAKERS[draw(st.sampled_from(names))](ctx)
    extra = draw(st.lists(st.sampled_from(ctx.values), max_size=2))
    builder.output(*extra, builder.graph.ops[-1].result)
    graph = builder.build()
    if residuals:
        graph.residual_inputs = draw(st.integers(0, len(graph.inputs)))
        graph.residual_outputs = draw(st.integers(0, len(graph.outputs)))
    return graph


def sample_inputs(graph: Graph, rng: np.random.Generator) -> list[np.ndarray]:
    """Seeded arrays for `graph`'s inputs: normals for floats, small ints, bools."""
    arrays = []
    for value in graph.inputs:
        dtype = value.dtype
        if dtype.is_float:
            array = rng.standard_normal(value.shape)
        elif dtype.is_int:
            array = rng.integers(-5, 6, size=value.shape)
        else:
            array = rng.random(value.shape) < 0.5
        arrays.append(np.asarray(array, dtype=dtype.numpy))
    return arrays
