"""Fused expressions: what one kernel computes per loop point, and its emission.

`ExprBuilder.read(value, access)` turns "value at these indices" into a small tree
(`Load` of a materialized buffer, `Const`, `Iota`, `Apply` of an elementwise
primitive) by walking back through fused producers: elementwise ops keep the
access, view ops transform it, sources become leaves. Trees are memoised on
(value, access), so `x * x` computes x once.

`Emitter` then turns a tree into LLVM instructions at one loop point, given the
pointers of the kernel's buffers and its (collapsed) loop counters.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import llvmlite.ir as lir
import numpy as np

from ir.graph import Op, Value
from ir.types import DType

from ..plan.affine import Access, Affine, LoopPlan, flat_offset
from .elementwise import Scalar, emit_convert, emit_elementwise
from ..errors import CodegenError
from .llvmtypes import index, load_element, scalar_constant
from ..registry import lowering_of


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


class NeedsMaterialize(Exception):
    """Fusion must give `value` its own buffer (e.g. a merging reshape reads it)."""

    def __init__(self, value: Value):
        super().__init__("value needs a buffer")
        self.value = value


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
        raise NeedsMaterialize(operand)


def constant_source(op: Op, access: Access, rank: int) -> Node:
    """A constant read inside a loop: only splats get here (others have buffers)."""
    value = splat_value(op.attrs["value"])
    if value is None:
        raise CodegenError("constant: a non-uniform constant was not given a buffer")
    return Const(op.result.dtype, value)


def iota_source(op: Op, access: Access, rank: int) -> Node:
    """iota at this point is the index along its `dimension`."""
    return Iota(op.result.dtype, access[op.attrs["dimension"]])


# --------------------------------------------------------------------------------------
# emitting trees


class Emitter:
    """Emits trees at one loop point: `counters` are the collapsed loop counters."""

    def __init__(self, builder: lir.IRBuilder, pointers: dict[Value, lir.Value],
                 plan: LoopPlan, counters: list[lir.Value]):
        self.builder = builder
        self.pointers = pointers
        self.plan = plan
        self.counters = counters
        self._memo: dict[int, lir.Value] = {}

    def offset(self, affine: Affine) -> lir.Value:
        """i64 value of an affine expression at this point."""
        coeffs, const = self.plan.project(affine)
        b = self.builder
        total = None
        for coeff, counter in zip(coeffs, self.counters):
            if coeff == 0:
                continue
            term = counter if coeff == 1 else b.mul(counter, index(coeff), flags=["nsw"])
            total = term if total is None else b.add(total, term, flags=["nsw"])
        if total is None:
            return index(const)
        return total if const == 0 else b.add(total, index(const), flags=["nsw"])

    def emit(self, node: Node) -> lir.Value:
        """The LLVM value of `node`, emitting its arguments first (first to last,
        depth first) with an explicit stack: deep trees overflow Python's recursion."""
        todo = [node]
        while todo:
            current = todo[-1]
            if id(current) in self._memo:
                todo.pop()
                continue
            if isinstance(current, Apply):
                missing = [arg for arg in current.args if id(arg) not in self._memo]
                if missing:
                    todo.extend(reversed(missing))
                    continue
            todo.pop()
            self._memo[id(current)] = self._emit(current)
        return self._memo[id(node)]

    def _emit(self, node: Node) -> lir.Value:
        if isinstance(node, Load):
            pointer = self.pointers[node.value]
            return load_element(self.builder, pointer, self.offset(node.offset), node.dtype)
        if isinstance(node, Const):
            return scalar_constant(node.value, node.dtype)
        if isinstance(node, Iota):
            position = self.offset(node.index)
            return emit_convert(self.builder, position, DType.i64, node.dtype)
        if isinstance(node, Apply):
            args = [self.emit(a) for a in node.args]
            scalar = Scalar(node.attrs, tuple(a.dtype for a in node.args), node.dtype)
            return emit_elementwise(self.builder, node.prim, args, scalar)
        raise CodegenError(f"unknown expression node {type(node).__name__}")


__all__ = ["Apply", "Const", "Emitter", "ExprBuilder", "Iota", "Load", "NeedsMaterialize",
           "Node", "constant_source", "iota_source", "splat_value"]
