"""Fused expressions as trees: what one kernel computes per loop point.

`ExprBuilder.read(value, access)` turns "value at these indices" into a small tree
(`Load` of a materialized buffer, `Const`, `Iota`, `Apply` of an elementwise
primitive) by walking back through fused producers: elementwise ops keep the
access, view ops transform it, sources become leaves. Trees are memoised on
(value, access), so `x * x` computes x once.

Pure Python (no LLVM): the fusion planner builds trees to decide epilogues
(codegen/plan/epilogues.py), kernels build them to emit (codegen/emit/expr.py's
`Emitter` turns a tree into instructions). Reading follows the fusion plan: a
value it left without a buffer where one is needed is a CodegenError (a planner
bug), never a request to plan again.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ir.graph import Op, Value
from ir.types import DType

from ..errors import CodegenError
from ..registry import lowering_of
from .affine import Access, Affine, flat_offset


# --------------------------------------------------------------------------------------
# nodes


@dataclass(eq=False)
class Node:
    dtype: DType


@dataclass(eq=False)
class Load(Node):
    """Element `offset` of the buffer holding materialized `value`."""

    value: Value = None
    offset: Affine = None


@dataclass(eq=False)
class Const(Node):
    value: Any = 0


@dataclass(eq=False)
class Iota(Node):
    """The loop-dependent integer `index`, converted to dtype."""

    index: Affine = None


@dataclass(eq=False)
class Apply(Node):
    prim: str = ""
    attrs: dict = field(default_factory=dict)
    args: tuple = ()


def splat_value(array: np.ndarray):
    """The single value of a constant whose elements are all identical, else None.

    Elements are compared bitwise, so NaN constants and -0.0 stay exact. An empty
    array counts as the splat of 0 (it is never read).
    """
    if array.size == 0:
        return array.dtype.type(0)
    flat = np.ascontiguousarray(array).reshape(-1)
    as_bytes = flat.view(np.uint8).reshape(flat.size, flat.itemsize)
    if np.all(as_bytes == as_bytes[0]):
        return flat[0]
    return None


# --------------------------------------------------------------------------------------
# building trees


class ExprBuilder:
    """Builds expression trees over a loop space of `rank` counters."""

    def __init__(self, materialized: set[Value], rank: int):
        self.materialized = materialized
        self.rank = rank
        self._memo: dict[tuple, Node] = {}
        self.loads: list[Load] = []
        self.iotas: list[Iota] = []

    def affines(self) -> list[Affine]:
        """Every affine expression the trees built so far depend on."""
        return [n.offset for n in self.loads] + [n.index for n in self.iotas]

    def load_flat(self, value: Value, offset: Affine) -> Load:
        """A load of materialized `value` at flat element `offset`."""
        node = Load(value.dtype, value, offset)
        self.loads.append(node)
        return node

    def read(self, value: Value, access: Access) -> Node:
        """Tree for `value` indexed per axis by `access`."""
        key = (value, access)
        found = self._memo.get(key)
        if found is None:
            found = self._resolve(key, self._plan(value, access))
        return found

    def compute(self, value: Value, access: Access) -> Node:
        """Tree computing `value` from its producer's operands (even if it has a buffer:
        this is how the kernel that fills that buffer gets its expression)."""
        if value.producer is None:
            raise CodegenError("a graph input cannot be computed")
        return self._resolve(None, self._expand(value.producer, access))

    def _resolve(self, key: tuple | None, plan: tuple) -> Node:
        """Finish `plan` (and memoise it under `key` unless None) once every
        (value, access) it needs is memoised, with an explicit stack: a chain of
        hundreds of fused elementwise ops would overflow Python's recursion. Needs
        are visited first to last, depth first, as a recursive walk would."""
        todo = [(key, plan)]
        while todo:
            key, plan = todo[-1]
            if key in self._memo:
                todo.pop()
                continue
            needs, finish = plan
            missing = [need for need in needs if need not in self._memo]
            if missing:
                todo.extend((need, self._plan(*need)) for need in reversed(missing))
                continue
            todo.pop()
            node = finish([self._memo[need] for need in needs])
            if key is None:
                return node
            self._memo[key] = node
        return node

    def _plan(self, value: Value, access: Access) -> tuple:
        """(the (value, access) pairs the tree of `value` at `access` is made from,
        a function making it from their trees)."""
        if value in self.materialized or value.producer is None:
            return (), lambda _: self.load_flat(value, flat_offset(access, value.shape,
                                                                    self.rank))
        return self._expand(value.producer, access)

    def _expand(self, op: Op, access: Access) -> tuple:
        value = op.result
        lowering = lowering_of(op.prim)
        if lowering.kind == "elementwise":
            return ([(v, access) for v in op.operands],
                    lambda args: Apply(value.dtype, op.prim, op.attrs, tuple(args)))
        if lowering.kind == "view":
            return self._read_view(op, lowering.fn(op, access, self.rank), access)
        if lowering.kind == "source":
            return (), lambda _: self._source(lowering.fn(op, access, self.rank))
        raise CodegenError(f"{op.prim}: a kernel result was not given a buffer")

    def _source(self, node: Node) -> Node:
        if isinstance(node, Iota):
            self.iotas.append(node)
        return node

    def _read_view(self, op: Op, operand_access: Access | None, access: Access) -> tuple:
        operand = op.operands[0]
        if operand_access is not None:
            return [(operand, operand_access)], lambda trees: trees[0]
        if operand in self.materialized or operand.producer is None:
            return (), lambda _: self.load_flat(operand, flat_offset(access, op.result.shape,
                                                                      self.rank))
        # the planner gives a non-affine view's operand a buffer (plan/fusion.py)
        raise CodegenError(f"{op.prim}: the fusion plan left the operand of a non-affine "
                           "view without a buffer")


def constant_source(op: Op, access: Access, rank: int) -> Node:
    """A constant read inside a loop: only splats get here (others have buffers)."""
    value = splat_value(op.attrs["value"])
    if value is None:
        raise CodegenError("constant: a non-uniform constant was not given a buffer")
    return Const(op.result.dtype, value)


def iota_source(op: Op, access: Access, rank: int) -> Node:
    """iota at this point is the index along its `dimension`."""
    return Iota(op.result.dtype, access[op.attrs["dimension"]])


__all__ = ["Apply", "Const", "ExprBuilder", "Iota", "Load", "Node", "constant_source",
           "iota_source", "splat_value"]
