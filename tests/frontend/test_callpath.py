"""The generated per-signature call path of pc.compile (propc/callpath.py).

Oracle: the same function interpreted by propc (`pc.compile(fn, interpret=True)`,
which never takes the generated path) and plain NumPy written in the test. Each
test calls the compiled function more than once, so that the second call really
goes through the generated caller (asserted via `_fast`).
"""
from __future__ import annotations

import collections

import numpy as np
import pytest

import propc as pc
from propc.callpath import MISS

Pair = collections.namedtuple("Pair", "w b")
RNG = np.random.default_rng(7)


def _f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def _same_tree(got, want) -> None:
    assert type(got) is type(want)
    if isinstance(got, dict):
        assert list(got) == list(want)
        for key in got:
            _same_tree(got[key], want[key])
    elif isinstance(got, (tuple, list)):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            _same_tree(g, w)
    elif got is None:
        assert want is None
    else:
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def _check_twice(fn, *args) -> pc.Compiled:
    """Compiled twice-called == interpreted; the second call used the fast path."""
    compiled, interpreted = pc.compile(fn), pc.compile(fn, interpret=True)
    want = interpreted(*args)
    _same_tree(compiled(*args), want)
    assert compiled._fast is not None and compiled._fast(args) is not MISS
    _same_tree(compiled(*args), want)
    return compiled


def layer(params, x):
    return {"out": pc.tanh(x @ params["w"] + params["b"]), "norm": (x * x).sum()}


def test_dict_arguments_and_outputs_through_the_fast_path():
    params = {"w": _f32(3, 4), "b": _f32(4)}
    x = _f32(2, 3)
    compiled = _check_twice(layer, params, x)
    out = compiled(params, x)
    np.testing.assert_allclose(out["out"], np.tanh(x @ params["w"] + params["b"]), rtol=1e-5)


def test_namedtuples_lists_none_and_python_numbers():
    def step(pairs, x, scale, count, flag, nothing):
        y = x
        for pair in pairs:
            y = y @ pair.w + pair.b
        return [Pair(y * scale + count, pc.where(flag, y, -y)), None, (y.sum(),)]

    pairs = [Pair(_f32(3, 3), _f32(3)), Pair(_f32(3, 2), _f32(2))]
    _check_twice(step, pairs, _f32(4, 3), 0.5, 3, True, None)


def test_a_different_structure_or_type_is_a_miss_and_still_right():
    def fn(a, b):
        return a * 2 + b

    compiled = pc.compile(fn)
    x, y = _f32(3), _f32(3)
    np.testing.assert_allclose(compiled(x, y), x * 2 + y, rtol=1e-6)
    fast = compiled._fast
    assert fast((x, y)) is not MISS
    misses = [(x,), (x, y, y), [x, y], (x.astype(np.float64), y), (_f32(4), _f32(4)),
              (x, 2.0), (x, np.float32(2.0)), (pc.ShapeDtype((3,)), y)]
    for args in misses:
        assert fast(args) is MISS, args
    # the general path answers every one of them (or explains, for the wrong arity)
    np.testing.assert_allclose(compiled(x.astype(np.float64), y), x.astype(np.float64) * 2 + y)
    np.testing.assert_allclose(compiled(_f32(4) * 0 + 1, np.ones(4, np.float32)), 3.0)
    np.testing.assert_allclose(compiled(x, 2.0), x * 2 + 2.0, rtol=1e-6)
    with pytest.raises(TypeError):
        compiled(x)


def test_arrays_that_cannot_be_passed_as_they_are_are_converted():
    def fn(a):
        return a + 1.0

    compiled = pc.compile(fn)
    base = _f32(4, 6)
    compiled(np.ascontiguousarray(base[:, :3]))
    strided, fortran = base[:, ::2], np.asfortranarray(base[:, :3])
    swapped = base[:, :3].astype(">f4")
    for arg in (strided, fortran, swapped):
        # views are copied by the generated caller itself; another byte order is a
        # different dtype object, converted by the general path
        assert (compiled._fast((arg,)) is MISS) == (arg is swapped)
        np.testing.assert_array_equal(compiled(arg), np.asarray(arg, np.float32) + 1.0)


def test_python_ints_outside_int32_are_not_converted_silently():
    compiled = pc.compile(lambda a, n: a * n)
    x = np.arange(3, dtype=np.int32)
    np.testing.assert_array_equal(compiled(x, 5), x * 5)
    assert compiled._fast((x, 2 ** 31)) is MISS
    with pytest.raises(TypeError, match="int32"):
        compiled(x, 2 ** 31)


def test_alternating_signatures_each_stay_correct():
    compiled = pc.compile(lambda a: (a * a).sum(axis=0))
    small, large = _f32(2, 3), _f32(5, 7)
    for _ in range(3):
        np.testing.assert_allclose(compiled(small), (small * small).sum(axis=0), rtol=1e-5)
        np.testing.assert_allclose(compiled(large), (large * large).sum(axis=0), rtol=1e-5)
    assert compiled.compile_count == 2


def test_outputs_are_fresh_arrays_every_call():
    compiled = pc.compile(lambda a: a + 1.0)
    x = _f32(3)
    first, second = compiled(x), compiled(x)
    assert first is not second and not np.shares_memory(first, second)
    first[:] = 0
    np.testing.assert_allclose(second, x + 1.0, rtol=1e-6)


def test_the_generated_source_has_no_argument_values_in_it():
    params = {"w'); import os; ('": _f32(3, 4), "b": _f32(4)}

    def odd(params, x):
        return x @ params["w'); import os; ('"] + params["b"]

    compiled = _check_twice(odd, params, _f32(2, 3))
    assert "import os" not in compiled._fast.source


def _unaligned_f32(rows: int, cols: int) -> np.ndarray:
    raw = np.zeros(rows * cols * 4 + 1, np.uint8)[1:]
    array = raw.view(np.float32).reshape(rows, cols)
    array[...] = _f32(rows, cols)
    assert not array.flags.aligned
    return array


LEAF_KINDS = {
    "python float": lambda: 1.5,
    "python int": lambda: 3,
    "python bool": lambda: True,
    "numpy float32": lambda: np.float32(1.5),
    "numpy float64": lambda: np.float64(1.5),
    "numpy int32": lambda: np.int32(3),
    "numpy int64": lambda: np.int64(3),
    "numpy bool": lambda: np.bool_(True),
    "0-d array": lambda: np.array(1.5, np.float32),
    "strided view": lambda: _f32(3, 8)[:, ::2],
    "transposed": lambda: _f32(4, 3).T,
    "unaligned": lambda: _unaligned_f32(3, 4),
}


@pytest.mark.parametrize("kind", sorted(LEAF_KINDS))
def test_every_leaf_kind_takes_the_fast_path(kind):
    """After the first call of a signature, calls with a leaf of each kind run the
    generated caller (no general-path entry) and agree with NumPy."""
    x = _f32(3, 4)
    compiled = pc.compile(lambda x, s: x * s + 1)
    leaf = LEAF_KINDS[kind]()
    compiled(x, leaf)
    slow = compiled.slow_calls
    for _ in range(3):
        got = compiled(x, leaf)
    assert compiled.slow_calls == slow, f"{kind} left the fast path"
    want = pc.compile(lambda x, s: x * s + 1, interpret=True)(x, leaf)
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, np.asarray(x * np.asarray(leaf) + 1, want.dtype),
                               rtol=1e-6)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_a_scalar_of_another_type_leaves_the_fast_path_and_recompiles():
    compiled = pc.compile(lambda x, s: x * s)
    x = _f32(2, 2)
    compiled(x, np.float32(2.0))
    compiled(x, np.float32(3.0))
    assert compiled.compile_count == 1
    got = compiled(x, np.float64(2.0))        # a strong float64 scalar promotes
    assert got.dtype == np.float64 and compiled.compile_count == 2


def _leaf_containers(count: int):
    arrays = {f"k{i}": _f32(i % 3 + 1, 2) for i in range(count)}
    listed = [_f32(2) for _ in range(count)]
    return arrays, listed


def _many_leaves(d, listed):
    return {k: v * 2.0 for k, v in d.items()}, [x + 1.0 for x in listed], tuple(listed)


def test_containers_of_many_leaves_are_read_and_rebuilt_by_loops():
    """Dicts, lists and tuples of more than UNROLLED_LEAVES arrays in and out: the
    generated caller loops over a table rather than writing lines per leaf
    (CPython's compile time grows faster than the function: 2,000 leaves took 5x
    the time of 500), so its source is as long for 400 leaves as for 40, and it
    still checks every leaf."""
    from propc.callpath import UNROLLED_LEAVES
    assert UNROLLED_LEAVES < 40
    sources = []
    for count in (40, 400):
        arrays, listed = _leaf_containers(count)
        compiled = _check_twice(_many_leaves, arrays, listed)
        sources.append(compiled._fast.source)
        wrong_shape = dict(arrays, k37=_f32(5, 2))
        wrong_key = {("x" if key == "k39" else key): value for key, value in arrays.items()}
        assert compiled._fast((wrong_shape, listed)) is MISS
        assert compiled._fast((wrong_key, listed)) is MISS
        assert compiled._fast((arrays, listed[:-1])) is MISS
        strided = dict(arrays, k38=_f32(arrays["k38"].shape[0], 4)[:, ::2])
        got = compiled._fast((strided, listed))
        _same_tree(got, pc.compile(_many_leaves, interpret=True)(strided, listed))
    assert len(sources[0].splitlines()) == len(sources[1].splitlines())
