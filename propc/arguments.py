"""Keyword and static arguments of compiled and interpreted functions.

A call `f(*args, **kwargs)` is split into a *static key* and the *dynamic
arguments*:
- static arguments (`static_argnums` positions, `static_argnames` names; either
  way of passing one counts, through the function's signature) are Python values
  that trace as constants: they key the cache by `(type, value)`, so they must be
  hashable, and a new value traces and compiles again;
- keyword arguments that are not static are pytrees like positional ones; their
  names (sorted) are part of the key, their leaves become graph inputs after the
  positional ones.
Each static key gets its own specialisation of the function, which takes the
dynamic arguments positionally: `specialise(key)` returns it, and the compiled or
interpreted wrapper keeps one per key (same idea as JAX's `static_argnums`, written
from scratch).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from .pytree import tree_paths

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _positional_names(fn: Callable) -> list[str]:
    """Names of fn's parameters that may be passed by position (empty if unknown)."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in parameters if p.kind in _POSITIONAL]


def _hashable(value: Any, where: str, who: str) -> tuple:
    try:
        hash(value)
    except TypeError:
        raise TypeError(f"{who}: static argument {where} has unhashable type "
                        f"{type(value).__name__}; static values key the compile cache, so "
                        "they must be hashable (a tuple instead of a list, a number instead "
                        "of an array)") from None
    return (type(value), value)


@dataclass(frozen=True)
class CallKey:
    """What selects a specialisation: the static values and the call's layout."""

    count: int                          # positional arguments passed
    static_positions: tuple             # ((index, (type, value)), ...)
    static_names: tuple                 # ((name, (type, value)), ...)
    dynamic_names: tuple[str, ...]      # dynamic keyword arguments, sorted


class ArgumentSplitter:
    """Splits calls of `fn` by its static argument numbers and names."""

    def __init__(self, fn: Callable, static_argnums: int | Iterable[int] = (),
                 static_argnames: str | Iterable[str] = (), who: str = "pc.compile"):
        self.fn = fn
        self.who = who
        numbers = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
        names = (static_argnames,) if isinstance(static_argnames, str) else tuple(static_argnames)
        if any(isinstance(n, bool) or not isinstance(n, int) for n in numbers):
            raise TypeError(f"{who}: static_argnums must be ints, got {static_argnums!r}")
        if any(not isinstance(n, str) for n in names):
            raise TypeError(f"{who}: static_argnames must be strings, got {static_argnames!r}")
        positional = _positional_names(fn)
        self.numbers = set(numbers) | {i for i, n in enumerate(positional) if n in names}
        self.names = set(names) | {positional[i] for i in numbers if 0 <= i < len(positional)}

    @property
    def has_static(self) -> bool:
        return bool(self.numbers or self.names)

    def split(self, args: tuple, kwargs: dict) -> tuple[CallKey, tuple]:
        """The static key of a call and its dynamic arguments (positional ones, then
        the dynamic keyword arguments in name order)."""
        count = len(args)
        static_index = {n % count for n in self.numbers if -count <= n < count}
        positions = tuple((i, _hashable(args[i], f"args[{i}]", self.who))
                          for i in sorted(static_index))
        names = tuple((name, _hashable(kwargs[name], f"{name}=", self.who))
                      for name in sorted(kwargs) if name in self.names)
        dynamic_names = tuple(sorted(name for name in kwargs if name not in self.names))
        dynamic = tuple(a for i, a in enumerate(args) if i not in static_index)
        dynamic += tuple(kwargs[name] for name in dynamic_names)
        return CallKey(count, positions, names, dynamic_names), dynamic

    def specialise(self, key: CallKey) -> Callable:
        """fn with the static values of `key` bound, taking the dynamic arguments."""
        fn = self.fn
        static_args = {i: value for i, (_, value) in key.static_positions}
        static_kwargs = {name: value for name, (_, value) in key.static_names}
        n_positional = key.count - len(static_args)

        def specialised(*dynamic):
            rest = iter(dynamic[:n_positional])
            args = [static_args[i] if i in static_args else next(rest) for i in range(key.count)]
            kwargs = dict(zip(key.dynamic_names, dynamic[n_positional:]), **static_kwargs)
            return fn(*args, **kwargs)

        specialised.__name__ = getattr(fn, "__name__", "fn")
        specialised.__wrapped__ = fn
        dynamic_positions = [i for i in range(key.count) if i not in static_args]
        specialised.argument_roots = ([f"args[{i}]" for i in dynamic_positions] +
                                      [f"kwargs[{name!r}]" for name in key.dynamic_names])
        return specialised


def argument_paths(fn: Callable, args: tuple) -> list[str]:
    """The path of each argument leaf in messages: `args[1]['W']`, or for a
    specialisation the caller's own naming (`kwargs['scale']`)."""
    roots = getattr(fn, "argument_roots", None)
    if roots is None or len(roots) != len(args):
        return tree_paths(tuple(args), "args")
    return [path for arg, root in zip(args, roots) for path in tree_paths(arg, root)]
