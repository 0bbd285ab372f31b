"""Identical kernels emitted once: a module-level table of kernel texts.

An unrolled loop (an RNN traced step by step, a chain of identical layers) plans
the same kernel many times over: same shapes, same expression, same strides, only
the buffers differ, and buffers are the kernel function's arguments. Every copy
used to reach LLVM, whose optimisation and code generation time grows with the
module: 600 identical small products cost ~20 s there.

`KernelTable.intern` is called right after a kernel's function (and whatever
helper functions it made, such as an sgemm epilogue callback or a parallel region)
has been emitted. It prints those new globals with their own names replaced by
placeholders; when an earlier kernel printed the same text, the new globals are
removed from the module and the earlier function is called instead. A kernel that
ends up called from more than one place is marked `noinline`, so the optimiser
sees its body once however often the graph runs it.

This is structural equality of LLVM IR text, so it is exact: two kernels are
shared only when the code they would compile to is the same. Kernels whose text
carries something of their own (a debug-mode kernel number, a constant) are never
shared.
"""
from __future__ import annotations

from itertools import islice

import llvmlite.ir as lir

from ..errors import CodegenError
from .release import release_function


class KernelTable:
    """The kernels already emitted into one module, keyed by their canonical text."""

    def __init__(self, module: lir.Module):
        self.module = module
        self._by_text: dict[str, lir.Function] = {}
        self._uses: dict[str, int] = {}
        self.shared = 0  # kernels served by an earlier identical one

    def mark(self) -> int:
        """A position in the module's globals; pass it to `intern` after emitting."""
        return len(self.module.globals)

    def intern(self, function: lir.Function, mark: int) -> lir.Function:
        """The function to call for `function`, emitted since `mark`: itself, or an
        identical earlier kernel (then everything emitted since `mark` is dropped)."""
        # the newest globals, read from the end: slicing the whole table here made
        # emitting n kernels quadratic in n
        added = list(islice(reversed(self.module.globals.values()),
                            len(self.module.globals) - mark))[::-1]
        text = _canonical_text(added)
        earlier = self._by_text.get(text)
        if earlier is None:
            self._by_text[text] = function
            self._uses[function.name] = 1
            return function
        for value in added:
            del self.module.globals[value.name]
            if isinstance(value, lir.Function):
                release_function(value)
        self._uses[earlier.name] += 1
        if self._uses[earlier.name] == 2:
            earlier.attributes.add("noinline")
        self.shared += 1
        return earlier


def _canonical_text(values: list) -> str:
    """The printed globals with their own names replaced by numbered placeholders.

    llvmlite quotes every global's name (`@"f"`), so a reference ends at its closing
    quote and is never the start of another (`@"f.epilogue"`): plain text
    replacement is exact. (A regular expression per kernel name recompiled a pattern
    for every kernel: Python's pattern cache holds 512.)"""
    text = "\n".join(str(value) for value in values)
    for position, value in enumerate(values):
        reference = value.get_reference()
        if not reference.endswith('"'):
            raise CodegenError(f"unquoted global reference {reference} in a kernel")
        text = text.replace(reference, f"@__own{position}")
    return text
