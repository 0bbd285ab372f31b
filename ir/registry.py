"""The one table type of every per-primitive table: name -> entry, one entry a name.

Every table keyed by primitive name (the interpreter's IMPLS, the VJP, forward,
batching, cost and algebra rules in ir/passes, and codegen's lowering tables) is a
`Registry`. Filling it goes through `add`, the `register` decorator or `update`, all
of which refuse a name already there, so two modules can never silently disagree
about one primitive. tests/test_registry.py checks every table against
`ir.PRIMITIVES`.
"""
from __future__ import annotations

from typing import Callable, Mapping


class Registry(dict):
    """A per-primitive table, name -> entry, filled with `add` (or the `register`
    decorator, or `update`), all of which refuse a name already there: one
    primitive, one entry. Reading is a dict's. Item assignment still replaces an
    entry on purpose (a test patches one entry for a call and puts it back)."""

    def __init__(self, what: str):
        super().__init__()
        self.what = what

    def add(self, name: str, entry):
        """Enter `entry` under `name`; ValueError when `name` has one already."""
        if name in self:
            raise ValueError(f"{self.what} table: {name!r} is registered twice "
                             f"({self[name]!r} and {entry!r})")
        super().__setitem__(name, entry)
        return entry

    def update(self, entries: Mapping = (), **more) -> None:  # type: ignore[override]
        """`add` every entry of `entries` and `more`."""
        for name, entry in dict(entries, **more).items():
            self.add(name, entry)

    def register(self, *names: str) -> Callable:
        """Decorator: enter the function under each of `names`."""
        def wrap(fn):
            for name in names:
                self.add(name, fn)
            return fn
        return wrap


__all__ = ["Registry"]
