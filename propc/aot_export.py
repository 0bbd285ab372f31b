"""`pc.export`: a function compiled ahead of time into files a C program links.

    pc.export(predict, params, pc.ShapeDtype((32, 64)), path="out", name="model")

writes into `path`:
- model.o   the compiled function (relocatable, position independent; only
            `model_*` symbols are global), for static linking;
- model.so  the same linked as a shared library (codegen/export_link.py);
- model.h   its C99 header (codegen/export_header.py): `model_run` taking every
            argument leaf, then every result leaf, then a workspace;
- model.json the manifest: argument and result pytrees, each leaf's C name,
            path, shape and dtype, the IR hash (propc/exported.py reads it).

The function is traced and simplified exactly as `pc.compile` does for the same
signature, then lowered for `cpu` (codegen/target.py) with `threads` threads (1:
no libgomp): the library runs the in-process compiled code's arithmetic
(bit-identical on the host CPU) without propc, llvmlite or NumPy. A training step exports
like any function: it returns the new parameters into output buffers (see the
header's notes), and `pc.export(pc.compile(step), ...)` is accepted.
"""
from __future__ import annotations

import inspect
import json
import keyword
import os
import re
from dataclasses import dataclass
from typing import Any, Callable

from codegen.runtime.export import ExportPass, build_object
from codegen.runtime.export_abi import ABI_VERSION
from codegen.runtime.export_header import header_text
from codegen.runtime.export_link import link_shared
from codegen.target import named_target
from ir.passes.simplify import simplify

from .compile import Compiled
from .errors import api_boundary
from .export_tree import tree_to_json
from .exported import FORMAT
from .pytree import tree_leaves, tree_paths, tree_unflatten
from .signature import leaf_spec
from .tracing import trace_to_graph

PASS = "run"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_C_RESERVED = set(keyword.kwlist) | {
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else",
    "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "register",
    "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch",
    "typedef", "union", "unsigned", "void", "volatile", "while", "bool", "workspace"}


@dataclass(frozen=True)
class ExportedFiles:
    """The paths `pc.export` wrote."""

    library: str
    object: str
    header: str
    manifest: str


@api_boundary
def export(fn: Callable, *args: Any, path: str = "model", name: str = "model",
           cpu: str = "host", threads: int = 1) -> ExportedFiles:
    """Compile `fn` for the argument signature `args` (arrays, numbers or
    ShapeDtypes) and write NAME.so, NAME.o, NAME.h and NAME.json into `path`.
    `threads` > 1 runs big products and loops on libgomp teams of that size."""
    function = fn.fn if isinstance(fn, Compiled) else fn
    if not callable(function):
        raise TypeError(f"pc.export expects a function, got {type(fn).__name__}")
    _check_name(name)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"pc.export: threads must be a positive int, got {threads!r}")
    target = named_target(cpu, threads)
    _check_arguments(function, args)
    directory = _writable_directory(path)
    traced = trace_to_graph(function, args)
    graph = simplify(traced.graph)
    code = build_object(name, [ExportPass(PASS, graph)], target)
    inputs = _input_leaves(function, args)
    outputs = _output_leaves(traced.out_tree)
    files = ExportedFiles(*(os.path.join(directory, f"{name}.{suffix}")
                            for suffix in ("so", "o", "h", "json")))
    with open(files.object, "wb") as handle:
        handle.write(code.object_code)
    link_shared(files.object, files.library, name, gomp=threads > 1)
    source = f"{_qualified_name(function)} for {', '.join(str(t) for t in code.passes[0].inputs)}"
    arguments = [([(c, what) for c, what, _ in inputs], [(c, what) for c, what in outputs])]
    _write_text(files.header, header_text(code, arguments, source))
    manifest = _manifest(code, function, traced, inputs, outputs)
    _write_text(files.manifest, json.dumps(manifest, indent=1) + "\n")
    return files


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _IDENTIFIER.match(name) or name in _C_RESERVED:
        raise ValueError(f"pc.export: name must be a C identifier (letters, digits, _), "
                         f"got {name!r}")


def _check_arguments(function: Callable, args: tuple) -> None:
    """TypeError naming the missing or extra argument specs (one per parameter)."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(*args)
    except TypeError as err:
        expected = [p.name for p in signature.parameters.values()
                    if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        raise TypeError(f"pc.export: {_qualified_name(function)}({', '.join(expected)}) "
                        f"got {len(args)} argument spec(s): {err}; pass one array, number "
                        "or pc.ShapeDtype per argument") from None


def _writable_directory(path: str) -> str:
    """`path`, created if needed; OSError naming it when it cannot be written."""
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".propc-export-{os.getpid()}")
        with open(probe, "wb"):
            pass
        os.remove(probe)
    except OSError as err:
        raise OSError(err.errno, f"pc.export: cannot write to the output directory "
                                 f"{os.fspath(path)!r}: {err.strerror or err}") from None
    return os.fspath(path)


def _input_leaves(function: Callable, args: tuple) -> list[tuple[str, str, Any]]:
    """(C name, path, LeafSpec) per argument leaf; paths start at the parameter name."""
    names = _parameter_names(function, len(args))
    paths = [path for position, arg in enumerate(args)
             for path in tree_paths(arg, names[position])]
    specs = [leaf_spec(leaf, path)
             for leaf, path in zip(tree_leaves(args), tree_paths(args, "args"))]
    return list(zip(_c_names(paths), paths, specs))


def _output_leaves(out_tree) -> list[tuple[str, str]]:
    """(C name, path) per result leaf, from the result's structure (rebuilt with
    placeholder leaves to walk it)."""
    shaped = tree_unflatten(out_tree, [0] * out_tree.num_leaves)
    paths = tree_paths(shaped, "result") if out_tree.num_leaves else []
    return list(zip(_c_names([p.replace("result", "out", 1) for p in paths]), paths))


def _parameter_names(function: Callable, count: int) -> list[str]:
    try:
        parameters = [p.name for p in inspect.signature(function).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        parameters = []
    return [parameters[i] if i < len(parameters) else f"arg{i}" for i in range(count)]


def _c_names(paths: list[str]) -> list[str]:
    """Distinct C identifiers from leaf paths: `params[0]['W']` → `params_0_W`."""
    taken: set[str] = set()
    names = []
    for path in paths:
        base = re.sub(r"[^A-Za-z0-9_]+", "_", path).strip("_") or "arg"
        if base[0].isdigit() or base in _C_RESERVED:
            base = f"a_{base}"
        candidate, counter = base, 1
        while candidate in taken:
            candidate, counter = f"{base}_{counter}", counter + 1
        taken.add(candidate)
        names.append(candidate)
    return names


def _qualified_name(function: Callable) -> str:
    """`file.py:qualname` (the `propc export` target syntax), else module.qualname."""
    function = inspect.unwrap(function)
    name = getattr(function, "__qualname__", None) or type(function).__name__
    code = getattr(function, "__code__", None)
    if code is not None:
        return f"{os.path.basename(code.co_filename)}:{name}"
    return f"{getattr(function, '__module__', None) or '?'}.{name}"


def _manifest(code, function: Callable, traced, inputs: list, outputs: list) -> dict:
    exported = code.passes[0]
    in_leaves = [{"c_name": c, "path": path, "shape": list(kind.shape),
                  "dtype": kind.dtype.numpy.name, "weak": spec.weak}
                 for (c, path, spec), kind in zip(inputs, exported.inputs)]
    out_leaves = [{"c_name": c, "path": path, "shape": list(kind.shape),
                   "dtype": kind.dtype.numpy.name}
                  for (c, path), kind in zip(outputs, exported.outputs)]
    return {"format": FORMAT, "abi_version": ABI_VERSION, "name": code.name,
            "function": _qualified_name(function), "ir_hash": code.ir_hash,
            "cpu": code.target.name, "llvm_cpu": code.target.cpu, "threads": code.target.threads,
            "library": f"{code.name}.so", "object": f"{code.name}.o",
            "header": f"{code.name}.h", "workspace_bytes": code.workspace_bytes,
            "in_tree": tree_to_json(traced.in_tree), "out_tree": tree_to_json(traced.out_tree),
            "passes": [{"name": PASS, "symbol": exported.symbol, "inputs": in_leaves,
                        "outputs": out_leaves, "workspace_bytes": exported.workspace_bytes}]}


def _write_text(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


__all__ = ["ExportedFiles", "export"]
