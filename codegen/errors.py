"""Exceptions raised by the backend, and how they name the op they are about."""
from __future__ import annotations

import contextlib
from typing import Iterator


class CodegenError(RuntimeError):
    """The backend could not turn a graph into native code (an internal failure)."""


def describe(op) -> str:
    """`dot f32[3,4], f32[4,5] -> f32[3,5] (model.py:14)`: an op for messages."""
    operands = ", ".join(str(v.type) for v in op.operands)
    where = f" ({op.loc})" if op.loc is not None else ""
    return f"{op.prim} {operands} -> {op.result.type}{where}".replace("  ", " ")


@contextlib.contextmanager
def lowering_op(op) -> Iterator[None]:
    """Re-raise failures while lowering `op` as CodegenError naming the op and its
    source line."""
    try:
        yield
    except CodegenError as err:
        if str(err).startswith("lowering "):
            raise
        raise CodegenError(f"lowering {describe(op)}: {err}") from None
    except (NotImplementedError, ValueError, TypeError, KeyError, IndexError) as err:
        raise CodegenError(f"lowering {describe(op)}: {type(err).__name__}: {err}") from err
