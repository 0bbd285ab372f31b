"""`propc.load_exported(path)`: call an exported library (`pc.export`) from Python
with ctypes and NumPy alone.

    f = propc.load_exported("out/model.so")    # or the directory, or model.json
    logits = f(params, x)                       # the exported function's signature

The manifest (NAME.json next to NAME.so) says which C function to call, the
argument and result pytrees and every leaf's shape and dtype. Loading checks that
the library is the one the manifest describes: the same ABI version (this
loader's own, `ABI_VERSION`) and the same IR hash, read from the library itself.

This module and what it imports (json, ctypes, NumPy, propc/pytree.py,
propc/export_tree.py) never import `ir`, `codegen` or llvmlite: a process that
only runs exported models does not load the compiler. Calls release the GIL
(ctypes) and use a workspace per thread, so threads may call one function at
once.
"""
from __future__ import annotations

import ctypes
import json
import os
import threading
from typing import Any

import numpy as np

from .export_tree import tree_from_json, tree_to_json
from .pytree import tree_flatten, tree_paths, tree_unflatten

# The C calling convention this loader speaks; codegen/export_abi.ABI_VERSION is
# what libraries are built with (a test keeps the two equal).
ABI_VERSION = 1
FORMAT = "propc-export"
WORKSPACE_ALIGN = 64
_STATUS = {1: "out of memory for its workspace", 2: "workspace not 64-byte aligned"}


def manifest_path(path: str) -> str:
    """The manifest for `path`: NAME.json itself, the .json next to NAME.so / NAME.o
    / NAME.h, or the one .json in a directory."""
    path = os.fspath(path)
    if os.path.isdir(path):
        found = sorted(entry for entry in os.listdir(path) if entry.endswith(".json"))
        if len(found) != 1:
            raise ValueError(f"load_exported: {path!r} must hold exactly one NAME.json "
                             f"manifest, found {found or 'none'}; pass the .so path")
        return os.path.join(path, found[0])
    stem, suffix = os.path.splitext(path)
    candidate = path if suffix == ".json" else stem + ".json"
    if not os.path.isfile(candidate):
        raise FileNotFoundError(f"load_exported: no manifest {candidate!r} for {path!r} "
                                "(pc.export writes NAME.so and NAME.json side by side)")
    return candidate


def _read_manifest(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            manifest = json.load(handle)
    except (OSError, ValueError) as err:
        raise ValueError(f"load_exported: cannot read the manifest {path!r}: {err}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"load_exported: {path!r} is not a propc export manifest")
    if manifest.get("abi_version") != ABI_VERSION:
        raise ValueError(f"load_exported: {path!r} was written for export ABI version "
                         f"{manifest.get('abi_version')}; this propc loads version "
                         f"{ABI_VERSION}: export the function again")
    return manifest


def _open_library(path: str, manifest: dict) -> ctypes.CDLL:
    """The library, after checking that its ABI version and IR hash are the manifest's."""
    try:
        library = ctypes.CDLL(path)
    except OSError as err:
        raise OSError(f"load_exported: cannot load {path!r}: {err}") from None
    name = manifest["name"]
    try:
        version = getattr(library, f"{name}_abi_version")
        digest = getattr(library, f"{name}_ir_hash")
    except AttributeError:
        raise ValueError(f"load_exported: {path!r} does not define {name}_abi_version and "
                         f"{name}_ir_hash: not the library of manifest {name}.json") from None
    version.restype, version.argtypes = ctypes.c_int, []
    digest.restype, digest.argtypes = ctypes.c_char_p, []
    if version() != manifest["abi_version"]:
        raise ValueError(f"load_exported: {path!r} has ABI version {version()}, its manifest "
                         f"says {manifest['abi_version']}: the files come from different exports")
    found = digest().decode("ascii", "replace")
    if found != manifest["ir_hash"]:
        raise ValueError(f"load_exported: {path!r} was built from IR hash {found[:16]}..., "
                         f"its manifest says {manifest['ir_hash'][:16]}...: the files come "
                         "from different exports (export again, or keep each .so with its "
                         ".json; a process keeps the first library it loaded from a path, so "
                         "re-exporting to a loaded path needs a new process or a new path)")
    return library


class ExportedFunction:
    """An exported function loaded from its library: call it like the original."""

    def __init__(self, manifest_file: str):
        self.manifest_file = manifest_file
        self.manifest = _read_manifest(manifest_file)
        directory = os.path.dirname(os.path.abspath(manifest_file))
        self.library_path = os.path.join(directory, self.manifest["library"])
        self._library = _open_library(self.library_path, self.manifest)
        (first,) = self.manifest["passes"]
        self._inputs = [(tuple(leaf["shape"]), np.dtype(leaf["dtype"]))
                        for leaf in first["inputs"]]
        self._outputs = [(tuple(leaf["shape"]), np.dtype(leaf["dtype"]))
                         for leaf in first["outputs"]]
        self._in_tree = self.manifest["in_tree"]
        self._in_treedef = tree_from_json(self._in_tree)
        self._out_tree = tree_from_json(self.manifest["out_tree"])
        self._entry = getattr(self._library, first["symbol"])
        self._entry.restype = ctypes.c_int
        self._entry.argtypes = [ctypes.c_void_p] * (len(self._inputs) + len(self._outputs) + 1)
        self._workspace_bytes = int(self.manifest["workspace_bytes"])
        self._local = threading.local()

    def __repr__(self) -> str:
        return (f"<ExportedFunction {self.manifest.get('function', '?')} from "
                f"{self.library_path}>")

    def __call__(self, *args: Any) -> Any:
        leaves, tree = tree_flatten(args)
        if tree != self._in_treedef and tree_to_json(tree) != self._in_tree:
            raise TypeError(f"{self._label()}: arguments have structure {tree}, the export "
                            f"takes {self._in_treedef}")
        arrays = [self._argument(leaf, position, args) for position, leaf in enumerate(leaves)]
        outputs = [np.empty(shape, dtype) for shape, dtype in self._outputs]
        pointers = [array.ctypes.data for array in arrays + outputs]
        status = self._entry(*pointers, self._workspace())
        if status != 0:
            raise RuntimeError(f"{self._label()}: the library call failed: "
                               f"{_STATUS.get(status, f'status {status}')}")
        return tree_unflatten(self._out_tree, outputs)

    def _label(self) -> str:
        return f"exported {self.manifest.get('function', self.manifest['name'])}"

    def _argument(self, leaf: Any, position: int, args: tuple) -> np.ndarray:
        """Leaf `position` as a C-contiguous array of its exact exported type; errors
        name the leaf's path in `args`."""
        shape, dtype = self._inputs[position]
        if isinstance(leaf, (bool, int, float)) and shape == ():
            return np.asarray(leaf, dtype=dtype)
        if not isinstance(leaf, (np.ndarray, np.generic)):
            raise TypeError(f"{self._where(args, position)}: expected a {dtype.name} array of "
                            f"shape {shape}, got {type(leaf).__name__}")
        if leaf.dtype.newbyteorder("=") != dtype:
            raise TypeError(f"{self._where(args, position)}: expected dtype {dtype.name}, got "
                            f"{leaf.dtype.name}")
        if np.shape(leaf) != shape:
            raise ValueError(f"{self._where(args, position)}: expected shape {shape}, got "
                             f"{np.shape(leaf)}")
        return np.require(leaf, dtype=dtype, requirements=("C_CONTIGUOUS", "ALIGNED"))

    def _where(self, args: tuple, position: int) -> str:
        return f"{self._label()}: {tree_paths(args, 'args')[position]}"

    def _workspace(self) -> int | None:
        """This thread's 64-byte aligned workspace (None when the pass needs none)."""
        if self._workspace_bytes == 0:
            return None
        address = getattr(self._local, "address", None)
        if address is None:
            buffer = np.empty(self._workspace_bytes + WORKSPACE_ALIGN, dtype=np.uint8)
            start = buffer.ctypes.data
            address = start + (-start) % WORKSPACE_ALIGN
            self._local.buffer, self._local.address = buffer, address
        return address


def load_exported(path: str) -> ExportedFunction:
    """The exported function at `path` (NAME.so, its NAME.json, or their directory)."""
    return ExportedFunction(manifest_path(path))


__all__ = ["ABI_VERSION", "ExportedFunction", "load_exported", "manifest_path"]
