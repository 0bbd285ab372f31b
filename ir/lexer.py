"""Tokens of the IR text form, one line at a time, for `ir.parser`.

Token kinds:
  name    an identifier: keywords, primitive and attribute names, dtypes, true/false
  value   `%` followed by letters, digits, `_` or `.` (`%7`, `%x`)
  global  `@` followed by anything up to whitespace, `{`, `}` or `#` (`@loss`)
  int     `12`, `-3`
  float   `1.5`, `-2e-07`, `-inf`, `-nan` (plain `inf`/`nan` lex as names)
  punct   one of `= , : { } [ ]`
  end     the end of the line (or the start of its `#` comment)
Columns are 1-based, like the line numbers in ParseError.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import ParseError

PUNCTUATION = "=,:{}[]"
# No IR integer needs more digits (i64 has 19); the cap also keeps int() from
# refusing huge literals with a bare ValueError.
MAX_INT_DIGITS = 40
_GLOBAL_STOP = "{}#"


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    column: int

    def is_punct(self, text: str) -> bool:
        return self.kind == "punct" and self.text == text

    def describe(self) -> str:
        """How an error message names this token."""
        if self.kind == "end":
            return "the end of the line"
        return f"`{self.text}`"


def _is_name_start(char: str) -> bool:
    return char.isascii() and (char.isalpha() or char == "_")


def _is_name_char(char: str) -> bool:
    return char.isascii() and (char.isalnum() or char == "_")


def tokenize_line(text: str, line: int) -> tuple[list[Token], str | None]:
    """Split one line into tokens (ending with an `end` token) and its comment.

    The comment is the text after the first `#`, or None when there is none.
    """
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char.isspace():
            pos += 1
        elif char == "#":
            tokens.append(Token("end", "", pos + 1))
            return tokens, text[pos + 1:]
        elif char in PUNCTUATION:
            tokens.append(Token("punct", char, pos + 1))
            pos += 1
        elif char == "%":
            pos = _lex_run(text, pos, line, tokens, "value")
        elif char == "@":
            end = pos + 1
            while end < len(text) and not text[end].isspace() and text[end] not in _GLOBAL_STOP:
                end += 1
            tokens.append(Token("global", text[pos:end], pos + 1))
            pos = end
        elif _is_name_start(char):
            pos = _lex_run(text, pos, line, tokens, "name")
        elif (char.isascii() and char.isdigit()) or char in "+-.":
            pos = _lex_number(text, pos, line, tokens)
        else:
            raise ParseError(f"unexpected character {char!r}", line, pos + 1)
    tokens.append(Token("end", "", len(text) + 1))
    return tokens, None


def _lex_run(text: str, pos: int, line: int, tokens: list[Token], kind: str) -> int:
    """An identifier (`name`) or a `%`-prefixed value name (`value`)."""
    end = pos + 1
    while end < len(text) and (_is_name_char(text[end]) or (kind == "value" and text[end] == ".")):
        end += 1
    if end == pos + 1 and kind == "value":
        raise ParseError("expected a value name after `%`", line, pos + 1)
    tokens.append(Token(kind, text[pos:end], pos + 1))
    return end


def _digits(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isascii() and text[pos].isdigit():
        pos += 1
    return pos


def _lex_number(text: str, pos: int, line: int, tokens: list[Token]) -> int:
    """`[+-]digits[.digits][e[+-]digits]`, or a signed `inf`/`nan`."""
    start = pos
    if text[pos] in "+-":
        pos += 1
    if pos < len(text) and _is_name_start(text[pos]):
        end = pos
        while end < len(text) and _is_name_char(text[end]):
            end += 1
        if text[pos:end] not in ("inf", "nan"):
            raise ParseError(f"malformed number {text[start:end]!r}", line, start + 1)
        tokens.append(Token("float", text[start:end], start + 1))
        return end
    mantissa_start = pos
    pos = _digits(text, pos)
    is_float = False
    if pos < len(text) and text[pos] == ".":
        is_float = True
        pos = _digits(text, pos + 1)
    if pos - mantissa_start == int(is_float):
        raise ParseError(f"malformed number {text[start:pos + 1]!r}", line, start + 1)
    if pos < len(text) and text[pos] in "eE":
        is_float = True
        exponent = pos + 1
        if exponent < len(text) and text[exponent] in "+-":
            exponent += 1
        end = _digits(text, exponent)
        if end == exponent:
            raise ParseError(f"malformed number {text[start:end + 1]!r}", line, start + 1)
        pos = end
    if pos < len(text) and (_is_name_char(text[pos]) or text[pos] == "."):
        raise ParseError(f"malformed number {text[start:pos + 1]!r}", line, start + 1)
    if not is_float and pos - mantissa_start > MAX_INT_DIGITS:
        raise ParseError(f"integer literal with {pos - mantissa_start} digits is too long "
                         f"(at most {MAX_INT_DIGITS})", line, start + 1)
    tokens.append(Token("float" if is_float else "int", text[start:pos], start + 1))
    return pos


class Cursor:
    """Reads one line's tokens in order; errors carry the line and token column."""

    def __init__(self, tokens: list[Token], line: int):
        self.tokens = tokens
        self.line = line
        self.pos = 0

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def next(self) -> Token:
        token = self.tokens[self.pos]
        if token.kind != "end":
            self.pos += 1
        return token

    def at_end(self) -> bool:
        return self.peek().kind == "end"

    def error(self, token: Token, message: str) -> ParseError:
        return ParseError(message, self.line, token.column)

    def expect(self, kind: str, text: str | None, what: str) -> Token:
        """The next token if it has `kind` (and `text`); else ParseError naming `what`."""
        token = self.peek()
        if token.kind != kind or (text is not None and token.text != text):
            raise self.error(token, f"expected {what}, found {token.describe()}")
        return self.next()

    def expect_end(self, what: str = "the end of the line") -> None:
        token = self.peek()
        if token.kind != "end":
            raise self.error(token, f"expected {what}, found {token.describe()}")
