"""Checking that a Graph is well formed, whoever built it.

A Builder can only make well-typed ops, but passes and tests also assemble graphs
by hand (`Op(...)`, `Value(...)`, editing `graph.ops`). `verify` re-checks all of
it: SSA form (every value defined once, before its uses), each op against its
primitive's arity, attribute schema and shape/dtype rule, the outputs and the
residual counts. Errors are `ir.VerifyError`s naming the op as it prints
(`op #3 (%7 = exp %6)`) and its source location.
"""
from __future__ import annotations

from typing import Any

from .errors import TypeRuleError, VerifyError
from .graph import Graph, Op, SourceLoc, Value
from .ops import PRIMITIVES
from .types import TensorType

# A malformed graph may make a shape rule trip over something it assumes; these
# become VerifyErrors too, so nothing bare reaches the caller.
_RULE_ERRORS = (TypeRuleError, ValueError, TypeError, IndexError, KeyError,
                AttributeError, OverflowError, ZeroDivisionError)


def verify(graph: Graph) -> Graph:
    """Return `graph` unchanged if it is well formed; raise VerifyError otherwise."""
    if not isinstance(graph, Graph):
        raise VerifyError(f"expected an ir.Graph, got {type(graph).__name__}")
    _check_containers(graph)
    names = _value_names(graph)
    defined: set[int] = set()
    _check_inputs(graph, defined)
    for index, op in enumerate(graph.ops):
        _check_op(index, op, defined, names)
    _check_outputs(graph, defined, names)
    _check_residuals(graph)
    return graph


def _check_containers(graph: Graph) -> None:
    """A printable name, and inputs/ops/outputs held in lists or tuples."""
    name = graph.name
    if not isinstance(name, str) or any(c.isspace() or c in "{}#" for c in name):
        raise VerifyError(f"graph name {name!r} must be a str without whitespace, "
                          "`{`, `}` or `#` (it is printed as `graph @name {`)")
    for field in ("inputs", "ops", "outputs"):
        if not isinstance(getattr(graph, field), (list, tuple)):
            raise VerifyError(f"graph.{field} must be a list, got "
                              f"{type(getattr(graph, field)).__name__}")


def _value_names(graph: Graph) -> dict[int, str]:
    """`%N` per value object id, numbered the way the printer numbers them."""
    names: dict[int, str] = {}
    results = [v for op in graph.ops if isinstance(op, Op) for v in _results(op)]
    for value in list(graph.inputs) + results:
        names.setdefault(id(value), f"%{len(names)}")
    return names


def _check_value(value: Any, what: str) -> None:
    if not isinstance(value, Value):
        raise VerifyError(f"{what} is not an ir.Value but {type(value).__name__}")
    if not isinstance(value.type, TensorType):
        raise VerifyError(f"{what} has no TensorType but {value.type!r}")


def _check_inputs(graph: Graph, defined: set[int]) -> None:
    for i, value in enumerate(graph.inputs):
        _check_value(value, f"input #{i}")
        if value.producer is not None:
            raise VerifyError(f"input #{i} ({value.type}) is the result of op "
                              f"{value.producer.prim!r}, not a graph input")
        if id(value) in defined:
            raise VerifyError(f"input #{i} ({value.type}) is listed twice among the inputs")
        defined.add(id(value))


# --------------------------------------------------------------------------------------
# ops


def describe_op(index: int, op: Op, names: dict[int, str]) -> str:
    """`op #3 (%7 = exp %6) at model.py:14`: how errors name an op."""
    result = names.get(id(getattr(op, "result", None)), "%?")
    operands = getattr(op, "operands", ())
    listed = ", ".join(names.get(id(v), "%?") for v in operands) if _iterable(operands) else "?"
    text = f"op #{index} ({result} = {getattr(op, 'prim', '?')}"
    text += f" {listed})" if listed else ")"
    loc = getattr(op, "loc", None)
    if isinstance(loc, SourceLoc):
        text += f" at {loc}"
    return text


def _iterable(operands: Any) -> bool:
    return isinstance(operands, (tuple, list))


def _check_op(index: int, op: Any, defined: set[int], names: dict[int, str]) -> None:
    if not isinstance(op, Op):
        raise VerifyError(f"op #{index} is not an ir.Op but {type(op).__name__}")
    where = describe_op(index, op, names)
    prim = PRIMITIVES.get(op.prim) if isinstance(op.prim, str) else None
    if prim is None:
        raise VerifyError(f"{where}: unknown primitive {op.prim!r}")
    if not isinstance(op.attrs, dict):
        raise VerifyError(f"{where}: attrs must be a dict, got {type(op.attrs).__name__}")
    if op.loc is not None and not isinstance(op.loc, SourceLoc):
        raise VerifyError(f"{where}: loc must be a SourceLoc or None, got {op.loc!r}")
    if not _iterable(op.operands):
        raise VerifyError(f"{where}: operands must be a tuple of values")
    for position, operand in enumerate(op.operands):
        _check_value(operand, f"{where}: operand {position}")
        if id(operand) not in defined:
            raise VerifyError(f"{where}: operand {position} ({operand.type}) is used before "
                              "it is defined (not an input or an earlier op's result)")
    _check_result(where, op, defined)
    _check_type(where, prim, op)
    for name, region in op.regions():
        _check_region(where, name, region)
    for result in op.results:
        defined.add(id(result))


def _results(op: Op) -> tuple:
    results = getattr(op, "results", ())
    return results if isinstance(results, tuple) else ()


def _check_result(where: str, op: Op, defined: set[int]) -> None:
    results = _results(op)
    if not results:
        raise VerifyError(f"{where}: an op needs a tuple of at least one result")
    for position, result in enumerate(results):
        _check_value(result, f"{where}: result {position}")
        if result.producer is not op:
            raise VerifyError(f"{where}: its result's producer is not this op "
                              f"but {result.producer!r}")
        if id(result) in defined:
            raise VerifyError(f"{where}: its result is already defined earlier in the graph")


def _check_region(where: str, name: str, region: Graph) -> None:
    """A nested graph is verified on its own (it reads only its own inputs) and is
    printed as `graph @<attribute name> {`, so its name must be the attribute's."""
    if region.name != name:
        raise VerifyError(f"{where}: region {name} is named @{region.name}; a region "
                          "must be named after its attribute")
    try:
        verify(region)
    except VerifyError as err:
        raise VerifyError(f"{where}: in region {name}: {err}") from None


def _check_type(where: str, prim, op: Op) -> None:
    """Arity, attributes (present, known, canonical) and the result type."""
    try:
        expected = prim.result_type([v.type for v in op.operands], op.attrs)
    except TypeRuleError as err:
        raise VerifyError(f"{where}: {err.detail}") from None
    except _RULE_ERRORS as err:
        raise VerifyError(f"{where}: malformed op ({type(err).__name__}: {err})") from None
    expected = expected if isinstance(expected, tuple) else (expected,)
    if expected != op.result_types:
        shown = ", ".join(str(t) for t in op.result_types)
        expected = ", ".join(str(t) for t in expected)
        raise VerifyError(f"{where}: result type is {shown} but {op.prim} of "
                          f"{', '.join(str(v.type) for v in op.operands) or 'no operands'} "
                          f"gives {expected}")


# --------------------------------------------------------------------------------------
# outputs and residual counts


def _check_outputs(graph: Graph, defined: set[int], names: dict[int, str]) -> None:
    for i, value in enumerate(graph.outputs):
        _check_value(value, f"output #{i}")
        if id(value) not in defined:
            raise VerifyError(f"output #{i} ({value.type}) is not defined in the graph "
                              "(neither an input nor an op result)")


def _check_residuals(graph: Graph) -> None:
    for what, count, total in (("residual_inputs", graph.residual_inputs, len(graph.inputs)),
                               ("residual_outputs", graph.residual_outputs, len(graph.outputs))):
        kind = what.split("_")[1]
        if isinstance(count, bool) or not isinstance(count, int):
            raise VerifyError(f"{what} must be an int, got {count!r}")
        if not 0 <= count <= total:
            raise VerifyError(f"{what}={count} is out of range: the graph has {total} {kind}")
