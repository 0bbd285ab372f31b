"""Parser fuzzing: any text given to `ir.parse` gives a ParseError or a valid graph.

Texts come from three sources:
- printed random graphs, then mutated: a token replaced, deleted, duplicated or
  swapped with its neighbour; a line deleted, duplicated or swapped; an attribute
  value replaced by a random one (huge, negative, float, name, nested list); a
  character inserted or deleted; the text truncated. Several mutations stack.
- token soups: random sequences of IR words and punctuation, with and without a
  valid `graph @g {` header, so the body grammar is exercised too.
- arbitrary unicode text.

The property (`parse_outcome`): `ir.parse` raises `ir.ParseError` whose line and
column point into the text, or returns a graph that `ir.verify` accepts and that
prints and parses back to itself. Anything else (RecursionError, IndexError,
OverflowError, MemoryError, a graph the verifier rejects) fails the test.
"""
from __future__ import annotations

import re

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ir
from graph_strategies import graphs

FUZZ_SETTINGS = settings(max_examples=150, deadline=None,
                         suppress_health_check=[HealthCheck.too_slow])

# One regex token of the text form: a value, a global, a word, a number or one char.
TOKEN = re.compile(r"%[\w.]+|@[^\s{}#]+|[A-Za-z_]\w*|[+-]?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\S")

VOCABULARY = (
    ["graph", "input", "output", "residual", "true", "false", "inf", "-inf", "nan", "-nan",
     "=", ",", ":", "{", "}", "[", "]", "#", "%0", "%1", "%2", "%x", "%", "@g", "@",
     "0", "1", "-1", "3", "1.5", "-2e-07", "1e999", "99999999999999999999", "f32[2]",
     "f32[]", "i32[3,0]", "bool[1]", "f64[2,3]", "i64[]"]
    + sorted(ir.PRIMITIVES)
    + sorted({name for prim in ir.PRIMITIVES.values() for name in prim.attrs})
    + [d.value for d in ir.DType]
)

ATTRIBUTE_VALUES = st.one_of(
    st.integers(-10, 10).map(str),
    st.integers(-2**70, 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["true", "false", "f32", "bool", "nan", "-nan", "inf", "[]", "[[]]",
                     "[[0]]", "[0, 0, 0, 0, 0, 0, 0]", "[-1]", "[1e400]", "x", "%0", "@g",
                     "[" * 3000 + "]" * 3000, "[" * 3000, "1" * 5000]),
    st.lists(st.integers(-3, 300), max_size=6).map(lambda xs: "[" + ", ".join(map(str, xs)) + "]"),
)


def parse_outcome(text: str) -> ir.Graph | None:
    """Parse `text`; None for a well-formed ParseError, else the checked graph."""
    try:
        graph = ir.parse(text)
    except ir.ParseError as err:
        lines = text.split("\n")
        assert 1 <= err.line <= len(lines), f"error line {err.line} outside the text: {err}"
        assert 1 <= err.column <= len(lines[err.line - 1]) + 1, (
            f"error column {err.column} outside line {err.line}: {err}")
        assert str(err).startswith(f"{err.line}:{err.column}: ")
        return None
    ir.verify(graph)
    assert ir.parse(str(graph)) == graph, f"re-parse differs for:\n{graph}"
    return graph


# --------------------------------------------------------------------------------------
# mutations: each takes the text's lines (a list it may edit), hypothesis' draw, returns


def _token_spans(line: str) -> list[tuple[int, int]]:
    return [match.span() for match in TOKEN.finditer(line)]


def _pick_token(draw, lines: list[str]) -> tuple[int, int, int] | None:
    """(line index, start, end) of a random token, or None for a text without any."""
    spans = [(i, s, e) for i, line in enumerate(lines) for s, e in _token_spans(line)]
    return draw(st.sampled_from(spans)) if spans else None


def replace_token(draw, lines: list[str]) -> None:
    found = _pick_token(draw, lines)
    if found:
        i, start, end = found
        lines[i] = lines[i][:start] + draw(st.sampled_from(VOCABULARY)) + lines[i][end:]


def delete_token(draw, lines: list[str]) -> None:
    found = _pick_token(draw, lines)
    if found:
        i, start, end = found
        lines[i] = lines[i][:start] + lines[i][end:]


def duplicate_token(draw, lines: list[str]) -> None:
    found = _pick_token(draw, lines)
    if found:
        i, start, end = found
        lines[i] = lines[i][:end] + " " + lines[i][start:end] + lines[i][end:]


def swap_tokens(draw, lines: list[str]) -> None:
    i = draw(st.integers(0, len(lines) - 1))
    spans = _token_spans(lines[i])
    if len(spans) >= 2:
        k = draw(st.integers(0, len(spans) - 2))
        (s1, e1), (s2, e2) = spans[k], spans[k + 1]
        line = lines[i]
        lines[i] = line[:s1] + line[s2:e2] + line[e1:s2] + line[s1:e1] + line[e2:]


def delete_line(draw, lines: list[str]) -> None:
    if len(lines) > 1:
        del lines[draw(st.integers(0, len(lines) - 1))]


def duplicate_line(draw, lines: list[str]) -> None:
    i = draw(st.integers(0, len(lines) - 1))
    lines.insert(draw(st.integers(0, len(lines))), lines[i])


def swap_lines(draw, lines: list[str]) -> None:
    i = draw(st.integers(0, len(lines) - 1))
    j = draw(st.integers(0, len(lines) - 1))
    lines[i], lines[j] = lines[j], lines[i]


ATTRIBUTE = re.compile(r"(\w+)=(\[[^\]]*\]|[^,}\s]+)")


def random_attribute_value(draw, lines: list[str]) -> None:
    spans = [(i, m.span(2)) for i, line in enumerate(lines) for m in ATTRIBUTE.finditer(line)]
    if spans:
        i, (start, end) = draw(st.sampled_from(spans))
        lines[i] = lines[i][:start] + draw(ATTRIBUTE_VALUES) + lines[i][end:]


def insert_char(draw, lines: list[str]) -> None:
    i = draw(st.integers(0, len(lines) - 1))
    at = draw(st.integers(0, len(lines[i])))
    char = draw(st.characters(codec="utf-8") | st.sampled_from(list("%@[]{}=,:#-.e\t\r")))
    lines[i] = lines[i][:at] + char + lines[i][at:]


def delete_char(draw, lines: list[str]) -> None:
    i = draw(st.integers(0, len(lines) - 1))
    if lines[i]:
        at = draw(st.integers(0, len(lines[i]) - 1))
        lines[i] = lines[i][:at] + lines[i][at + 1:]


def truncate(draw, lines: list[str]) -> None:
    text = "\n".join(lines)
    cut = draw(st.integers(0, len(text)))
    lines[:] = text[:cut].split("\n")


MUTATIONS = [replace_token, delete_token, duplicate_token, swap_tokens, delete_line,
             duplicate_line, swap_lines, random_attribute_value, insert_char, delete_char,
             truncate]


@st.composite
def mutated_texts(draw, max_mutations: int = 3) -> str:
    lines = str(draw(graphs(max_ops=5))).split("\n")
    for _ in range(draw(st.integers(1, max_mutations))):
        draw(st.sampled_from(MUTATIONS))(draw, lines)
    return "\n".join(lines)


@st.composite
def token_soups(draw) -> str:
    words = draw(st.lists(st.sampled_from(VOCABULARY), max_size=40))
    separators = draw(st.lists(st.sampled_from([" ", " ", "\n", ""]), min_size=len(words),
                               max_size=len(words)))
    body = "".join(w + s for w, s in zip(words, separators))
    if draw(st.booleans()):
        body = "graph @g {\n" + body + "\n}"
    return body


# --------------------------------------------------------------------------------------
# tests


@FUZZ_SETTINGS
@given(mutated_texts())
def test_mutated_graph_text_parses_or_raises_parse_error(text):
    parse_outcome(text)


@FUZZ_SETTINGS
@given(token_soups())
def test_token_soup_parses_or_raises_parse_error(text):
    parse_outcome(text)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_parses_or_raises_parse_error(text):
    parse_outcome(text)


@settings(max_examples=60, deadline=None)
@given(graphs(max_ops=5), st.data())
def test_one_token_edit_either_fails_cleanly_or_keeps_a_valid_graph(graph, data):
    """Stronger than the stacked mutations: exactly one token edit of a valid text;
    whatever parses must describe a graph whose text reads back to itself."""
    lines = str(graph).split("\n")
    data.draw(st.sampled_from([replace_token, delete_token, swap_tokens]))(data.draw, lines)
    parsed = parse_outcome("\n".join(lines))
    if parsed is not None:
        assert str(ir.parse(str(parsed))) == str(parsed)


def test_text_that_is_not_a_string_is_a_parse_error():
    for not_text in (None, b"graph @g {\n}", 3, ["graph @g {", "}"]):
        try:
            ir.parse(not_text)
        except ir.ParseError:
            continue
        raise AssertionError(f"ir.parse({not_text!r}) did not raise ParseError")


def test_unallocatable_types_parse_without_allocating():
    """Types are static: a huge shape is fine in text, and only a constant must hold
    its elements, so the parser never allocates from a written shape."""
    huge = 10**20
    graph = parse_outcome("graph @g {\n"
                          f"  %0 = iota {{dimension=0, dtype=f32, shape=[{huge}]}} : f32[{huge}]\n"
                          f"  output %0 : f32[{huge}]\n}}")
    assert graph is not None and graph.outputs[0].type.shape == (huge,)
    assert parse_outcome("graph @g {\n"
                         f"  %0 = constant {{value=1.0}} : f32[{huge}]\n}}") is None


def test_every_special_float_constant_reads_back_bit_exact():
    values = np.array([np.nan, -np.nan, np.inf, -np.inf, -0.0, 1e-45, 3.4028235e38],
                      dtype=np.float32)
    builder = ir.Builder("specials")
    builder.output(builder.emit("constant", value=values))
    graph = builder.build()
    parsed = parse_outcome(str(graph))
    assert parsed.ops[0].attrs["value"].tobytes() == values.tobytes()
