"""`propc show FILE.py:FUNC --arg f32[32,64] ...`: print what propc makes of a function.

Sections, each behind a flag: the optimised IR (always), `--grad` the forward and
backward passes of its gradient, `--llvm` the LLVM IR, `--asm` the assembly,
`--cost` the cost table, `--dot` a Graphviz DOT text of the graph.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
from typing import Callable

from ir.dot import to_dot

from .cli import OneLineParser, UsageError
from .signature import ShapeDtype

_DTYPES = {"f32": "float32", "f64": "float64", "i32": "int32", "i64": "int64", "bool": "bool"}
_SPEC = re.compile(r"^(f32|f64|i32|i64|bool)\[([0-9,\s]*)\]$")


def parse_arg_spec(text: str) -> ShapeDtype:
    """`f32[32,64]` → ShapeDtype((32, 64), float32); `f32[]` is 0-d."""
    match = _SPEC.match(text.strip())
    if match is None:
        raise UsageError(f"bad --arg {text!r}: expected DTYPE[D0,D1,...] with DTYPE one of "
                         f"{', '.join(_DTYPES)} (e.g. f32[32,64], i32[32], f32[])")
    dims = [d.strip() for d in match.group(2).split(",") if d.strip()]
    return ShapeDtype(tuple(int(d) for d in dims), _DTYPES[match.group(1)])


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
    p = OneLineParser(prog="propc show", description=__doc__.splitlines()[0])
    p.add_argument("target", help="FILE.py:FUNC")
    p.add_argument("--arg", action="append", default=[], metavar="SPEC",
                   help="an argument by dtype and shape, e.g. f32[32,64] (repeat per argument)")
    p.add_argument("--grad", action="store_true",
                   help="also the forward and backward passes of the gradient")
    p.add_argument("--llvm", action="store_true", help="the LLVM IR")
    p.add_argument("--asm", action="store_true", help="the native assembly")
    p.add_argument("--cost", action="store_true", help="the cost table")
    p.add_argument("--dot", action="store_true", help="Graphviz DOT text of the graph")
    return p


def _section(title: str, body: str) -> str:
    return f"=== {title} ===\n{body.rstrip()}\n"


def show(options: argparse.Namespace) -> str:
    import propc as pc

    fn = load_function(options.target)
    specs = [parse_arg_spec(a) for a in options.arg]
    target = fn
    if options.grad:
        floats = tuple(i for i, s in enumerate(specs) if s.dtype.kind == "f")
        if not floats:
            raise UsageError("--grad needs at least one float argument")
        target = pc.value_and_grad(fn, argnums=floats)
    lowered = pc.compile(target).lower(*specs)
    out = [_section(f"IR of {options.target}", str(lowered.graph))]
    if options.grad:
        out.append(_section("forward pass", str(lowered.forward_graph)))
        out.append(_section("backward pass", str(lowered.backward_graph)))
    if options.cost:
        out.append(_section("cost", str(lowered.cost)))
    if options.dot:
        out.append(_section("graphviz", to_dot(lowered.graph)))
    if options.llvm:
        out.append(_section("LLVM IR", lowered.llvm_ir))
    if options.asm:
        out.append(_section("assembly", lowered.asm))
    return "\n".join(out)


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
