"""The `propc` command line."""
from __future__ import annotations

import sys

USAGE = """usage: propc <command> [options]

commands:
  demo    train an MLP on the bundled digits data with compiled forward/backward passes
  show    print the IR (and passes, LLVM IR, assembly) of a function
  bench   the benchmark table
"""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0
    print(f"propc: unknown command {argv[0]!r}\n" + USAGE, file=sys.stderr, end="")
    return 2
