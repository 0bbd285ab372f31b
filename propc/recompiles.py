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
from typing import Any, Callable, Hashable

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
    """A dict of at most `limit()` items that forgets the least recently used one,
    calling `on_evict(key, value)` for it."""

    def __init__(self, limit: Callable[[], int], on_evict: Callable[[Hashable, Any], None]):
        self._items: OrderedDict = OrderedDict()
        self._limit = limit
        self._on_evict = on_evict

    def get(self, key: Hashable) -> Any:
        return self._items.get(key)

    def touch(self, key: Hashable) -> None:
        """Mark `key` as just used (no error when it is not there)."""
        if key in self._items:
            self._items.move_to_end(key)

    def setdefault(self, key: Hashable, value: Any) -> Any:
        """The value of `key`, storing `value` first when there is none."""
        if key in self._items:
            return self._items[key]
        self._items[key] = value
        while len(self._items) > max(1, self._limit()):
            old_key, old_value = self._items.popitem(last=False)
            self._on_evict(old_key, old_value)
        return value

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def values(self):
        return self._items.values()
