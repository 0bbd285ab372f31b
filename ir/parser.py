"""Reading the text form written by `ir.printer` back into a Graph.

    graph @loss {
      input %0 : f32[32,64]
      %1 = exp %0 : f32[32,64]  # model.py:14
      output %1 : f32[32,64]
    }

The format is line oriented: one header, then `input` lines, op lines, `output`
lines and a closing `}`. Each line is split into tokens by a small hand-written
lexer (`ir.lexer`) and read by recursive descent. Value names (`%N`) only
need to be distinct and defined before use. Ops are added through `ir.Builder`, so
each one is type checked, and the annotated result type must equal the inferred
one. An op line's comment of the form `file:line` becomes its source location.
Every failure is an `ir.ParseError` with a 1-based line and column.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .builder import Builder
from .errors import ParseError, TypeRuleError
from .graph import Graph, SourceLoc, Value
from .ops import PRIMITIVES, Primitive
from .lexer import MAX_INT_DIGITS, Cursor, Token, tokenize_line
from .types import DType, TensorType

_BUILDER_ERRORS = (TypeRuleError, ValueError, TypeError, IndexError, KeyError,
                   OverflowError, ZeroDivisionError)


def parse(text: str) -> Graph:
    """Read one graph from the text `ir.print_graph` writes; raises ParseError."""
    if not isinstance(text, str):
        raise ParseError(f"expected IR text as a str, got {type(text).__name__}", 1, 1)
    readers = [_GraphReader()]         # the graph being read, then nested regions
    lines = text.split("\n")
    for number, raw in enumerate(lines, start=1):
        tokens, comment = tokenize_line(raw.rstrip("\r"), number)
        cursor = Cursor(tokens, number)
        if readers[-1].pending is not None and not cursor.at_end():
            readers.append(_GraphReader(readers[-1].pending.next_region()))
        readers[-1].read_line(cursor, comment)
        if readers[-1].state == "done" and len(readers) > 1:
            region = readers.pop()
            readers[-1].attach_region(region.builder.build(), cursor)
    if len(readers) > 1:
        raise ParseError("missing `}` at the end of a region", len(lines), len(lines[-1]) + 1)
    return readers[0].finish(len(lines), len(lines[-1]) + 1)


def parse_loc(comment: str | None) -> SourceLoc | None:
    """`file:line` in a comment becomes a SourceLoc; any other comment means None."""
    if comment is None:
        return None
    body = comment.strip()
    file, colon, line = body.rpartition(":")
    if not colon or not line.isdigit() or not line.isascii() or len(line) > MAX_INT_DIGITS:
        return None
    return SourceLoc(file.strip(), int(line))


class _PendingOp:
    """A control-flow op whose line is read, waiting for its regions (the nested
    graphs printed below it, one per graph attribute, in attribute-name order)."""

    def __init__(self, prim: Primitive, prim_token: Token, results: list[Token],
                 operands: list[Value], attrs: dict[str, Any], result_types: list[TensorType],
                 loc: SourceLoc | None):
        self.prim, self.prim_token, self.results = prim, prim_token, results
        self.operands, self.attrs, self.result_types, self.loc = operands, attrs, result_types, loc
        self.missing = sorted(name for name, kind in prim.attrs.items() if kind == "graph")

    def next_region(self) -> str:
        return self.missing[0]


class _GraphReader:
    """State while reading a graph line by line: header, body, then done.

    region: for a nested graph, the attribute name its header must carry."""

    def __init__(self, region: str | None = None):
        self.region = region
        self.pending: _PendingOp | None = None
        self.builder: Builder | None = None
        self.state = "header"
        self.section = "inputs"   # then "ops", then "outputs"
        self.values: dict[str, tuple[Value, int]] = {}
        self.plain_inputs_seen = False
        self.residual_outputs_seen = False

    # -- lines -------------------------------------------------------------------------

    def read_line(self, cursor: Cursor, comment: str | None) -> None:
        if cursor.at_end():
            return
        if self.state == "header":
            self.read_header(cursor)
        elif self.state == "done":
            raise cursor.error(cursor.peek(), "unexpected text after the end of the graph")
        else:
            self.read_body_line(cursor, comment)

    def read_header(self, cursor: Cursor) -> None:
        cursor.expect("name", "graph", "`graph @name {`")
        name = cursor.expect("global", None, "a graph name `@name`")
        if self.region is not None and name.text[1:] != self.region:
            raise cursor.error(name, f"expected region `graph @{self.region} {{` here")
        cursor.expect("punct", "{", "`{` after the graph name")
        cursor.expect_end()
        self.builder = Builder(name.text[1:])
        self.state = "body"

    def read_body_line(self, cursor: Cursor, comment: str | None) -> None:
        first = cursor.peek()
        if first.is_punct("}"):
            cursor.next()
            cursor.expect_end()
            self.state = "done"
        elif first.kind == "name" and first.text == "input":
            self.read_input(cursor)
        elif first.kind == "name" and first.text == "output":
            self.read_output(cursor)
        elif first.kind == "value":
            self.read_op(cursor, parse_loc(comment))
        else:
            raise cursor.error(first, "expected `input`, `output`, an op `%N = prim ...` "
                                      f"or `}}`, found {first.describe()}")

    def finish(self, last_line: int, last_column: int) -> Graph:
        if self.state == "header":
            raise ParseError("expected `graph @name {`, found the end of the text",
                             last_line, last_column)
        if self.state == "body":
            raise ParseError("missing `}` at the end of the graph", last_line, last_column)
        return self.builder.build()

    # -- inputs and outputs ------------------------------------------------------------

    def read_input(self, cursor: Cursor) -> None:
        keyword = cursor.next()
        if self.section != "inputs":
            raise cursor.error(keyword, "inputs must come before ops and outputs")
        name = cursor.expect("value", None, "a value name `%N`")
        self.check_new(cursor, name)
        cursor.expect("punct", ":", "`:` before the input's type")
        value_type = read_type(cursor)
        residual = self.read_residual_mark(cursor)
        graph = self.builder.graph
        if residual and self.plain_inputs_seen:
            raise cursor.error(residual, "residual inputs must be the first inputs")
        if residual:
            graph.residual_inputs += 1
        else:
            self.plain_inputs_seen = True
        self.values[name.text] = (self.builder.input(value_type), cursor.line)

    def read_output(self, cursor: Cursor) -> None:
        keyword = cursor.next()
        self.section = "outputs"
        name = cursor.expect("value", None, "a value name `%N`")
        value = self.lookup(cursor, name)
        cursor.expect("punct", ":", "`:` before the output's type")
        type_token = cursor.peek()
        value_type = read_type(cursor)
        if value_type != value.type:
            raise cursor.error(type_token, f"output {name.text} is annotated {value_type} "
                                           f"but has type {value.type}")
        residual = self.read_residual_mark(cursor)
        if residual:
            self.residual_outputs_seen = True
            self.builder.graph.residual_outputs += 1
        elif self.residual_outputs_seen:
            raise cursor.error(keyword, "residual outputs must be the last outputs")
        self.builder.output(value)

    def read_residual_mark(self, cursor: Cursor) -> Token | None:
        token = cursor.peek()
        if token.kind == "name" and token.text == "residual":
            cursor.next()
            cursor.expect_end()
            return token
        cursor.expect_end("`residual` or the end of the line")
        return None

    # -- ops ---------------------------------------------------------------------------

    def read_op(self, cursor: Cursor, loc: SourceLoc | None) -> None:
        if self.section == "outputs":
            raise cursor.error(cursor.peek(), "ops must come before the outputs")
        self.section = "ops"
        results = self.read_result_names(cursor)
        prim_token = cursor.expect("name", None, "a primitive name")
        prim = PRIMITIVES.get(prim_token.text)
        if prim is None:
            raise cursor.error(prim_token, f"unknown primitive {prim_token.text!r}")
        operands = self.read_operands(cursor)
        raw_attrs = read_attrs(cursor)
        cursor.expect("punct", ":", "`:` before the result type")
        type_token = cursor.peek()
        result_types = [read_type(cursor)]
        while cursor.peek().is_punct(","):
            cursor.next()
            result_types.append(read_type(cursor))
        cursor.expect_end()
        if len(result_types) != len(results):
            raise cursor.error(type_token, f"{len(results)} result name(s) but "
                                           f"{len(result_types)} result type(s)")
        attrs = convert_attrs(cursor, prim, prim_token, raw_attrs, result_types[0])
        pending = _PendingOp(prim, prim_token, results, operands, attrs, result_types, loc)
        if pending.missing:
            self.pending = pending
        else:
            self.emit_pending(cursor, pending, type_token)

    def read_result_names(self, cursor: Cursor) -> list[Token]:
        """`%3 =` or, for a control-flow op, `%3, %4 =`."""
        results = [cursor.next()]
        self.check_new(cursor, results[0])
        while cursor.peek().is_punct(","):
            cursor.next()
            results.append(cursor.expect("value", None, "a result name `%N` after `,`"))
            self.check_new(cursor, results[-1])
        cursor.expect("punct", "=", "`=` after the result name")
        return results

    def attach_region(self, region: Graph, cursor: Cursor) -> None:
        """A region of the pending op is read; emit the op once all of them are."""
        pending = self.pending
        pending.attrs[pending.missing.pop(0)] = region
        if not pending.missing:
            self.pending = None
            self.emit_pending(cursor, pending, pending.prim_token)

    def emit_pending(self, cursor: Cursor, pending: _PendingOp, type_token: Token) -> None:
        try:
            emitted = self.builder.emit(pending.prim.name, *pending.operands, loc=pending.loc,
                                        **pending.attrs)
        except _BUILDER_ERRORS as err:
            raise cursor.error(pending.prim_token, str(err)) from None
        values = emitted if isinstance(emitted, tuple) else (emitted,)
        given = tuple(v.type for v in values)
        if given != tuple(pending.result_types) or len(values) != len(pending.results):
            shown = ", ".join(str(t) for t in pending.result_types)
            raise cursor.error(type_token, f"annotated type {shown} differs from "
                                           f"{', '.join(str(t) for t in given)}, the type "
                                           f"{pending.prim.name} gives")
        for name, value in zip(pending.results, values):
            self.values[name.text] = (value, cursor.line)

    def read_operands(self, cursor: Cursor) -> list[Value]:
        operands: list[Value] = []
        if cursor.peek().kind != "value":
            return operands
        operands.append(self.lookup(cursor, cursor.next()))
        while cursor.peek().is_punct(","):
            cursor.next()
            name = cursor.expect("value", None, "an operand `%N` after `,`")
            operands.append(self.lookup(cursor, name))
        return operands

    # -- value names -------------------------------------------------------------------

    def check_new(self, cursor: Cursor, name: Token) -> None:
        if name.text in self.values:
            line = self.values[name.text][1]
            raise cursor.error(name, f"value {name.text} is already defined on line {line}")

    def lookup(self, cursor: Cursor, name: Token) -> Value:
        found = self.values.get(name.text)
        if found is None:
            raise cursor.error(name, f"value {name.text} is used before it is defined")
        return found[0]


# --------------------------------------------------------------------------------------
# types and attributes


def read_type(cursor: Cursor) -> TensorType:
    """`f32[32,10]` or `f32[]`."""
    token = cursor.expect("name", None, "a type like `f32[3,4]`")
    try:
        dtype = DType.from_name(token.text)
    except ValueError:
        raise cursor.error(token, f"unknown dtype {token.text!r}; expected one of "
                                  "f32, f64, i32, i64, bool") from None
    cursor.expect("punct", "[", "`[` after the dtype")
    dims: list[int] = []
    while not cursor.peek().is_punct("]"):
        if dims:
            cursor.expect("punct", ",", "`,` or `]` in the shape")
        dim = cursor.expect("int", None, "a dimension (an integer >= 0)")
        if int(dim.text) < 0:
            raise cursor.error(dim, f"dimension {dim.text} must be >= 0")
        dims.append(int(dim.text))
    cursor.next()
    return TensorType(tuple(dims), dtype)


def read_attrs(cursor: Cursor) -> list[tuple[Token, RawAttr]]:
    """`{name=value, ...}` (optional) as (name token, raw value) pairs."""
    attrs: list[tuple[Token, RawAttr]] = []
    if not cursor.peek().is_punct("{"):
        return attrs
    cursor.next()
    while not cursor.peek().is_punct("}"):
        if attrs:
            cursor.expect("punct", ",", "`,` or `}` between attributes")
        name = cursor.expect("name", None, "an attribute name")
        cursor.expect("punct", "=", "`=` after the attribute name")
        attrs.append((name, read_raw_value(cursor)))
    cursor.next()
    return attrs


# No attribute kind nests lists; the limit turns absurd nesting into a ParseError
# instead of a RecursionError.
MAX_LIST_NESTING = 32


def read_raw_value(cursor: Cursor, depth: int = 0) -> RawAttr:
    """A number, true/false, inf/nan, a dtype name, or a `[...]` list of these."""
    token = cursor.next()
    if token.is_punct("[") and depth >= MAX_LIST_NESTING:
        raise cursor.error(token, f"attribute lists nest deeper than {MAX_LIST_NESTING} levels")
    if token.is_punct("["):
        items: list[RawAttr] = []
        while not cursor.peek().is_punct("]"):
            if cursor.peek().kind == "end":
                raise cursor.error(cursor.peek(), "unterminated list: expected `]`")
            if items:
                cursor.expect("punct", ",", "`,` or `]` in the list")
            items.append(read_raw_value(cursor, depth + 1))
        cursor.next()
        return RawAttr(token, items)
    if token.kind in ("int", "float", "name"):
        return RawAttr(token, None)
    raise cursor.error(token, f"expected an attribute value, found {token.describe()}")


def convert_attrs(cursor: Cursor, prim: Primitive, prim_token: Token,
                  raw_attrs: list[tuple[Token, RawAttr]],
                  result_type: TensorType) -> dict[str, Any]:
    """Raw attribute values converted by `prim`'s schema; all required ones present."""
    attrs: dict[str, Any] = {}
    for name, raw in raw_attrs:
        kind = prim.attrs.get(name.text)
        if kind is None:
            expected = ", ".join(sorted(prim.attrs)) or "none"
            raise cursor.error(name, f"{prim.name} has no attribute {name.text!r} "
                                     f"(its attributes: {expected})")
        if name.text in attrs:
            raise cursor.error(name, f"attribute {name.text!r} given twice")
        attrs[name.text] = convert_attr(cursor, prim.name, name.text, kind, raw, result_type)
    missing = [name for name, kind in prim.attrs.items()
               if name not in attrs and kind != "graph"]
    if missing:
        raise cursor.error(prim_token, f"{prim.name} needs attribute(s) {', '.join(missing)}")
    return attrs


# --------------------------------------------------------------------------------------
# attribute values by kind


class RawAttr:
    """An attribute value as written: one token, or a `[...]` list (`items`)."""

    __slots__ = ("token", "items")

    def __init__(self, token: Token, items: "list[RawAttr] | None"):
        self.token = token
        self.items = items

    def describe(self) -> str:
        return "a list" if self.items is not None else self.token.describe()


def convert_attr(cursor: Cursor, prim: str, name: str, kind: str, raw: RawAttr,
                 result_type: TensorType) -> Any:
    """One raw attribute value as the Python value of its schema `kind`."""
    where = f"attribute {name} of {prim}"
    if kind == "ints":
        if raw.items is None:
            raise cursor.error(raw.token, f"{where} expects a list of ints, found {raw.describe()}")
        return tuple(scalar_value(cursor, item, "int", where) for item in raw.items)
    if kind == "array":
        return array_value(cursor, raw, result_type, where)
    if kind == "graph":
        raise cursor.error(raw.token, f"{where} is a region: it is written as a nested "
                                      "`graph @name {` block below the op, not in braces")
    if raw.items is not None:
        raise cursor.error(raw.token, f"{where} expects {_KIND_WORDS[kind]}, found a list")
    return scalar_value(cursor, raw, kind, where)


_KIND_WORDS = {"int": "an int", "float": "a float", "bool": "true or false",
               "dtype": "a dtype (f32, f64, i32, i64, bool)"}


def scalar_value(cursor: Cursor, raw: RawAttr, kind: str, where: str) -> Any:
    """A single int / float / bool / dtype token as its Python value."""
    token = raw.token
    if raw.items is None:
        if kind == "int" and token.kind == "int":
            return int(token.text)
        if kind == "float" and token.kind in ("int", "float"):
            return float_of(token)
        if kind == "float" and token.kind == "name" and token.text in ("inf", "nan"):
            return float_of(token)
        if kind == "bool" and token.kind == "name" and token.text in ("true", "false"):
            return token.text == "true"
        if kind == "dtype" and token.kind == "name":
            try:
                return DType.from_name(token.text)
            except ValueError:
                pass
    raise cursor.error(token, f"{where} expects {_KIND_WORDS[kind]}, found {raw.describe()}")


def float_of(token: Token) -> float:
    """A float token's value; `-nan` keeps its sign bit."""
    text = token.text
    if text.lstrip("+-") == "nan":
        return -_NAN if text.startswith("-") else _NAN
    return float(text)


_NAN = float("nan")


def array_value(cursor: Cursor, raw: RawAttr, result_type: TensorType, where: str):
    """A constant's `value`: a scalar or flat list of the annotated type's elements."""
    items = raw.items if raw.items is not None else [raw]
    if len(items) != result_type.size:
        raise cursor.error(raw.token, f"{where} has {len(items)} element(s) but its type "
                                      f"{result_type} holds {result_type.size}")
    dtype = result_type.dtype
    elements = [element_value(cursor, item, dtype, where) for item in items]
    return np.array(elements, dtype=dtype.numpy).reshape(result_type.shape)


def element_value(cursor: Cursor, raw: RawAttr, dtype: DType, where: str) -> Any:
    """One constant element checked against `dtype` (kind and range)."""
    token = raw.token
    if dtype.is_bool:
        return scalar_value(cursor, raw, "bool", f"{where} (bool)")
    if dtype.is_int:
        value = scalar_value(cursor, raw, "int", f"{where} ({dtype})")
        info = np.iinfo(dtype.numpy)
        if not info.min <= value <= info.max:
            raise cursor.error(token, f"{where}: {value} is out of range for {dtype}")
        return value
    value = scalar_value(cursor, raw, "float", f"{where} ({dtype})")
    if "inf" not in token.text and abs(value) >= _OVERFLOW[dtype]:
        raise cursor.error(token, f"{where}: {token.text} is out of range for {dtype}")
    return value


# Written numbers at least this large round to inf in the dtype (f32: max + half an ulp).
_OVERFLOW = {DType.f32: 3.4028235677973366e38, DType.f64: float("inf")}
