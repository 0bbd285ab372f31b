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

import re

import llvmlite.ir as lir

# characters that may continue an unquoted LLVM identifier
_IDENTIFIER_TAIL = r"(?![-A-Za-z$._0-9])"


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
        added = list(self.module.globals.values())[mark:]
        text = _canonical_text(added)
        earlier = self._by_text.get(text)
        if earlier is None:
            self._by_text[text] = function
            self._uses[function.name] = 1
            return function
        for value in added:
            del self.module.globals[value.name]
        self._uses[earlier.name] += 1
        if self._uses[earlier.name] == 2:
            earlier.attributes.add("noinline")
        self.shared += 1
        return earlier


def _canonical_text(values: list) -> str:
    """The printed globals with their own names replaced by numbered placeholders
    (longest reference first, so `@f.epilogue` is not read as `@f` + `.epilogue`)."""
    text = "\n".join(str(value) for value in values)
    references = sorted(((value.get_reference(), position)
                         for position, value in enumerate(values)),
                        key=lambda item: -len(item[0]))
    for reference, position in references:
        text = re.sub(re.escape(reference) + _IDENTIFIER_TAIL, f"@__own{position}", text)
    return text
