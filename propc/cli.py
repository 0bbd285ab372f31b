"""The `propc` command line: `propc demo`, `propc show`, `propc bench`, `propc export`.

Only dispatch: each command's module reads its own arguments (with propc/usage.py)
and is imported here, lazily, so that `propc --version` stays light; no command
imports this module."""
from __future__ import annotations

import sys

USAGE = """usage: propc <command> [options]

commands:
  demo    train an MLP on the bundled digits data with compiled forward/backward passes
  show    print the IR (and passes, LLVM IR, assembly, cost) of a function
  bench   the benchmark table
  export  compile a function ahead of time into a shared library and C header

`propc <command> --help` describes each command's options; `propc --version`
prints the version.
"""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:  # a command is required: usage on stderr, like any other usage error
        print(USAGE, end="", file=sys.stderr)
        return 2
    if argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0
    if argv[0] in ("-V", "--version", "version"):
        from . import __version__
        print(f"propc {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    if command == "demo":
        from .demo import main as run
    elif command == "show":
        from .show import main as run
    elif command == "bench":
        from .bench import main as run
    elif command == "export":
        from .export_cli import main as run
    else:
        print(f"propc: unknown command {command!r} (try: demo, show, bench, export)", file=sys.stderr)
        return 2
    return run(rest)
