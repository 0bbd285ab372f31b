"""OP_CASES rows of the control-flow primitives (scan, cond, while_loop): small region
graphs per dtype, and NumPy references written as plain Python loops (they never
call the interpreter). A row's graph outputs the op's first result (the final carry,
or the taken branch's first result).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ir import Builder, DType, Graph, TensorType

NUMERIC = (DType.f32, DType.f64, DType.i32, DType.i64)
I32 = DType.i32


def _t(shape, dtype: DType) -> TensorType:
    return TensorType(tuple(shape), dtype)


def scan_body(dtype: DType, shape=(3,)) -> Graph:
    """carry' = carry * c + x; y = carry (the carry the step started from)."""
    b = Builder("body")
    c, carry, x = (b.input(_t(shape, dtype)) for _ in range(3))
    b.output(b.add(b.mul(carry, c), x), carry)
    return b.build()


def scan_attrs(dtype: DType, length: int, reverse: bool = False, shape=(3,)) -> dict:
    return dict(body=scan_body(dtype, shape), length=length, reverse=reverse, num_consts=1,
                num_carry=1, checkpoint=False)


def scan_reference(attrs: dict):
    def run(c, carry, xs):
        steps = range(len(xs) - 1, -1, -1) if attrs["reverse"] else range(len(xs))
        carry = carry.copy()
        for i in steps:
            carry = (carry * c + xs[i]).astype(carry.dtype)
        return carry
    return run


def cond_branches(dtype: DType, shape=(3,)) -> dict:
    """true: (a + b, a); false: (a - b, b)."""
    graphs = {}
    for name, combine, second in (("true_branch", "add", 0), ("false_branch", "sub", 1)):
        b = Builder(name)
        a, other = b.input(_t(shape, dtype)), b.input(_t(shape, dtype))
        b.output(b.emit(combine, a, other), (a, other)[second])
        graphs[name] = b.build()
    return graphs


def cond_reference(pred, a, b):
    return (a + b if bool(pred) else a - b).astype(a.dtype)


def while_regions(dtype: DType, shape=(3,)) -> dict:
    """Carries (x, n): while n < 3: x = x + x, n = n + 1."""
    test = Builder("cond")
    test.input(_t(shape, dtype))
    n = test.input(_t((), I32))
    test.output(test.lt(n, test.scalar(3, I32)))
    body = Builder("body")
    x = body.input(_t(shape, dtype))
    m = body.input(_t((), I32))
    body.output(body.add(x, x), body.add(m, body.scalar(1, I32)))
    return dict(cond=test.build(), body=body.build(), num_consts=0)


def while_reference(x, n):
    x, n = x.copy(), int(n)
    while n < 3:
        x, n = (x + x).astype(x.dtype), n + 1
    return x


def _fill(dtypes: Sequence[DType], low: int = -3, high: int = 4):
    def fill(rng: np.random.Generator, shapes):
        arrays = []
        for shape, dtype in zip(shapes, dtypes):
            if dtype is DType.bool:
                arrays.append(np.asarray(rng.random(shape) < 0.5))
            else:
                arrays.append(np.asarray(rng.integers(low, high, size=shape), dtype.numpy))
        return arrays
    return fill


SHAPES = {"general": (3,), "0d": (), "empty": (0,)}


def control_flow_cases(case_type) -> list:
    """The rows, as `case_type` (tests/op_cases.OpCase) instances."""
    rows = []
    for dtype in NUMERIC:
        for name, length, reverse, shape in (("empty", 0, False, (3,)), ("one", 1, False, (3,)),
                                             ("general", 4, False, (3,)),
                                             ("reverse", 4, True, (3,)), ("0d", 3, False, ())):
            attrs = scan_attrs(dtype, length, reverse, shape)
            rows.append(case_type("scan", dtype, name, (shape, shape, (length,) + shape), attrs,
                                  _fill([dtype] * 3, -1, 2), scan_reference(attrs),
                                  exact=not dtype.is_float))
        for name, shape in SHAPES.items():
            rows.append(case_type("cond", dtype, name, ((), shape, shape),
                                  cond_branches(dtype, shape),
                                  _fill([DType.bool, dtype, dtype]), cond_reference))
            rows.append(case_type("while_loop", dtype, name, (shape, ()),
                                  while_regions(dtype, shape), _fill([dtype, I32], 0, 3),
                                  while_reference))
    return rows


def retyped_attrs(case, dtype: DType) -> dict:
    """A row's attributes with its regions rebuilt for operands of `dtype` (the
    regions' types are part of the op, so retyping the operands alone never fits)."""
    shape = case.shapes[1]
    if case.prim == "scan":
        return {**case.attrs, "body": scan_body(dtype, shape)}
    if case.prim == "cond":
        return cond_branches(dtype, shape)
    return while_regions(dtype, case.shapes[0])


def example(prim: str, b: Builder, dtype: DType):
    """One control-flow op of `dtype` operands added to `b` (new inputs); returns its
    first result. TypeRuleError when `dtype` does not fit its regions."""
    if prim == "scan":
        operands = [b.input(_t((3,), dtype)), b.input(_t((3,), dtype)),
                    b.input(_t((4, 3), dtype))]
        return b.emit("scan", *operands, **scan_attrs(dtype, 4))[0]
    if prim == "cond":
        regions = cond_branches(dtype)
        operands = [b.input(_t((), DType.bool)), b.input(_t((3,), dtype)),
                    b.input(_t((3,), dtype))]
        return b.emit("cond", *operands, **regions)[0]
    regions = while_regions(dtype)
    return b.emit("while_loop", b.input(_t((3,), dtype)), b.input(_t((), I32)), **regions)[0]


def tanh_rnn_body(dtype: DType, shape=(2, 3)) -> Graph:
    """carry' = tanh(carry * c + x); y = carry' * carry' (a float body for gradients)."""
    b = Builder("body")
    c, carry, x = (b.input(_t(shape, dtype)) for _ in range(3))
    new = b.tanh(b.add(b.mul(carry, c), x))
    b.output(new, b.mul(new, new))
    return b.build()


def scan_loss(b: Builder, c, h, xs, *, reverse=False, checkpoint=False):
    """sum(final carry) + sum(ys) of a tanh_rnn_body scan: a scalar to differentiate."""
    body = tanh_rnn_body(c.dtype, c.shape)
    carry, ys = b.emit("scan", c, h, xs, body=body, length=xs.shape[0], reverse=reverse,
                       num_consts=1, num_carry=1, checkpoint=checkpoint)
    axes = tuple(range(carry.ndim))
    return b.add(b.reduce_sum(carry, axes=axes), b.reduce_sum(ys, axes=(0,) + tuple(
        a + 1 for a in axes)))


def cond_loss(b: Builder, pred, x, y):
    """sum of cond(pred, (x*y, tanh x), (sin y, x)) results."""
    regions = {}
    for name in ("true_branch", "false_branch"):
        r = Builder(name)
        u, v = r.input(x.type), r.input(y.type)
        if name == "true_branch":
            r.output(r.mul(u, v), r.tanh(u))
        else:
            r.output(r.sin(v), u)
        regions[name] = r.build()
    first, second = b.emit("cond", pred, x, y, **regions)
    axes = tuple(range(x.ndim))
    return b.add(b.reduce_sum(first, axes=axes), b.reduce_sum(second, axes=axes))
