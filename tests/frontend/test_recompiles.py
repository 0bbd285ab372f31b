"""Recompiles say so, the per-function cache is bounded, mixed precision warns
(propc/recompiles.py). Results are checked against NumPy throughout."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import propc as pc


def _double_sum(x):
    return (x * 2.0).sum()


def _ones(n: int, dtype=np.float32) -> np.ndarray:
    return np.arange(n, dtype=dtype)


def test_recompiles_warn_from_the_configured_count_naming_the_leaf():
    f = pc.compile(_double_sum)
    f.warn_recompiles_after = 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in (3, 4):                              # the first compile and recompile 1
            assert f(_ones(n)) == pytest.approx(2 * np.arange(n).sum())
        assert not [w for w in caught if issubclass(w.category, pc.RecompileWarning)]
        f(_ones(5))                                   # recompile 2: warned
    (warning,) = [w for w in caught if issubclass(w.category, pc.RecompileWarning)]
    text = str(warning.message)
    assert "_double_sum" in text and "2 recompiles" in text
    assert "args[0] changed from f32[4] to f32[5]" in text
    assert warning.filename == __file__               # points at the user's call


def test_the_default_warns_from_the_third_recompile():
    f = pc.compile(_double_sum)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in range(1, 6):
            f(_ones(n))
    counts = [str(w.message) for w in caught if issubclass(w.category, pc.RecompileWarning)]
    assert len(counts) == 2 and "3 recompiles" in counts[0] and "4 recompiles" in counts[1]


def test_static_argument_changes_count_as_recompiles_of_the_function():
    f = pc.compile(lambda x, k: x * k, static_argnums=1)
    f.warn_recompiles_after = 1
    x = _ones(3)
    f(x, 2)
    with pytest.warns(pc.RecompileWarning, match=r"static arguments are now args\[1\]=3"):
        np.testing.assert_array_equal(f(x, 3), x * 3)


def test_the_signature_cache_forgets_the_least_recently_used():
    f = pc.compile(lambda x: x + 1.0)
    f.max_signatures = 2
    a, b, c = _ones(1), _ones(2), _ones(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pc.RecompileWarning)
        f(a), f(b), f(a), f(c)                       # b is the least recently used
        assert f.cache_size == 2 and f.compile_count == 3
        np.testing.assert_array_equal(f(a), a + 1)    # kept: no compile
        assert f.compile_count == 3
        np.testing.assert_array_equal(f(b), b + 1)    # forgotten: compiled again
        assert f.compile_count == 4 and f.cache_size == 2
        np.testing.assert_array_equal(f(c), c + 1)    # c was evicted by b's return
    assert len(f._bound) <= 2


def test_float64_data_next_to_float32_parameters_warns_once():
    f = pc.compile(lambda w, x: (w * x).sum())
    w = _ones(4)
    with pytest.warns(pc.PrecisionWarning, match=r"float64 args\[1\] next to float32 args\[0\]"):
        got = f(w, _ones(4, np.float64))
    assert got.dtype == np.float64 and got == pytest.approx(float((w * np.arange(4.0)).sum()))
    with warnings.catch_warnings():
        warnings.simplefilter("error", pc.PrecisionWarning)
        f(w[:2], _ones(2, np.float64))                # once per function
        pc.compile(lambda x: x.sum())(_ones(3, np.float64))   # all float64: meant so
        pc.compile(lambda w, s: w * s)(w, 2.0)        # a weak Python float: no promotion
