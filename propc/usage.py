"""Reading a command line, shared by every `propc` command (demo, show, bench, export).

Its own module so that the commands and the dispatcher (propc/cli.py) both import it
and none imports the other's module: `cli` dispatches to the commands one way only.
"""
from __future__ import annotations

import argparse


class UsageError(Exception):
    """A bad command line: each command reports it in one line with exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing usage and exiting."""

    def error(self, message: str):
        raise UsageError(message)


def positive_integers(text: str, option: str, example: str) -> list[int]:
    """A comma-separated list of positive integers given to `option` (`--threads 1,2`);
    UsageError naming the option and an `example` of a good value otherwise."""
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        counts = []
    if not counts or any(count < 1 for count in counts):
        raise UsageError(f"{option} {text!r}: expected positive integers like {example}")
    return counts


__all__ = ["OneLineParser", "UsageError", "positive_integers"]
