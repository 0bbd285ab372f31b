"""Exceptions raised by the backend."""


class CodegenError(RuntimeError):
    """The backend could not turn a graph into native code (an internal failure)."""
