"""`propc show FILE.py:FUNC --arg f32[32,64] ...`: print what propc makes of a function.

Sections, each behind a flag: the optimised IR (always), `--grad` the forward and
backward passes of its gradient (with respect to `--argnums`, default the first
argument, as `pc.grad`), `--llvm` the LLVM IR, `--asm` the assembly, `--cost` the
cost table. `--dot` prints only a Graphviz DOT text of the graph (pipe it to `dot`).

Each `--arg` is one positional argument: a spec `f32[32,64]`, or a pytree of specs
written as a Python literal, e.g. `--arg "[(f32[784,256], f32[256]), (f32[256,10],
f32[10])]"` or `--arg "{'W': f32[3,2], 'b': f32[2]}"`.

Loading FILE.py runs its top-level code, as `import` would (`--help` says so too).
"""
from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import re
import sys
from typing import Callable

from ir.dot import to_dot

from .usage import OneLineParser, UsageError
from .signature import ShapeDtype

_DTYPES = {"f32": "float32", "f64": "float64", "i32": "int32", "i64": "int64", "bool": "bool"}
_LEAF = r"\b(f32|f64|i32|i64|bool)\[([0-9,\s]*)\]"
_SPEC = re.compile(f"^{_LEAF}$")
_LEAF_IN_TREE = re.compile(_LEAF)
_MARK = "\x00leaf"  # stands for the n-th spec while the tree's literal is read


def _leaf_spec(match: re.Match) -> ShapeDtype:
    dims = [d.strip() for d in match.group(2).split(",") if d.strip()]
    return ShapeDtype(tuple(int(d) for d in dims), _DTYPES[match.group(1)])


def parse_arg_spec(text: str):
    """`f32[32,64]` → ShapeDtype((32, 64), float32) (`f32[]` is 0-d); a Python
    literal of lists, tuples and dicts with such specs at the leaves → that pytree."""
    match = _SPEC.match(text.strip())
    if match is not None:
        return _leaf_spec(match)
    leaves: list[ShapeDtype] = []

    def mark(found: re.Match) -> str:
        leaves.append(_leaf_spec(found))
        return repr(f"{_MARK}{len(leaves) - 1}")

    try:
        tree = ast.literal_eval(_LEAF_IN_TREE.sub(mark, text))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        tree = None
    if not leaves or not _is_spec_tree(tree):
        raise UsageError(f"bad --arg {text!r}: expected DTYPE[D0,D1,...] with DTYPE one of "
                         f"{', '.join(_DTYPES)} (e.g. f32[32,64], i32[32], f32[]), or a "
                         "pytree of them as a Python literal, e.g. \"[(f32[4,3], f32[3])]\"")
    return _unmark(tree, leaves)


def _is_spec_tree(tree) -> bool:
    if isinstance(tree, str):
        return tree.startswith(_MARK)
    if isinstance(tree, (list, tuple)):
        return all(_is_spec_tree(item) for item in tree)
    if isinstance(tree, dict):
        return all(_is_spec_tree(item) for item in tree.values())
    return False


def _unmark(tree, leaves: list[ShapeDtype]):
    if isinstance(tree, str):
        return leaves[int(tree[len(_MARK):])]
    if isinstance(tree, dict):
        return {key: _unmark(item, leaves) for key, item in tree.items()}
    return type(tree)(_unmark(item, leaves) for item in tree)


def load_function(target: str) -> Callable:
    """`path/to/file.py:func` → the function object."""
    path, sep, name = target.rpartition(":")
    if not sep or not path or not name:
        raise UsageError(f"bad target {target!r}: expected FILE.py:FUNC")
    if not os.path.isfile(path):
        raise UsageError(f"no such file: {path}")
    spec = importlib.util.spec_from_file_location(f"propc_show_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # the user's module failed to import: report it in one line
        raise UsageError(f"could not import {path}: {type(err).__name__}: {err}") from None
    finally:
        sys.path.pop(0)
    fn = getattr(module, name, None)
    if not callable(fn):
        raise UsageError(f"{path} has no function {name!r}")
    return fn


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="propc show", description=__doc__.splitlines()[0],
                      epilog="FILE.py is imported to find FUNC: its top-level code runs.")
    p.add_argument("target", help="FILE.py:FUNC (the file's top-level code runs)")
    p.add_argument("--arg", action="append", default=[], metavar="SPEC",
                   help="an argument by dtype and shape, e.g. f32[32,64] (repeat per argument)")
    p.add_argument("--grad", action="store_true",
                   help="also the forward and backward passes of the gradient")
    p.add_argument("--argnums", default="0", metavar="I[,J...]",
                   help="with --grad: the arguments to differentiate (default 0, as pc.grad)")
    p.add_argument("--llvm", action="store_true", help="the LLVM IR")
    p.add_argument("--asm", action="store_true", help="the native assembly")
    p.add_argument("--cost", action="store_true", help="the cost table")
    p.add_argument("--dot", action="store_true", help="print only Graphviz DOT text of the graph")
    return p


def _section(title: str, body: str) -> str:
    return f"=== {title} ===\n{body.rstrip()}\n"


def show(options: argparse.Namespace) -> str:
    import propc as pc

    specs = [parse_arg_spec(a) for a in options.arg]
    argnums = _argnums(options.argnums, specs) if options.grad else ()
    fn = load_function(options.target)
    target = pc.value_and_grad(fn, argnums=argnums) if options.grad else fn
    lowered = pc.compile(target).lower(*specs)
    if options.dot:
        return to_dot(lowered.graph)
    out = [_section(f"IR of {options.target}", str(lowered.graph))]
    if options.grad:
        out.append(_section("forward pass", str(lowered.forward_graph)))
        out.append(_section("backward pass", str(lowered.backward_graph)))
    if options.cost:
        out.append(_section("cost", str(lowered.cost)))
    if options.llvm:
        out.append(_section("LLVM IR", lowered.llvm_ir))
    if options.asm:
        out.append(_section("assembly", lowered.asm))
    return "\n".join(out)


def _argnums(text: str, specs: list) -> tuple[int, ...]:
    """`--argnums 0,2` → (0, 2), each naming an argument whose leaves are all float."""
    try:
        argnums = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise UsageError(f"bad --argnums {text!r}: expected integers like 0 or 0,2") from None
    for i in argnums:
        if not 0 <= i < len(specs):
            raise UsageError(f"--argnums {i}: there are {len(specs)} --arg arguments")
        kinds = {leaf.dtype.kind for leaf in _spec_leaves(specs[i])}
        if kinds != {"f"}:
            raise UsageError(f"--grad: argument {i} has non-float leaves; choose float "
                             "arguments with --argnums")
    return argnums


def _spec_leaves(tree) -> list:
    if isinstance(tree, ShapeDtype):
        return [tree]
    items = tree.values() if isinstance(tree, dict) else tree
    return [leaf for item in items for leaf in _spec_leaves(item)]


def main(argv: list[str]) -> int:
    try:
        options = build_parser().parse_args(argv)
        sys.stdout.write(show(options))
    except UsageError as err:
        print(f"propc show: {err}", file=sys.stderr)
        return 2
    except (TypeError, ValueError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"propc show: {type(err).__name__}: {first}", file=sys.stderr)
        return 2
    return 0
