"""The SSA graph: values, ops and graphs.

A `Value` is defined exactly once, either as a graph input or as the result of one
`Op`. Values have no names of their own: the printer numbers them in definition
order, so the same graph always prints the same text. Graphs compare structurally
(`==`): same inputs, same ops with the same attributes and source locations, same
outputs, regardless of which Python objects hold them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from .printer import print_graph
from .types import DType, TensorType


@dataclass(frozen=True)
class SourceLoc:
    """Where in the user's code an op came from (file name and 1-based line)."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class Value:
    """An SSA value: a static type, and the op that defines it (None for inputs)."""

    __slots__ = ("type", "producer")

    def __init__(self, type: TensorType, producer: "Op | None" = None):
        self.type = type
        self.producer = producer

    @property
    def shape(self) -> tuple[int, ...]:
        return self.type.shape

    @property
    def dtype(self) -> DType:
        return self.type.dtype

    @property
    def ndim(self) -> int:
        return self.type.ndim

    def __repr__(self) -> str:
        kind = self.producer.prim if self.producer is not None else "input"
        return f"<Value {self.type} from {kind}>"


class Op:
    """One primitive application.

    `attrs` maps attribute names to plain values: int, float, bool, DType, tuples
    of ints, (for `constant`) a NumPy array, or (for control flow) a nested `Graph`
    (a region: a loop body or a branch). Every primitive but the control-flow ops
    has a single result; `results` holds all of them and `result` is the first.
    """

    __slots__ = ("prim", "operands", "attrs", "results", "loc")

    def __init__(self, prim: str, operands: Iterable[Value], attrs: dict[str, Any],
                 result_type: "TensorType | tuple[TensorType, ...]",
                 loc: SourceLoc | None = None):
        self.prim = prim
        self.operands = tuple(operands)
        self.attrs = dict(attrs)
        types = result_type if isinstance(result_type, tuple) else (result_type,)
        self.results = tuple(Value(t, self) for t in types)
        self.loc = loc

    @property
    def result(self) -> Value:
        """The first (for all but control-flow ops, the only) result."""
        return self.results[0]

    @property
    def result_types(self) -> tuple[TensorType, ...]:
        return tuple(v.type for v in self.results)

    def regions(self) -> list[tuple[str, "Graph"]]:
        """The nested graphs among the attributes, by attribute name (sorted)."""
        return [(name, self.attrs[name]) for name in sorted(self.attrs)
                if isinstance(self.attrs[name], Graph)]

    def __repr__(self) -> str:
        return f"<Op {self.prim} -> {self.result.type}>"


def as_results(emitted: "Value | tuple[Value, ...]") -> tuple[Value, ...]:
    """What `Builder.emit` returned, as a tuple of result values."""
    return emitted if isinstance(emitted, tuple) else (emitted,)


def bind_results(mapping: dict[Value, Value], op: Op,
                 emitted: "Value | tuple[Value, ...]") -> None:
    """Map each result of `op` to the matching value of a copy's `emitted` results."""
    for old, new in zip(op.results, as_results(emitted)):
        mapping[old] = new


def attr_key(value: Any) -> Any:
    """A hashable, comparable form of an attribute value (arrays become bytes)."""
    if isinstance(value, np.ndarray):
        return ("array", str(value.dtype), value.shape, value.tobytes())
    if isinstance(value, Graph):
        return ("graph", value.structure())
    if isinstance(value, float) and value != value:
        return ("nan",)
    if isinstance(value, (list, tuple)):
        return tuple(attr_key(v) for v in value)
    return value


def attrs_key(attrs: dict[str, Any]) -> tuple:
    """Hashable form of a whole attribute dict, independent of insertion order."""
    return tuple((name, attr_key(attrs[name])) for name in sorted(attrs))


@dataclass(frozen=True)
class CustomVJP:
    """A region of a graph whose reverse-mode derivative is given, not derived.

    The region's ops compute `outputs` and `residuals` from `inputs` and `closed`
    (values it closes over) alone. `backward` takes the residuals, then one
    cotangent per output, and returns one cotangent per input. Autodiff
    (ir/passes/autodiff.py) runs `backward` instead of differentiating the region's
    ops; a closed value must not need a cotangent. The annotation belongs to the
    traced graph: `Builder.inline` carries it along, other passes drop it.
    """

    name: str
    inputs: tuple[Value, ...]
    closed: tuple[Value, ...]
    outputs: tuple[Value, ...]
    residuals: tuple[Value, ...]
    backward: "Graph"
    loc: SourceLoc | None = None

    def remap(self, mapping: dict[Value, Value]) -> "CustomVJP":
        """The same region over the values `mapping` gives for this one's."""
        def moved(values):
            return tuple(mapping[v] for v in values)
        return CustomVJP(self.name, moved(self.inputs), moved(self.closed), moved(self.outputs),
                         moved(self.residuals), self.backward, self.loc)


@dataclass(eq=False)
class Graph:
    """Typed inputs, a list of ops in definition order, and outputs.

    A forward graph ends its outputs with `residual_outputs` residuals; a backward
    graph begins its inputs with `residual_inputs` residuals. Both are 0 otherwise.
    `custom_vjps` lists the regions with a user-given derivative (`pc.custom_vjp`);
    it is not part of the graph's structure or text.
    """

    name: str = "main"
    inputs: list[Value] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)
    outputs: list[Value] = field(default_factory=list)
    residual_inputs: int = 0
    residual_outputs: int = 0
    custom_vjps: list[CustomVJP] = field(default_factory=list)

    @property
    def input_types(self) -> list[TensorType]:
        return [v.type for v in self.inputs]

    @property
    def output_types(self) -> list[TensorType]:
        return [v.type for v in self.outputs]

    def value_numbers(self) -> dict[Value, int]:
        """Number every value in definition order: inputs first, then op results."""
        numbers: dict[Value, int] = {}
        for v in self.inputs:
            numbers.setdefault(v, len(numbers))
        for op in self.ops:
            for result in op.results:
                numbers.setdefault(result, len(numbers))
        return numbers

    def users(self) -> dict[Value, list[Op]]:
        """Map each value to the ops that read it (in op order)."""
        uses: dict[Value, list[Op]] = {}
        for op in self.ops:
            for v in op.operands:
                uses.setdefault(v, []).append(op)
        return uses

    def structure(self) -> tuple:
        """A canonical, hashable description used for `==` and hashing."""
        numbers = self.value_numbers()

        def num(v: Value) -> int:
            return numbers.get(v, -1)

        return (
            self.name,
            tuple(v.type for v in self.inputs),
            tuple(
                (op.prim, tuple(num(v) for v in op.operands), attrs_key(op.attrs),
                 op.result_types, op.loc)
                for op in self.ops
            ),
            tuple(num(v) for v in self.outputs),
            self.residual_inputs,
            self.residual_outputs,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Graph):
            return NotImplemented
        return self is other or self.structure() == other.structure()

    def __hash__(self) -> int:
        return hash(self.structure())

    def __str__(self) -> str:
        """The text form (ir/printer.py), which `ir.parse` reads back."""
        return print_graph(self)

    def __repr__(self) -> str:
        return (f"<Graph @{self.name}: {len(self.inputs)} inputs, {len(self.ops)} ops, "
                f"{len(self.outputs)} outputs>")
