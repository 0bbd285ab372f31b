"""Static arguments (static_argnums / static_argnames) and keyword arguments of
compiled and interpreted functions, against NumPy written here."""
import numpy as np
import pytest

import propc as pc

from frontend_helpers import assert_same

X = np.linspace(-1.0, 1.0, 6, dtype=np.float32).reshape(2, 3)


def layer(x, activation, repeat, shape, flag):
    """A Python-configured function: a str, an int, a tuple and a bool steer tracing."""
    y = x.reshape(shape)
    for _ in range(repeat):
        y = pc.tanh(y) if activation == "tanh" else pc.nn.relu(y)
    if flag:
        y = y * 2.0
    return y


def numpy_layer(x, activation, repeat, shape, flag):
    y = x.reshape(shape)
    for _ in range(repeat):
        y = np.tanh(y) if activation == "tanh" else np.maximum(y, 0)
    return y * 2.0 if flag else y


@pytest.mark.parametrize("interpret", [False, True], ids=["compiled", "interpreted"])
def test_static_values_recompile_only_when_they_change(interpret):
    traces = []

    def counted(x, activation, repeat, shape, flag):
        traces.append((activation, repeat, shape, flag))
        return layer(x, activation, repeat, shape, flag)

    fn = pc.compile(counted, interpret=interpret, static_argnums=(1, 2), static_argnames=("shape",
                                                                                       "flag"))
    calls = [("tanh", 2, (3, 2), True), ("tanh", 2, (3, 2), True), ("relu", 2, (3, 2), True),
             ("relu", 1, (3, 2), True), ("relu", 1, (6,), True), ("relu", 1, (6,), False),
             ("tanh", 2, (3, 2), True)]
    for activation, repeat, shape, flag in calls:
        got = fn(X, activation, repeat, shape=shape, flag=flag)
        assert_same(got, numpy_layer(X, activation, repeat, shape, flag), str((activation, flag)))
    distinct = list(dict.fromkeys(calls))
    assert traces == distinct          # traced once per new static value, never again
    assert fn.cache_size == len(distinct)
    assert fn.compile_count == (0 if interpret else len(distinct))


def test_a_static_argument_passed_either_way():
    fn = pc.compile(layer, static_argnames=("activation", "repeat", "shape", "flag"))
    by_name = fn(X, activation="tanh", repeat=1, shape=(6,), flag=False)
    by_position = fn(X, "tanh", 1, (6,), False)
    assert_same(by_name, numpy_layer(X, "tanh", 1, (6,), False))
    assert_same(by_position, by_name)
    numbered = pc.compile(layer, static_argnums=(1, 2, 3, 4))
    assert_same(numbered(X, "relu", 1, shape=(3, 2), flag=True),
                numpy_layer(X, "relu", 1, (3, 2), True))


def test_unhashable_static_value_is_a_clear_error():
    fn = pc.compile(layer, static_argnums=(1, 2, 3, 4))
    with pytest.raises(TypeError, match=r"static argument args\[3\] has unhashable type list"):
        fn(X, "tanh", 1, [6], False)
    with pytest.raises(TypeError, match="static_argnums must be ints"):
        pc.compile(layer, static_argnums=("x",))


@pytest.mark.parametrize("make", [pc.compile, pc.interpret], ids=["compiled", "interpreted"])
def test_keyword_arguments_are_pytrees(make):
    def model(x, params=None, *, scale=1.0, shift):
        return {"y": (x @ params["W"] + params["b"]) * scale + shift[0]}

    params = {"W": np.ones((3, 4), np.float32), "b": np.arange(4, dtype=np.float32)}
    fn = make(model)
    got = fn(X, params=params, scale=2.0, shift=(np.float32(0.5),))
    want = (X @ params["W"] + params["b"]) * 2.0 + 0.5
    assert_same(got["y"], want.astype(np.float32))
    again = fn(X, shift=(np.float32(1.0),), scale=3.0, params=params)  # order does not matter
    assert_same(again["y"], ((X @ params["W"] + params["b"]) * 3.0 + 1.0).astype(np.float32))
    with pytest.raises(ValueError):        # a changed leaf shape is still checked
        fn(X, params={"W": np.ones((2, 4), np.float32), "b": params["b"]}, shift=(1.0,))


def test_lower_accepts_static_and_keyword_arguments():
    fn = pc.compile(layer, static_argnums=(1, 2, 3, 4))
    lowered = fn.lower(pc.ShapeDtype((2, 3)), "tanh", 3, (6,), flag=True)
    prims = [op.prim for op in lowered.graph.ops]
    assert prims.count("tanh") == 3


def test_branching_on_an_argument_hints_at_static_arguments():
    def f(x, flag):
        return x * 2.0 if flag else x

    with pytest.raises(pc.ConcretizationError, match=r"args\[1\].*static_argnums"):
        pc.compile(f)(X, True)
    with pytest.raises(pc.ConcretizationError) as info:     # not an argument: no such hint
        pc.compile(lambda x: x if x.sum() > 0 else -x)(X)
    assert "static_argnums" not in str(info.value)


def test_messages_name_keyword_arguments_by_name():
    fn = pc.compile(lambda x, flag=False, scale=1.0: x * scale if flag else x)
    with pytest.raises(pc.ConcretizationError, match=r"kwargs\['flag'\].*static_argnames"):
        fn(X, flag=True)
    with pytest.raises(TypeError, match=r"kwargs\['scale'\]: expected an array"):
        fn(X, scale="big")
