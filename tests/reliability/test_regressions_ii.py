"""Regression tests for the defects of issue 22 ("Reliability II") that need no
subprocess; each is named after its bug and failed before its fix. The hangs and
signals are in test_hangs_and_signals.py."""
from __future__ import annotations

import numpy as np
import pytest

import propc as pc


def test_regression_compiled_function_calling_itself_on_its_own_signature_recursed_forever():
    """True recursion (same signature, no base case) now stops with an error naming
    it instead of hanging or exhausting Python's stack."""
    f = pc.compile(lambda a: a * 2.0 + f(a).sum())
    with pytest.raises(pc.TraceError, match="calls itself on the signature"):
        f(np.ones((3, 4), np.float32))
