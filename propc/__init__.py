"""propc: trace NumPy-style model code, differentiate it, compile both passes.

    import propc as pc
    f = pc.interpret(lambda x, W: pc.nn.relu(x @ W).sum())
    f(np.ones((4, 3), np.float32), np.ones((3, 2), np.float32))

The public names are propc's API, described in the README (section "What you can
write"); they live in propc/namespace.py, which is imported on the first use of any
of them. Until then only `propc.load_exported`
is loaded (ctypes and NumPy): a process that runs exported libraries never imports
the IR, the backend or llvmlite.
"""
import importlib as _importlib
import sys as _sys
import types as _types

from .exported import load_exported
from .version import __version__

# a submodule of this name must not replace the public function when it is
# imported (propc/compile.py vs pc.compile): the import system sets each imported
# submodule as an attribute of its package
_FUNCTIONS_NAMED_LIKE_MODULES = frozenset({"compile"})


class _Package(_types.ModuleType):
    """propc's module object: public functions keep their names (see above)."""

    def __setattr__(self, name, value):
        if name in _FUNCTIONS_NAMED_LIKE_MODULES and isinstance(value, _types.ModuleType):
            return
        super().__setattr__(name, value)


def _load_namespace() -> dict:
    """Import propc/namespace.py (once) and copy its public names here. While it is
    still being imported (its own imports ask this package for submodules) the
    names are not there yet: AttributeError, which the import system expects."""
    namespace = _importlib.import_module(f"{__name__}.namespace")
    try:
        public = {name: getattr(namespace, name) for name in namespace.__all__}
    except AttributeError:
        raise AttributeError("propc's namespace is still being imported") from None
    globals().update(public)
    return public


def __getattr__(name: str):
    if name == "__all__":  # `from propc import *`
        return sorted(_load_namespace())
    if name.startswith("__"):
        raise AttributeError(name)
    public = _load_namespace()
    if name not in public:
        raise AttributeError(f"module 'propc' has no attribute {name!r}")
    return public[name]


def __dir__() -> list:
    return sorted(set(globals()) | set(_load_namespace()))


_sys.modules[__name__].__class__ = _Package
