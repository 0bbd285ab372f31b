"""Text form of a graph, meant for people and read back by `ir.parser`.

    graph @loss {
      input %0 : f32[32,64]
      input %1 : f32[64,10]
      %2 = dot %0, %1 {lhs_batch=[], lhs_contract=[1], rhs_batch=[], rhs_contract=[0]} : f32[32,10]  # model.py:14
      %3 = tanh %2 : f32[32,10]  # model.py:14
      output %3 : f32[32,10]
      output %2 : f32[32,10] residual  # 1280 bytes, from model.py:14
    }

Values are numbered in definition order. Attributes are sorted by name. A trailing
`residual` marks the residual inputs of a backward graph (first inputs) and the
residual outputs of a forward graph (last outputs). Everything after `#` is a
comment: the parser reads the source location from an op's comment and ignores the
rest.

The printer reads a graph through its public face only (inputs, ops, outputs,
`value_numbers`, `Op.regions`), so it never imports ir/graph.py: graph.py imports it
for `Graph.__str__`, and the dependency points one way.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .types import DType

if TYPE_CHECKING:                       # annotations only: no import at run time
    from .graph import Graph, Op, Value


def format_scalar(x: Any) -> str:
    """One array element or float attribute as text that reads back exactly."""
    if isinstance(x, (bool, np.bool_)):
        return "true" if x else "false"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, np.float32):
        text = str(x)
    else:
        text = repr(float(x))
    if text == "nan" and np.signbit(x):
        return "-nan"  # 0/0 gives a negative NaN; keep its sign so text reads back exactly
    if text in ("inf", "-inf", "nan"):
        return text
    if "." not in text and "e" not in text:
        text += ".0"
    return text


def format_attr(value: Any) -> str:
    if isinstance(value, DType):
        return value.value
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return format_scalar(value[()])
        return "[" + ", ".join(format_scalar(x) for x in value.reshape(-1)) + "]"
    if isinstance(value, tuple):
        return "[" + ", ".join(format_attr(v) for v in value) + "]"
    return format_scalar(value)


def format_op(op: Op, names: dict[Value, str]) -> str:
    """The op's line; regions (nested graphs) are not on it but on the lines below."""
    text = ", ".join(names.get(v, "%?") for v in op.results) + f" = {op.prim}"
    if op.operands:
        text += " " + ", ".join(names.get(v, "%?") for v in op.operands)
    regions = dict(op.regions())
    plain = [k for k in sorted(op.attrs) if k not in regions]
    if plain:
        text += " {" + ", ".join(f"{k}={format_attr(op.attrs[k])}" for k in plain) + "}"
    text += " : " + ", ".join(str(v.type) for v in op.results)
    if op.loc is not None:
        text += f"  # {op.loc}"
    return text


def print_graph(graph: Graph) -> str:
    """The text form; a control-flow op's regions follow its line, each printed as
    its own graph (values numbered from %0 again) and indented one level more."""
    names = {v: f"%{i}" for v, i in graph.value_numbers().items()}
    lines = [f"graph @{graph.name} {{"]
    for i, v in enumerate(graph.inputs):
        mark = " residual" if i < graph.residual_inputs else ""
        lines.append(f"  input {names[v]} : {v.type}{mark}")
    for op in graph.ops:
        lines.append("  " + format_op(op, names))
        for _, region in op.regions():
            lines.extend("    " + line for line in print_graph(region).split("\n"))
    first_residual = len(graph.outputs) - graph.residual_outputs
    for i, v in enumerate(graph.outputs):
        line = f"  output {names.get(v, '%?')} : {v.type}"
        if i >= first_residual:
            line += f" residual  # {v.type.nbytes} bytes"
            if v.producer is None:
                line += ", a graph input (not copied)"
            elif v.producer.loc is not None:
                line += f", from {v.producer.loc}"
        lines.append(line)
    lines.append("}")
    return "\n".join(lines)
