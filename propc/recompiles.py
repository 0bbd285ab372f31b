"""What a compiled function says and keeps when its signatures change.

Every new input signature of a `pc.compile`d function traces and compiles again.
Usually that is wanted (a new model size); often it is an accident that costs a
compile each time: a ragged last batch, float64 data, a changed scalar type. So:

- from the `Compiled.warn_recompiles_after`-th recompile of one function on, each
  recompile is a `RecompileWarning` naming the argument leaf that changed and how;
- the per-function cache keeps at most `Compiled.max_signatures` signatures, least
  recently used first out (an evicted signature compiles again when it comes back,
  from the disk cache when that is on);
- a signature whose strong float inputs mix float32 and float64 gives one
  `PrecisionWarning` per function: NumPy's promotion turns the whole computation
  into float64, which is slower and usually not what a float32 model meant.

Both limits are class attributes of `Compiled`, so they can be set for every
function or for one (`f.max_signatures = 4`).
"""
from __future__ import annotations

import os
import sys
import warnings
from collections import OrderedDict
from typing import Any, Hashable

from ir.types import DType


class RecompileWarning(UserWarning):
    """A compiled function compiled again for a new input signature, once too often."""


class PrecisionWarning(UserWarning):
    """float64 inputs turned a float32 computation into a float64 one."""


_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def _user_stacklevel() -> int:
    """The `stacklevel` of the first frame outside propc (the user's call), so a
    warning names the user's file and line."""
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level


def warn_recompile(name: str, count: int, change: str) -> None:
    warnings.warn(RecompileWarning(
        f"propc: {name} compiled again ({count} recompiles so far): {change}. Each new "
        "signature traces and compiles; pad ragged batches, keep dtypes fixed, or make "
        "Python values static arguments (pc.compile(..., static_argnums=...))"),
        stacklevel=_user_stacklevel())


def warn_if_mixed_precision(name: str, specs: tuple, paths: list[str]) -> bool:
    """One PrecisionWarning when strong float32 and float64 inputs meet; True if warned."""
    strong = [(path, spec.dtype) for path, spec in zip(paths, specs)
              if spec.dtype.is_float and not spec.weak]
    singles = [path for path, dtype in strong if dtype is DType.f32]
    doubles = [path for path, dtype in strong if dtype is DType.f64]
    if not singles or not doubles:
        return False
    warnings.warn(PrecisionWarning(
        f"propc: {name} gets float64 {', '.join(doubles[:3])} next to float32 "
        f"{', '.join(singles[:3])}: NumPy's promotion makes the computation float64 "
        "(slower; convert the data with .astype(np.float32) if that is not meant)"),
        stacklevel=_user_stacklevel())
    return True


class LRUCache:
    """A dict that forgets its least recently used items beyond a limit given with
    each store. It hands them back rather than calling back its owner: a callback
    (a bound method, a closure over the owner) would make the owner and its cache a
    reference cycle, and a dropped compiled function would wait for the cyclic
    collector before its native code was freed."""

    def __init__(self) -> None:
        self._items: OrderedDict = OrderedDict()

    def get(self, key: Hashable) -> Any:
        return self._items.get(key)

    def touch(self, key: Hashable) -> None:
        """Mark `key` as just used (no error when it is not there)."""
        if key in self._items:
            self._items.move_to_end(key)

    def setdefault(self, key: Hashable, value: Any, limit: int
                   ) -> tuple[Any, list[tuple[Hashable, Any]]]:
        """The value of `key`, storing `value` first when there is none, and the
        (key, value) items that storing it pushed out beyond `limit` (at least 1),
        least recently used first."""
        if key in self._items:
            return self._items[key], []
        self._items[key] = value
        evicted = []
        while len(self._items) > max(1, limit):
            evicted.append(self._items.popitem(last=False))
        return value, evicted

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def values(self):
        return self._items.values()
