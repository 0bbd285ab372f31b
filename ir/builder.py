"""Building graphs op by op.

    b = Builder("f")
    x = b.input(TensorType((3,), DType.f32))
    y = b.exp(x)                       # any primitive name is a method
    z = b.emit("reduce_sum", y, axes=(0,))
    b.output(z)
    graph = b.build()

Every op is type-checked against its rule as it is added, so a builder can only
produce well-typed graphs. The current source location (`b.loc`, or the `at()`
context) is stamped on each new op.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

import numpy as np

from .graph import Graph, Op, SourceLoc, Value, bind_results
from .ops import PRIMITIVES, get_primitive, normalize_attrs
from .types import DType, TensorType


class Builder:
    def __init__(self, name: str = "main"):
        self.graph = Graph(name=name)
        self.loc: SourceLoc | None = None

    # -- structure ---------------------------------------------------------------------

    def input(self, type: TensorType) -> Value:
        value = Value(type)
        self.graph.inputs.append(value)
        return value

    def output(self, *values: Value) -> None:
        self.graph.outputs.extend(values)

    def build(self) -> Graph:
        return self.graph

    @contextlib.contextmanager
    def at(self, loc: SourceLoc | None) -> Iterator[None]:
        """Stamp ops added inside the block with `loc`."""
        saved = self.loc
        self.loc = loc
        try:
            yield
        finally:
            self.loc = saved

    # -- ops ---------------------------------------------------------------------------

    def emit(self, prim: str, *operands: Value, loc: SourceLoc | None = None,
             **attrs: Any) -> Value:
        """Append one op; raises TypeRuleError if its operands or attributes don't fit.

        Returns the result Value, or the tuple of result Values for an op whose rule
        gives several types (control flow)."""
        definition = get_primitive(prim)
        attrs = normalize_attrs(definition, attrs)
        result_type = definition.result_type([v.type for v in operands], attrs)
        op = Op(prim, operands, attrs, result_type, loc if loc is not None else self.loc)
        self.graph.ops.append(op)
        return op.results if isinstance(result_type, tuple) else op.result

    def copy(self, op: Op, operands: Sequence[Value]) -> Value:
        """Append a copy of `op` on `operands`, keeping its attributes and location.

        Passes copy almost every op of a graph, often several times per compile: when
        each operand has the type of the one it replaces and `op` holds no region,
        its attributes (checked and normalised when it was made) and result type
        (its rule is a function of operand types and attributes) are reused instead
        of being worked out again. Anything else goes through `emit`."""
        if len(operands) == len(op.operands) and all(
                new.type == old.type for new, old in zip(operands, op.operands)) and not any(
                isinstance(attr, Graph) for attr in op.attrs.values()):
            copied = Op(op.prim, operands, op.attrs, op.result.type,
                        op.loc if op.loc is not None else self.loc)
            self.graph.ops.append(copied)
            return copied.result
        return self.emit(op.prim, *operands, loc=op.loc, **op.attrs)

    def __getattr__(self, name: str):
        if name in PRIMITIVES:
            def apply(*operands: Value, **attrs: Any) -> Value:
                return self.emit(name, *operands, **attrs)
            apply.__name__ = name
            return apply
        raise AttributeError(name)

    def inline(self, graph: Graph, operands: Sequence[Value]) -> list[Value]:
        """Copy `graph`'s ops into this builder with its inputs bound to `operands`.

        Returns the values of `graph`'s outputs. Source locations are kept, and so
        are `graph`'s custom-VJP regions (over the copied values).
        """
        if len(operands) != len(graph.inputs):
            raise ValueError(f"inline @{graph.name}: {len(graph.inputs)} inputs, "
                             f"got {len(operands)} operands")
        mapping: dict[Value, Value] = {}
        for formal, actual in zip(graph.inputs, operands):
            if formal.type != actual.type:
                raise ValueError(f"inline @{graph.name}: input type {formal.type} "
                                 f"!= operand type {actual.type}")
            mapping[formal] = actual
        for op in graph.ops:
            new_operands = [mapping[v] for v in op.operands]
            bind_results(mapping, op, self.copy(op, new_operands))
        self.graph.custom_vjps.extend(region.remap(mapping) for region in graph.custom_vjps)
        return [mapping[v] for v in graph.outputs]

    # -- small conveniences used by the front end and by passes ------------------------

    def scalar(self, value, dtype: DType) -> Value:
        """A 0-d constant of `dtype`."""
        return self.emit("constant", value=np.asarray(value, dtype=dtype.numpy))

    def full(self, shape: Sequence[int], value, dtype: DType) -> Value:
        """A constant array filled with `value` (a 0-d constant broadcast)."""
        scalar = self.scalar(value, dtype)
        if len(shape) == 0:
            return scalar
        return self.emit("broadcast_in_dim", scalar, shape=tuple(shape), dims=())

    def zeros(self, type: TensorType) -> Value:
        return self.full(type.shape, 0, type.dtype)

    def ones(self, type: TensorType) -> Value:
        return self.full(type.shape, 1, type.dtype)
