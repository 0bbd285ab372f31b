"""Control-flow primitives: ops that carry nested graphs (regions).

A region is a `Graph` held as an attribute of kind "graph"; it reads only its own
inputs (the op passes every value it needs as an operand), so each region is a
complete graph that prints, parses, verifies, simplifies and differentiates on its
own. A region is named after its attribute (`graph @body {`).

- `scan {body, length, reverse, num_consts, num_carry, checkpoint}`: operands are
  consts, initial carries, then xs (each with leading axis `length`). `body` maps
  (consts, carries, one slice of each x) to (new carries, one slice of each y).
  Results: the final carries, then each y stacked on a new leading axis of size
  `length`. With `reverse` the iterations run from `length - 1` down to 0 (slice i
  of the ys still belongs to slice i of the xs). `checkpoint` only changes the
  derivative: its forward saves the carries alone and the backward recomputes each
  body (ir/passes/vjp_control.py).
- `cond {true_branch, false_branch}`: operands are a bool 0-d predicate, then the
  branch operands; both branches take the branch operands and give the results.
- `while_loop {cond, body, num_consts}`: operands are consts, then the carries; `cond`
  maps (consts, carries) to a bool 0-d tensor, `body` to new carries. Results: the
  carries once `cond` is false.

The shape rules check each region's signature against the operands and name both
types on a mismatch. This module registers the interpreter rules too; the VJP and
forward rules live in ir/passes/vjp_control.py, the batching rules in
ir/passes/batch_control.py, the cost rules in ir/passes/cost_control.py.
"""
from __future__ import annotations

import numpy as np

from .errors import TypeRuleError
from .graph import Graph
from .interpret import interpret, register
from .ops import define
from .types import DType, TensorType

SCAN_ATTRS = {"body": "graph", "length": "int", "reverse": "bool", "num_consts": "int",
              "num_carry": "int", "checkpoint": "bool"}


def _shown(types) -> str:
    return "(" + ", ".join(str(t) for t in types) + ")"


def _check_signature(name: str, region: str, graph: Graph, inputs: list[TensorType],
                     outputs: list[TensorType] | None) -> None:
    """The region takes exactly `inputs` (and gives `outputs` when given)."""
    if graph.input_types != inputs:
        raise TypeRuleError(name, f"region {region} takes {_shown(graph.input_types)} but "
                                  f"the op passes {_shown(inputs)}")
    if outputs is not None and graph.output_types != outputs:
        raise TypeRuleError(name, f"region {region} gives {_shown(graph.output_types)} but "
                                  f"the op needs {_shown(outputs)}")


def scan_parts(attrs: dict, operands: list) -> tuple[list, list, list]:
    """(consts, initial carries, xs) of a scan's operands (values or types)."""
    consts, carry = attrs["num_consts"], attrs["num_carry"]
    return (list(operands[:consts]), list(operands[consts:consts + carry]),
            list(operands[consts + carry:]))


def scan_rule(name, types, attrs):
    length, body = attrs["length"], attrs["body"]
    if length < 0 or attrs["num_consts"] < 0 or attrs["num_carry"] < 0:
        raise TypeRuleError(name, "length, num_consts and num_carry must be >= 0")
    if attrs["num_consts"] + attrs["num_carry"] > len(types):
        raise TypeRuleError(name, f"{len(types)} operands cannot hold {attrs['num_consts']} "
                                  f"consts and {attrs['num_carry']} carries")
    consts, carry, xs = scan_parts(attrs, types)
    for x in xs:
        if x.ndim == 0 or x.shape[0] != length:
            raise TypeRuleError(name, f"every xs operand needs leading axis {length} (the "
                                      f"length), got {x}")
    slices = [x.with_shape(x.shape[1:]) for x in xs]
    _check_signature(name, "body", body, consts + carry + slices, None)
    outputs = body.output_types
    if outputs[:len(carry)] != carry:
        raise TypeRuleError(name, f"the body's carry output {_shown(outputs[:len(carry)])} "
                                  f"differs from its carry input {_shown(carry)}")
    ys = [y.with_shape((length,) + y.shape) for y in outputs[len(carry):]]
    return tuple(carry + ys)


def cond_rule(name, types, attrs):
    if not types or types[0] != TensorType((), DType.bool):
        raise TypeRuleError(name, f"the predicate must be a bool[] (0-d) tensor, got "
                                  f"{types[0] if types else 'nothing'}")
    true_branch, false_branch = attrs["true_branch"], attrs["false_branch"]
    _check_signature(name, "true_branch", true_branch, list(types[1:]), None)
    _check_signature(name, "false_branch", false_branch, list(types[1:]),
                     true_branch.output_types)
    if not true_branch.outputs:
        raise TypeRuleError(name, "the branches give no results")
    return tuple(true_branch.output_types)


def while_rule(name, types, attrs):
    consts = attrs["num_consts"]
    if not 0 <= consts <= len(types):
        raise TypeRuleError(name, f"num_consts={consts} does not fit {len(types)} operands")
    carries = list(types[consts:])
    _check_signature(name, "cond", attrs["cond"], list(types), [TensorType((), DType.bool)])
    _check_signature(name, "body", attrs["body"], list(types), carries)
    return tuple(carries)


define("scan", None, scan_rule, attrs=SCAN_ATTRS,
       doc="a loop over the leading axis of xs with carries; the body runs `length` times")
define("cond", None, cond_rule, attrs={"true_branch": "graph", "false_branch": "graph"},
       doc="runs true_branch or false_branch on the operands, as the 0-d predicate says")
define("while_loop", None, while_rule,
       attrs={"cond": "graph", "body": "graph", "num_consts": "int"},
       doc="applies body to the carries while cond of them is true")


# --------------------------------------------------------------------------------------
# interpreter


@register("scan")
def _scan(attrs, *operands):
    consts, carry, xs = scan_parts(attrs, list(operands))
    body, length = attrs["body"], attrs["length"]
    y_types = body.output_types[len(carry):]
    ys = [np.zeros((length,) + t.shape, t.dtype.numpy) for t in y_types]
    steps = range(length - 1, -1, -1) if attrs["reverse"] else range(length)
    for i in steps:
        outputs = interpret(body, *consts, *carry, *[x[i] for x in xs])
        carry = outputs[:len(carry)]
        for stacked, y in zip(ys, outputs[len(carry):]):
            stacked[i] = y
    return list(carry) + ys


@register("cond")
def _cond(attrs, pred, *operands):
    branch = attrs["true_branch"] if bool(pred) else attrs["false_branch"]
    return interpret(branch, *operands)


@register("while_loop")
def _while_loop(attrs, *operands):
    consts, carries = list(operands[:attrs["num_consts"]]), list(operands[attrs["num_consts"]:])
    while bool(interpret(attrs["cond"], *consts, *carries)[0]):
        carries = interpret(attrs["body"], *consts, *carries)
    return carries
