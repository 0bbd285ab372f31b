"""Graphviz DOT text of a graph: one node per input and op, edges along operands."""
from __future__ import annotations

from .graph import Graph


def _quote(text: str) -> str:
    """A DOT string literal; newlines become DOT's centred line breaks."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + escaped + '"'


def to_dot(graph: Graph) -> str:
    """DOT text (`dot -Tsvg`) for `graph`; labels show op, type and source line."""
    numbers = graph.value_numbers()
    lines = [f"digraph {_quote(graph.name)} {{", "  rankdir=TB;",
             '  node [shape=box, fontname="monospace", fontsize=10];']
    for i, value in enumerate(graph.inputs):
        mark = " (residual)" if i < graph.residual_inputs else ""
        lines.append(f"  v{numbers[value]} [shape=ellipse, label="
                     f"{_quote(f'%{numbers[value]} input{mark}: {value.type}')}];")
    for op in graph.ops:
        n = numbers[op.result]
        label = f"%{n} = {op.prim} : {op.result.type}"
        if op.loc is not None:
            label += f"\n{op.loc}"
        lines.append(f"  v{n} [label={_quote(label)}];")
        for operand in op.operands:
            lines.append(f"  v{numbers[operand]} -> v{n};")
    first_residual = len(graph.outputs) - graph.residual_outputs
    for i, value in enumerate(graph.outputs):
        kind = "residual" if i >= first_residual else "output"
        lines.append(f"  out{i} [shape=ellipse, label={_quote(f'{kind} {i}: {value.type}')}];")
        lines.append(f"  v{numbers[value]} -> out{i};")
    lines.append("}")
    return "\n".join(lines)
