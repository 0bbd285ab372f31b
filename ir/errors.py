"""Exceptions raised by the IR package.

Every error a user can see from `ir` derives from `IRError`; none of them is a bare
KeyError/IndexError/AssertionError.
"""


class IRError(Exception):
    """Base of every error raised by the `ir` package."""


class TypeRuleError(IRError, ValueError):
    """An op's operands or attributes do not satisfy its shape/dtype rule."""

    def __init__(self, prim: str, message: str):
        self.prim = prim
        self.detail = message
        super().__init__(f"{prim}: {message}")


class VerifyError(IRError, ValueError):
    """A graph is malformed (SSA, types, attributes)."""


class ParseError(IRError, ValueError):
    """IR text could not be read; carries the 1-based line and column."""

    def __init__(self, message: str, line: int, column: int):
        self.line = line
        self.column = column
        self.detail = message
        super().__init__(f"{line}:{column}: {message}")


class InterpretError(IRError, RuntimeError):
    """The interpreter could not run a graph (wrong inputs, unknown op)."""
