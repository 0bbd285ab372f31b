"""Bad input to compiled functions: a clear exception or a correct result, never a
crash. The matrix of cases is in bad_input_rows.py.

Rows run in a child process, so a segfault or an abort fails a test instead of
killing pytest. To keep the suite fast, all rows first run in ONE child, which
prints one JSON line per finished row; a row whose line is missing (the child
died on it, or before it) is run again alone in a fresh child, and its test fails
with the child's exit status and stderr if that one dies too.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from bad_input_rows import PRELUDE, ROWS
from propc.compile import compile
from propc.pytree import tree_flatten

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHILD_TIMEOUT_S = 300

CHILD = r"""
import json, sys, traceback
rows = json.load(sys.stdin)
prelude = {"__name__": "prelude"}
exec(compile(PRELUDE_SOURCE, "prelude.py", "exec"), prelude)
for name, source in rows:
    outcome = {"row": name, "raised": None, "mro": [], "message": ""}
    try:
        exec(compile(source, "row_" + name + ".py", "exec"), dict(prelude))
    except BaseException as err:
        outcome.update(raised=type(err).__name__,
                       mro=[cls.__name__ for cls in type(err).__mro__],
                       message=str(err), where=traceback.format_exc()[-2000:])
    print(json.dumps(outcome), flush=True)
"""


def run_child(rows: list[tuple[str, str]]) -> tuple[dict[str, dict], subprocess.CompletedProcess]:
    """Run `rows` (name, source) in one child; the outcomes it printed, by row name."""
    script = CHILD.replace("PRELUDE_SOURCE", repr(PRELUDE))
    done = subprocess.run([sys.executable, "-c", script], input=json.dumps(rows), text=True,
                          capture_output=True, cwd=REPO, timeout=CHILD_TIMEOUT_S)
    outcomes = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            outcome = json.loads(line)
            outcomes[outcome["row"]] = outcome
    return outcomes, done


@pytest.fixture(scope="module")
def batch_outcomes() -> dict[str, dict]:
    outcomes, _ = run_child([(name, source) for name, source, _, _ in ROWS])
    return outcomes


@pytest.mark.parametrize("name,source,expected,fragments", ROWS, ids=[row[0] for row in ROWS])
def test_bad_input_row(batch_outcomes, name, source, expected, fragments):
    outcome = batch_outcomes.get(name)
    if outcome is None:
        alone, done = run_child([(name, source)])
        outcome = alone.get(name)
        if outcome is None:
            pytest.fail(f"row {name}: the child process died (exit status {done.returncode})\n"
                        f"{done.stderr[-3000:]}")
    if expected is None:
        assert outcome["raised"] is None, (
            f"row {name} raised {outcome['raised']}: {outcome['message']}\n{outcome['where']}")
        return
    assert outcome["raised"] is not None, f"row {name}: no exception, expected {expected}"
    assert expected in outcome["mro"], (
        f"row {name}: raised {outcome['raised']} ({outcome['message']}), expected {expected}"
        f"\n{outcome['where']}")
    for fragment in fragments:
        assert fragment in outcome["message"], (
            f"row {name}: message {outcome['message']!r} does not mention {fragment!r}")


def test_crashing_row_fails_its_test_instead_of_pytest():
    """The harness itself: a row that kills its process shows up as a dead child."""
    outcomes, done = run_child([("abort", "import os; os.abort()"), ("after", "pass")])
    assert "abort" not in outcomes and "after" not in outcomes
    assert done.returncode != 0


OUTPUT_CASES = {
    "identity": lambda a: a,
    "same value twice": lambda a: (a, a),
    "reshape": lambda a: a.reshape(3, 2),
    "transpose": lambda a: a.T,
    "slice": lambda a: a[:, 1:],
    "constant": lambda a: (a * 0 + 1, a * 0 + 1),
    "pytree": lambda a: {"p": a, "q": [a, a.T]},
}


@pytest.mark.parametrize("name", sorted(OUTPUT_CASES))
def test_outputs_are_fresh_arrays_sharing_memory_with_nothing(name):
    """SPEC: returned arrays are fresh and owned by the caller, even when the
    function returns its input, a view of it, or one value twice."""
    fn = compile(OUTPUT_CASES[name])
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    first, second = tree_flatten(fn(x))[0], tree_flatten(fn(x))[0]
    arrays = first + second
    for i, array in enumerate(arrays):
        assert isinstance(array, np.ndarray) and array.flags.writeable
        assert not np.shares_memory(array, x), f"{name}: output {i} aliases the input"
        for j in range(i + 1, len(arrays)):
            assert not np.shares_memory(array, arrays[j]), f"{name}: outputs {i}, {j} alias"
    first[0][...] = -1  # the caller owns it: writing changes nothing else
    assert np.array_equal(x, np.arange(6, dtype=np.float32).reshape(2, 3))
    assert not np.array_equal(tree_flatten(fn(x))[0][0], first[0])
