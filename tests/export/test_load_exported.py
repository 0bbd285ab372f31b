"""`propc.load_exported`: the exported library called from Python with the original
signature (pytrees in and out), in a process that never imports the compiler,
from 4 threads at once, with argument errors named like pc.compile's."""
from __future__ import annotations

import collections
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import propc as pc

from export_harness import CC

pytestmark = pytest.mark.skipif(CC is None, reason="needs a C compiler (cc or gcc)")

Result = collections.namedtuple("Result", ["scores", "total"])
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def scores(p, x, scale):
    """A dict argument, a Python-float argument and a namedtuple result with a
    nested tuple: the pytrees the manifest has to carry."""
    hidden = pc.tanh(x @ p["w"] + p["b"])
    return Result(hidden * scale, (hidden.sum(axis=1), (x > 0).astype(np.int32).sum()))


def sample(seed: int):
    rng = np.random.default_rng(seed)
    p = {"w": rng.standard_normal((7, 9)).astype(np.float32),
         "b": rng.standard_normal(9).astype(np.float32)}
    return p, rng.standard_normal((5, 7)).astype(np.float32)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    directory = tmp_path_factory.mktemp("scores")
    p, x = sample(0)
    pc.export(scores, p, x, 0.5, path=str(directory), name="scores")
    return str(directory)


def _assert_same_tree(got, want):
    assert type(got).__name__ == type(want).__name__
    got_leaves, want_leaves = pc.pytree.tree_leaves(got), pc.pytree.tree_leaves(want)
    assert len(got_leaves) == len(want_leaves)
    for a, b in zip(got_leaves, want_leaves):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a, b)


def test_loaded_function_has_the_original_signature(exported):
    p, x = sample(1)
    loaded = pc.load_exported(os.path.join(exported, "scores.so"))
    got = loaded(p, x, 0.25)
    want = pc.compile(scores)(p, x, 0.25)
    assert got._fields == ("scores", "total")
    _assert_same_tree(got, want)
    _assert_same_tree(pc.load_exported(exported)(p, x, 0.25), want)  # by directory


_CHILD = """
import sys
import numpy as np
import propc
loaded = propc.load_exported(sys.argv[1])
data = np.load(sys.argv[2])
result = loaded({"w": data["w"], "b": data["b"]}, data["x"], 0.75)
leaked = [name for name in ("ir", "codegen", "llvmlite") if name in sys.modules]
assert not leaked, leaked
np.savez(sys.argv[3], scores=result.scores, sums=result.total[0], count=result.total[1])
"""


def test_loading_needs_neither_ir_nor_codegen(exported, tmp_path):
    p, x = sample(2)
    np.savez(tmp_path / "in.npz", w=p["w"], b=p["b"], x=x)
    environment = dict(os.environ, PYTHONPATH=ROOT)
    result = subprocess.run([sys.executable, "-c", _CHILD, exported, str(tmp_path / "in.npz"),
                             str(tmp_path / "out.npz")], capture_output=True, text=True,
                            timeout=120, env=environment)
    assert result.returncode == 0, result.stderr
    found = np.load(tmp_path / "out.npz")
    want = pc.compile(scores)(p, x, 0.75)
    assert np.array_equal(found["scores"], want.scores)
    assert np.array_equal(found["sums"], want.total[0])
    assert np.array_equal(found["count"], want.total[1])


def test_four_threads_call_one_loaded_function(exported):
    loaded = pc.load_exported(exported)
    compiled = pc.compile(scores)
    cases = [sample(10 + i) for i in range(4)]
    expected = [compiled(p, x, 1.5) for p, x in cases]
    barrier = threading.Barrier(4)
    failures: list[str] = []

    def work(index: int) -> None:
        p, x = cases[index]
        barrier.wait()
        for _ in range(200):
            got = loaded(p, x, 1.5)
            if not (np.array_equal(got.scores, expected[index].scores)
                    and np.array_equal(got.total[0], expected[index].total[0])):
                failures.append(f"thread {index}")
                return

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures


def test_bad_arguments_name_the_leaf(exported):
    loaded = pc.load_exported(exported)
    p, x = sample(3)
    with pytest.raises(ValueError, match=r"args\[1\].*shape \(5, 7\).*\(4, 7\)"):
        loaded(p, x[:4], 0.5)
    with pytest.raises(TypeError, match=r"args\[0\]\['w'\].*float32.*float64"):
        loaded({"w": p["w"].astype(np.float64), "b": p["b"]}, x, 0.5)
    with pytest.raises(TypeError, match="structure"):
        loaded(p, x)
    # non-contiguous inputs are copied, like pc.compile does
    wide = np.zeros((5, 14), np.float32)
    wide[:, ::2] = x
    _assert_same_tree(loaded(p, wide[:, ::2], 0.5), pc.compile(scores)(p, x, 0.5))


def test_submodule_import_first_keeps_the_public_function():
    """`import propc.compile` (a submodule) before the namespace is loaded must not
    leave `propc.compile` naming the module (propc/__init__.py's _Package)."""
    code = ("import types, propc.compile, propc\n"
            "assert not isinstance(propc.compile, types.ModuleType), propc.compile\n"
            "assert propc.compile.__name__ == 'compile'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, env=dict(os.environ, PYTHONPATH=ROOT))
    assert result.returncode == 0, result.stderr
