"""Compile FUNC ahead of time into DIR/NAME.so, NAME.o, NAME.h and NAME.json.

    propc export FILE.py:FUNC --arg f32[32,64] ... -o DIR [--name N] [--cpu C] [--threads T]

runs pc.export. One `--arg` per positional parameter of FUNC, in order (the
`propc show` syntax); `--cpu` is `host` (this machine) or an x86-64 level
(x86-64, x86-64-v2, v3, v4); `--threads` > 1 needs libgomp.
"""
from __future__ import annotations

import argparse
import sys

from codegen.target import CPU_CHOICES

from .usage import OneLineParser, UsageError
from .show import load_function, parse_arg_spec


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="propc export", description=__doc__.splitlines()[0])
    p.add_argument("target", help="FILE.py:FUNC")
    p.add_argument("--arg", action="append", default=[], metavar="SPEC",
                   help="an argument by dtype and shape, e.g. f32[32,64] (one per argument)")
    p.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="the directory to write NAME.so, NAME.o, NAME.h, NAME.json into")
    p.add_argument("--name", default="model", help="file and C symbol prefix (default: model)")
    p.add_argument("--cpu", default="host", choices=CPU_CHOICES,
                   help="the CPU to compile for (default: host)")
    p.add_argument("--threads", type=int, default=1,
                   help="threads for big products and loops (default 1: no libgomp)")
    return p


def export_command(options: argparse.Namespace) -> list[str]:
    """Run the export; returns the lines to print (the files written)."""
    import propc as pc
    fn = load_function(options.target)
    specs = [parse_arg_spec(a) for a in options.arg]
    files = pc.export(fn, *specs, path=options.output, name=options.name, cpu=options.cpu,
                      threads=options.threads)
    return [f"wrote {path}" for path in (files.library, files.object, files.header,
                                         files.manifest)]


def main(argv: list[str]) -> int:
    try:
        for line in export_command(build_parser().parse_args(argv)):
            print(line)
    except UsageError as err:
        print(f"propc export: {err}", file=sys.stderr)
        return 2
    except (TypeError, ValueError, OSError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"propc export: {type(err).__name__}: {first}", file=sys.stderr)
        return 2
    return 0
