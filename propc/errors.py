"""Trace-time errors, and the helpers that make them point at the user's code.

Every error here carries the operation, a detail naming the shapes/dtypes, the
user's `file:line` (the first stack frame outside the propc, ir and codegen
packages) and, where there is one, a hint saying what to do instead. The message is
one line: `model.py:14: matmul: f32[32,64] @ f32[32,10]: inner dims 64 != 32`.

`api_boundary` wraps public entry points so that a TraceError reaching the user has
its internal frames cut out of the traceback (same idea as JAX's traceback
filtering, `jax/_src/traceback_util.py`).
"""
from __future__ import annotations

import functools
import os
import sys
import types
from typing import Any, Callable, TypeVar

from ir import SourceLoc

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_INTERNAL_DIRS = tuple(os.path.join(_ROOT, name) + os.sep for name in ("propc", "ir", "codegen"))
# Modules of ours that are user code: the models the demos train are written like any
# user's model, so their ops point at these files' lines.
_USER_CODE = tuple(os.path.join(_ROOT, "propc", name)
                   for name in ("demo_mlp.py", "demo_cnn.py", "rnn_model.py"))
_internal_cache: dict[str, bool] = {}


def is_internal_file(filename: str) -> bool:
    """True for source files of the propc, ir and codegen packages (the demo's model
    excepted) and for the interpreter's frozen modules (runpy, importlib)."""
    known = _internal_cache.get(filename)
    if known is None:
        path = os.path.abspath(filename)
        known = (path.startswith(_INTERNAL_DIRS) and path not in _USER_CODE) \
            or filename.startswith("<frozen ")
        _internal_cache[filename] = known
    return known


def user_location() -> SourceLoc | None:
    """The first stack frame outside our packages, as SourceLoc(basename, line)."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not is_internal_file(filename):
            return SourceLoc(os.path.basename(filename), frame.f_lineno)
        frame = frame.f_back
    return None


class TraceError(Exception):
    """Base of every error propc raises while tracing a user's function."""

    def __init__(self, op: str, detail: str, *, hint: str | None = None,
                 loc: SourceLoc | None = None):
        self.op = op
        self.detail = detail
        self.hint = hint
        self.loc = loc if loc is not None else user_location()
        super().__init__(self._message())

    def _message(self) -> str:
        where = f"{self.loc}: " if self.loc is not None else ""
        what = f"{self.op}: " if self.op else ""
        text = f"{where}{what}{self.detail}"
        if self.hint:
            text += f"; {self.hint}"
        return text

    def __reduce__(self):
        return (_rebuild, (type(self), self.op, self.detail, self.hint, self.loc))


def _rebuild(cls, op, detail, hint, loc):
    return cls(op, detail, hint=hint, loc=loc)


class ShapeError(TraceError, ValueError):
    """Shapes or axes that do not fit the operation (broadcasting, matmul, reshape...)."""


class OutOfBoundsError(ShapeError, IndexError):
    """An index outside an axis, or too many indices."""


class ConcretizationError(TraceError, TypeError):
    """A traced value used where a Python value is needed (`if`, float(), np.asarray)."""


class TraceTypeError(TraceError, TypeError):
    """An unsupported dtype or kind of argument (float16, strings, bool arithmetic...)."""


def filter_traceback(tb: types.TracebackType | None) -> types.TracebackType | None:
    """The same traceback without the frames of our own packages."""
    kept = []
    while tb is not None:
        if not is_internal_file(tb.tb_frame.f_code.co_filename):
            kept.append(tb)
        tb = tb.tb_next
    filtered = None
    for entry in reversed(kept):
        filtered = types.TracebackType(filtered, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return filtered


F = TypeVar("F", bound=Callable[..., Any])


def api_boundary(fn: F) -> F:
    """Decorate a public entry point: TraceErrors leave it with internal frames removed."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TraceError as err:
            raise err.with_traceback(filter_traceback(err.__traceback__)) from None

    return wrapper  # type: ignore[return-value]
