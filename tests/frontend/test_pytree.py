"""Pytrees: flatten/unflatten/map/paths, and pytree inputs and outputs through
pc.interpret and pc.trace (ShapeDtype, Python scalars, caching per signature)."""
from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest

import propc as pc
from propc.pytree import tree_flatten, tree_map, tree_paths, tree_unflatten
from frontend_helpers import assert_same, run, sample

Pair = namedtuple("Pair", ["first", "second"])


def test_flatten_order_and_round_trip():
    tree = {"b": [1, (2, 3)], "a": None, "c": {"y": 4, "x": 5}, "d": Pair(6, [7])}
    leaves, treedef = tree_flatten(tree)
    assert leaves == [1, 2, 3, 5, 4, 6, 7]  # dict keys sorted, None has no leaves
    rebuilt = tree_unflatten(treedef, leaves)
    assert rebuilt == tree
    assert isinstance(rebuilt["d"], Pair) and isinstance(rebuilt["b"], list)
    assert treedef.num_leaves == 7


def test_structures_compare_and_hash():
    _, a = tree_flatten({"x": (1, 2), "y": [3]})
    _, b = tree_flatten({"y": [9], "x": (8, 7)})
    _, c = tree_flatten({"x": [1, 2], "y": [3]})
    assert a == b and hash(a) == hash(b)
    assert a != c


def test_unflatten_checks_leaf_count():
    _, treedef = tree_flatten((1, [2, 3]))
    with pytest.raises(ValueError, match="3 leaves, got 2"):
        tree_unflatten(treedef, [1, 2])


def test_paths_name_each_leaf():
    tree = ({"W": [1, 2], "b": 3}, None, 4)
    assert tree_paths(tree, "args") == ["args[0]['W'][0]", "args[0]['W'][1]", "args[0]['b']",
                                        "args[2]"]


def test_tree_map_passes_matching_subtrees_including_none():
    params = {"w": 1.0, "n": 5}
    grads = {"w": 0.5, "n": None}
    out = tree_map(lambda p, g: p if g is None else p - g, params, grads)
    assert out == {"w": 0.5, "n": 5}
    with pytest.raises(ValueError, match="structures differ"):
        tree_map(lambda p, g: p, params, {"w": 1.0})


def test_nested_pytree_inputs_and_outputs_through_interpret():
    params = {"layers": [(sample((3, 2), np.float32, 1), sample((2,), np.float32, 2))],
              "scale": np.float32(2.0)}
    x = sample((4, 3), np.float32, 3)

    def f(p, x):
        W, b = p["layers"][0]
        y = x @ W + b
        return {"y": y * p["scale"], "parts": (y.sum(), [None, y.max()])}

    got = run(f, params, x)
    y = x @ params["layers"][0][0] + params["layers"][0][1]
    assert set(got) == {"y", "parts"} and got["parts"][1][0] is None
    assert isinstance(got["parts"], tuple) and isinstance(got["parts"][1], list)
    assert_same(got["y"], y * np.float32(2.0), "y")
    assert_same(got["parts"][0], y.sum(), "sum")
    assert_same(got["parts"][1][1], y.max(), "max")


def test_constant_and_python_number_outputs():
    got = run(lambda x: (x, 3, 2.5, np.arange(3)), np.float32(1.0))
    assert_same(got[0], np.asarray(1.0, np.float32), "passthrough")
    assert got[1].dtype == np.int32 and got[1] == 3
    assert got[2].dtype == np.float32 and got[2] == 2.5
    assert_same(got[3], np.arange(3), "array constant")


def test_zero_d_results_are_zero_d_arrays():
    got = run(lambda x: x.sum(), np.ones(3, np.float32))
    assert type(got) is np.ndarray and got.shape == ()


def test_outputs_are_fresh_arrays():
    x = np.ones(3, np.float32)
    f = pc.interpret(lambda t: t)
    first = f(x)
    first[0] = 5.0
    assert x[0] == 1.0 and f(x)[0] == 1.0


def test_traces_once_per_signature():
    calls = []

    def f(x, n):
        calls.append(1)
        return x * n

    g = pc.interpret(f)
    x = np.ones(3, np.float32)
    g(x, 2)
    g(x + 1, 5)               # same signature: no retrace
    assert len(calls) == 1 and g.trace_count == 1
    g(np.ones(4, np.float32), 2)      # new shape
    g(x.astype(np.float64), 2)        # new dtype
    g(x, 2.0)                         # Python float instead of int
    assert len(calls) == 4 and g.trace_count == 4


def test_star_args_functions():
    f = pc.interpret(lambda *xs: sum(xs[1:], xs[0]))
    a, b, c = (sample((2,), np.float32, i) for i in range(3))
    assert_same(f(a, b, c), a + b + c, "*args")


def test_shape_dtype_in_trace():
    graph = pc.trace(lambda p: p["x"] @ p["W"], {"x": pc.ShapeDtype((4, 3)),
                                                  "W": pc.ShapeDtype((3, 2), np.float64)})
    assert [str(t) for t in graph.input_types] == ["f64[3,2]", "f32[4,3]"]  # keys sorted
    assert str(graph.output_types[0]) == "f64[4,2]"


def test_shape_dtype_validation():
    with pytest.raises(TypeError):
        pc.ShapeDtype((2,), np.float16)
    with pytest.raises(ValueError):
        pc.ShapeDtype((2, -1))
    assert pc.ShapeDtype(3).shape == (3,) and pc.ShapeDtype((2, 3)).dtype == np.float32


def test_bad_argument_leaves_name_their_path():
    f = pc.interpret(lambda p: p["W"][1] * 2)
    with pytest.raises(TypeError, match=r"args\[0\]\['W'\]\[1\].*str"):
        f({"W": [np.ones(2, np.float32), "oops"]})
    with pytest.raises(TypeError, match=r"args\[0\]\['W'\]\[0\].*float16"):
        f({"W": [np.ones(2, np.float16), np.ones(2, np.float32)]})
    with pytest.raises(TypeError, match=r"args\[0\].*ShapeDtype"):
        pc.interpret(lambda x: x)(pc.ShapeDtype((2,)))
    with pytest.raises(TypeError, match=r"args\[0\].*int32"):
        pc.interpret(lambda x: x)(2 ** 40)
    with pytest.raises(TypeError, match=r"complex"):
        pc.interpret(lambda x: x)(np.ones(2, np.complex64))


def test_non_contiguous_inputs():
    x = sample((4, 6), np.float32, 5)[:, ::2]
    assert_same(run(lambda t: t * 2, x), x * 2, "strided input")
