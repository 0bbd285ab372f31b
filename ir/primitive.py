"""Primitive definitions: the `Primitive` record, the `PRIMITIVES` registry filled by
`define`, and checking/normalising an op's arity and attributes against it.

ir/ops.py holds the table itself (every primitive's `define` and shape rule); this
module is the machinery it uses, so the table reads as a list of definitions.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .errors import TypeRuleError
from .registry import Registry
from .types import DType, TensorType

# A rule returns one TensorType, or a tuple of them for an op with several results
# (the control-flow ops of ir/control_flow.py).
ShapeRule = Callable[[str, list[TensorType], dict[str, Any]],
                     "TensorType | tuple[TensorType, ...]"]


@dataclass(frozen=True)
class Primitive:
    """Definition of one primitive.

    arity: number of operands, or None for variadic (at least one operand).
    attrs: attribute name -> kind; every listed attribute is required.
    rule: computes the result type from operand types and attributes, raising
      TypeRuleError with a message naming the types when they do not fit.
    elementwise: result element i depends only on operand elements i (fusable).
    free_view: one operand; every result element is one operand element, picked by
      position alone and at most converted in dtype, and every operand element is
      used, with no fill values (reshape, transpose, broadcast, reverse, dtype
      conversion, identity). Recomputing one costs no arithmetic, so the partition
      pass recomputes these in the backward from their operands instead of saving them.
    copy: data movement that is not a free view: every result element is an operand
      element picked by position alone, or a zero fill, but some operand elements may
      be dropped, filled around or joined from several operands (slice, pad,
      concatenate). The partition pass recomputes these only when they copy inputs
      and constants, so a residual is never a derived copy of an input.
    splat_transparent: one operand of the result's dtype, not elementwise; applied to
      an array whose elements all equal c it gives an array whose elements all equal c
      (it only moves elements, with no fill). Constant folding looks through these to
      find splats. (Elementwise ops of splats are folded to splats directly.)
    """

    name: str
    arity: int | None
    rule: ShapeRule
    attrs: dict[str, str] = field(default_factory=dict)
    elementwise: bool = False
    free_view: bool = False
    copy: bool = False
    splat_transparent: bool = False
    doc: str = ""

    def result_type(self, operand_types: list[TensorType], attrs: dict[str, Any]) -> TensorType:
        """Check arity and attributes, then apply the shape/dtype rule."""
        check_arity(self, len(operand_types))
        check_attrs(self, attrs)
        return self.rule(self.name, operand_types, attrs)


PRIMITIVES: Registry = Registry("primitive")


def define(name: str, arity: int | None, rule: ShapeRule, *, attrs: dict[str, str] | None = None,
           elementwise: bool = False, free_view: bool = False, copy: bool = False,
           splat_transparent: bool = False, doc: str = "") -> Primitive:
    """Add a primitive to PRIMITIVES; the flags are described on `Primitive`."""
    if free_view and copy:
        raise ValueError(f"primitive {name!r} cannot be both a free view and a copy")
    if (free_view or splat_transparent) and arity != 1:
        raise ValueError(f"primitive {name!r}: free views and splat-transparent ops "
                         "take one operand")
    prim = Primitive(name, arity, rule, dict(attrs or {}), elementwise, free_view, copy,
                     splat_transparent, doc)
    return PRIMITIVES.add(name, prim)


def get_primitive(name: str) -> Primitive:
    prim = PRIMITIVES.get(name)
    if prim is None:
        raise TypeRuleError(name, f"unknown primitive {name!r}")
    return prim


# --------------------------------------------------------------------------------------
# attribute checking and normalisation


def check_arity(prim: Primitive, count: int) -> None:
    if prim.arity is None:
        if count < 1:
            raise TypeRuleError(prim.name, "takes at least one operand, got 0")
    elif count != prim.arity:
        raise TypeRuleError(prim.name, f"takes {prim.arity} operand(s), got {count}")


def normalize_attr(kind: str, value: Any) -> Any:
    """Convert a user-supplied attribute to its canonical Python form.

    Raises ValueError/TypeError when the value cannot be of that kind.
    """
    if kind == "int":
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"expected an int, got {value!r}")
        return int(value)
    if kind == "float":
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
            raise TypeError(f"expected a float, got {value!r}")
        return float(value)
    if kind == "bool":
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"expected a bool, got {value!r}")
        return bool(value)
    if kind == "dtype":
        return value if isinstance(value, DType) else DType.from_numpy(value)
    if kind == "ints":
        if not isinstance(value, (tuple, list)):
            raise TypeError(f"expected a list of ints, got {value!r}")
        return tuple(normalize_attr("int", v) for v in value)
    if kind == "graph":
        from .graph import Graph
        if not isinstance(value, Graph):
            raise TypeError(f"expected an ir.Graph (a region), got {type(value).__name__}")
        return value
    if kind == "array":
        if not isinstance(value, np.ndarray):
            raise TypeError(f"expected a NumPy array, got {type(value).__name__}")
        DType.from_numpy(value.dtype)
        return value
    raise ValueError(f"unknown attribute kind {kind!r}")


def normalize_attrs(prim: Primitive, attrs: dict[str, Any]) -> dict[str, Any]:
    """Canonical attributes for `prim`; raises TypeRuleError naming the bad one."""
    out = {}
    for name, value in attrs.items():
        kind = prim.attrs.get(name)
        if kind is None:
            raise TypeRuleError(prim.name, f"unexpected attribute {name!r}")
        try:
            out[name] = normalize_attr(kind, value)
        except (TypeError, ValueError) as err:
            raise TypeRuleError(prim.name, f"attribute {name}: {err}") from None
    return out


def check_attrs(prim: Primitive, attrs: dict[str, Any]) -> None:
    """Every required attribute present, none unknown, each already canonical."""
    missing = [n for n in prim.attrs if n not in attrs]
    if missing:
        raise TypeRuleError(prim.name, f"missing attribute(s) {', '.join(missing)}")
    normalized = normalize_attrs(prim, attrs)
    for name, value in normalized.items():
        original = attrs[name]
        if prim.attrs[name] == "array":
            continue
        if type(original) is not type(value) or original != value:
            raise TypeRuleError(prim.name, f"attribute {name}={original!r} is not canonical")
