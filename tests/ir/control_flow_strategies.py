"""Graph-fuzzer makers for the control-flow primitives: a scan, cond or while_loop
whose regions are small random graphs of bounded elementwise ops (so a loop of a
few trips stays finite). tests/ir/graph_strategies.py adds them to MAKERS, so every
fuzzer that draws from all primitives (parser round trips, verifier, interpreter vs
compiled, gradients) draws programs with loops and branches too.
"""
from __future__ import annotations

from hypothesis import strategies as st

from ir import Builder, DType, TensorType

# Ops that keep the operand type, stay finite over a few trips and never magnify a
# few-ulp rounding difference (no sin/cos: of a huge argument they would, and the
# fuzzers' oracles cannot see inside a region to mask such elements).
BOUNDED = {"float": ("add", "sub", "mul", "max", "min", "tanh"),
           "int": ("add", "sub", "max", "min")}
NUMERIC = (DType.f32, DType.f64, DType.i32, DType.i64)
SHAPES = ((), (2,), (3,), (0,), (2, 2))


def _region(draw, name: str, types: list[TensorType], value_type: TensorType,
            outputs: int) -> tuple[Builder, list]:
    """A builder named `name` with `types` inputs and 1-3 random ops over the values
    of `value_type`; returns it and `outputs` values of that type (drawn)."""
    b = Builder(name)
    values = [b.input(t) for t in types]
    pool = [v for v in values if v.type == value_type]
    kind = "float" if value_type.dtype.is_float else "int"
    for _ in range(draw(st.integers(1, 3))):
        prim = draw(st.sampled_from(BOUNDED[kind]))
        if prim == "tanh":
            pool.append(b.emit(prim, draw(st.sampled_from(pool))))
        else:
            pool.append(b.emit(prim, draw(st.sampled_from(pool)), draw(st.sampled_from(pool))))
    chosen = [pool[-1]] + [draw(st.sampled_from(pool)) for _ in range(outputs - 1)]
    return b, chosen


def _value_type(ctx) -> TensorType:
    return TensorType(ctx.draw(st.sampled_from(SHAPES)), ctx.draw(st.sampled_from(NUMERIC)))


def _record(ctx, results) -> object:
    ctx.values.extend(results)
    return results[0]


def make_scan(ctx):
    """carry, y = body(c, carry, x) over 0-3 trips, either direction."""
    t = _value_type(ctx)
    length = ctx.ints(0, 3)
    xs_type = TensorType((length,) + t.shape, t.dtype)
    b, (carry, y) = _region(ctx.draw, "body", [t, t, t], t, 2)
    b.output(carry, y)
    operands = [ctx.of_type(t), ctx.of_type(t), ctx.of_type(xs_type)]
    results = ctx.builder.emit("scan", *operands, body=b.build(), length=length,
                               reverse=ctx.draw(st.booleans()), num_consts=1, num_carry=1,
                               checkpoint=ctx.draw(st.booleans()))
    return _record(ctx, list(results))


def make_cond(ctx):
    """Two random branches over (a, b) giving one value; a bool 0-d predicate."""
    t = _value_type(ctx)
    regions = {}
    for name in ("true_branch", "false_branch"):
        b, (out,) = _region(ctx.draw, name, [t, t], t, 1)
        b.output(out)
        regions[name] = b.build()
    pred = ctx.of_type(TensorType((), DType.bool))
    results = ctx.builder.emit("cond", pred, ctx.of_type(t), ctx.of_type(t), **regions)
    return _record(ctx, list(results))


def make_while(ctx):
    """(x, n): while n < limit: x = body(x), n = n + 1 (limit 0-3), with n starting
    at max(n, -3): at most 6 trips whatever the graph's counter holds (an int input
    may be INT_MIN, and 2**31 trips never end in a test)."""
    t = _value_type(ctx)
    counter = TensorType((), DType.i32)
    test = Builder("cond")
    test.input(t)
    n = test.input(counter)
    test.output(test.lt(n, test.scalar(ctx.ints(0, 3), DType.i32)))
    b, (x,) = _region(ctx.draw, "body", [t, counter], t, 1)
    b.output(x, b.add(b.graph.inputs[1], b.scalar(1, DType.i32)))
    start = ctx.builder.max(ctx.of_type(counter), ctx.builder.scalar(-3, DType.i32))
    results = ctx.builder.emit("while_loop", ctx.of_type(t), start,
                               cond=test.build(), body=b.build(), num_consts=0)
    return _record(ctx, list(results))


CONTROL_FLOW_MAKERS = {"scan": make_scan, "cond": make_cond, "while_loop": make_while}
