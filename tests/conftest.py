"""Suite-wide test setup.

1. `tests/ir` goes on sys.path so `from graph_strategies import graphs` works from
   any test folder (the random-graph strategies live in tests/ir/graph_strategies.py).
2. The text round trip is asserted for every graph the test suite builds: every
   `ir.Graph` constructed during a test is recorded (the first RECORD_LIMIT per
   test), and when the test ends each one that `ir.verify` accepts must satisfy
   `ir.parse(str(g)) == g` and print back to the same text. Graphs that are
   deliberately malformed (verify rejects them), very large, or holding large
   constants are skipped, so the check stays cheap.
3. `PROPC_CACHE_DIR` points at a temporary directory for the session, so tests
   never read or write the user's compile cache.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "ir"))

import ir  # noqa: E402

RECORD_LIMIT = 64
MAX_OPS = 2000
MAX_CONSTANT_ELEMENTS = 20_000
SHOWN_LINES = 40

_recorded: list[ir.Graph] = []
_cache_dir: str | None = None
_original_init = ir.Graph.__init__


def _recording_init(self, *args, **kwargs):
    _original_init(self, *args, **kwargs)
    if len(_recorded) < RECORD_LIMIT:
        _recorded.append(self)


def pytest_configure(config):
    ir.Graph.__init__ = _recording_init
    # Tests never touch the user's compile cache: one throwaway cache per session
    # (subprocesses started by tests inherit it).
    global _cache_dir
    _cache_dir = tempfile.mkdtemp(prefix="propc-test-cache-")
    os.environ["PROPC_CACHE_DIR"] = _cache_dir


def pytest_unconfigure(config):
    ir.Graph.__init__ = _original_init
    if _cache_dir is not None:
        shutil.rmtree(_cache_dir, ignore_errors=True)


def _too_big(graph: ir.Graph) -> bool:
    if len(graph.ops) > MAX_OPS:
        return True
    constant_elements = sum(op.attrs["value"].size for op in graph.ops
                            if op.prim == "constant" and "value" in op.attrs
                            and hasattr(op.attrs["value"], "size"))
    return constant_elements > MAX_CONSTANT_ELEMENTS


def _excerpt(text: str) -> str:
    lines = text.split("\n")
    if len(lines) <= SHOWN_LINES:
        return text
    return "\n".join(lines[:SHOWN_LINES] + [f"... ({len(lines) - SHOWN_LINES} more lines)"])


def check_roundtrip(graph: ir.Graph) -> None:
    """Assert `ir.parse(str(graph)) == graph` for a well-formed, not too big graph."""
    try:
        ir.verify(graph)
    except ir.VerifyError:
        return
    if _too_big(graph):
        return
    text = str(graph)
    try:
        parsed = ir.parse(text)
    except ir.ParseError as err:
        pytest.fail(f"ir.parse failed on a graph built by this test: {err}\n{_excerpt(text)}")
    assert parsed == graph, f"ir.parse(str(g)) != g for:\n{_excerpt(text)}"
    assert str(parsed) == text, f"str(ir.parse(str(g))) != str(g) for:\n{_excerpt(text)}"


@pytest.fixture(autouse=True)
def _graph_text_roundtrip():
    """Check the text round trip of the graphs each test builds (see module doc)."""
    _recorded.clear()
    yield
    graphs = list(_recorded)
    _recorded.clear()
    for graph in graphs:
        check_roundtrip(graph)
