"""Counted loops and loop nests in LLVM IR.

Every loop here counts an i64 from 0 to a static trip count >= 1 and tests at the
bottom (callers skip nests with a zero-size axis, so no loop ever runs zero
times). Values can be carried around a loop as phi nodes (reduction accumulators).
This plain shape — one counter, constant bound, `nuw nsw` increment — is what
LLVM's loop vectoriser recognises without help.
"""
from __future__ import annotations

from typing import Callable, Sequence

import llvmlite.ir as lir

from .llvmtypes import I64, index

LoopBody = Callable[[lir.Value, list], list]
NestBody = Callable[[list, list], list]


def counted_loop(builder: lir.IRBuilder, count: int, body: LoopBody,
                 carried: Sequence[lir.Value] = ()) -> list:
    """`for i in range(count)`; `body(i, values) -> new values` for the carried ones.

    Returns the carried values after the last iteration.
    """
    if count < 1:
        raise ValueError(f"counted_loop needs a trip count >= 1, got {count}")
    entry = builder.block
    loop = builder.append_basic_block("loop")
    done = builder.append_basic_block("loop.end")
    builder.branch(loop)
    builder.position_at_end(loop)
    counter = builder.phi(I64, name="i")
    counter.add_incoming(index(0), entry)
    phis = []
    for value in carried:
        phi = builder.phi(value.type, name="acc")
        phi.add_incoming(value, entry)
        phis.append(phi)
    updated = list(body(counter, list(phis)))
    latch = builder.block
    following = builder.add(counter, index(1), name="i.next", flags=["nuw", "nsw"])
    counter.add_incoming(following, latch)
    for phi, value in zip(phis, updated):
        phi.add_incoming(value, latch)
    more = builder.icmp_unsigned("<", following, index(count))
    builder.cbranch(more, loop, done)
    builder.position_at_end(done)
    return updated


def loop_nest(builder: lir.IRBuilder, sizes: Sequence[int], body: NestBody,
              carried: Sequence[lir.Value] = ()) -> list:
    """Nested counted loops over `sizes` (outermost first).

    `body(counters, values) -> new values` runs at the innermost point; carried
    values thread through every level. An empty `sizes` runs the body once.
    """
    return _nest(builder, list(sizes), [], body, list(carried))


def _nest(builder, sizes: list[int], counters: list, body: NestBody, carried: list) -> list:
    if not sizes:
        return list(body(counters, carried))

    def one_level(counter, values):
        return _nest(builder, sizes[1:], counters + [counter], body, values)

    return counted_loop(builder, sizes[0], one_level, carried)
