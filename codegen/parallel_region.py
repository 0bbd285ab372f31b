"""The library side of codegen/parallel.py: `propc.shared.parallel`, a libgomp
fork-join region whose threads claim chunks of work, with a guard for busy cores.

    void parallel(ptr body, ptr data, i64 threads, i64 chunks)

runs `body(data, chunk, chunks)` once for every chunk 0..chunks-1. With libgomp,
`GOMP_parallel` starts a team of up to `threads` threads that claim chunks from a
shared atomic counter; the calling thread (thread 0) starts claiming at once, so a
worker that wakes late finds its share already taken.

A late worker still has to arrive before the region can end. When the other cores
are busy with other processes that wait can be a scheduler time slice (ms), far
more than the work: the calling thread times each region and, when the region
(waking the team included) took longer than doing every chunk itself would have
(its own chunks' CPU time, scaled), runs the next regions serially, 1, 3, 7, ...
up to MAX_SERIAL_REGIONS of them before trying threads again; regions that pay
shrink that backoff again. Without libgomp every region runs serially.
"""
from __future__ import annotations

import llvmlite.ir as lir

from .matmul_ir import I32, I64, PTR, counted, declare, i64
from .parallel import BODY_TYPE, PARALLEL_TYPE

MAX_SERIAL_REGIONS = 63
# `skip` after a fork: libgomp's thread pool does not survive fork() (a child that
# starts a region hangs), so a forked child runs every region serially
FOREVER = 1 << 62
# a region "lost" when it took longer than the serial estimate (numerator/denominator)
LOST_NUMERATOR, LOST_DENOMINATOR = 1, 1

# process-wide state: regions still to run serially, the current backoff length
SKIP = "propc_parallel_skip"
BACKOFF = "propc_parallel_backoff"

# the block a region's threads share
_BODY, _DATA, _NEXT, _CHUNKS, _MASTER_BEGIN, _MASTER_END, _MASTER_CHUNKS = range(7)
_SLOTS = 7


def emit_parallel(module: lir.Module, gomp: bool) -> lir.Function:
    """Define the region function (see the module docstring) in `module`."""
    fn = lir.Function(module, PARALLEL_TYPE, name=module.get_unique_name("parallel"))
    fn.attributes.add("nounwind")
    body, data, threads, chunks = fn.args
    builder = lir.IRBuilder(fn.append_basic_block("entry"))
    if not gomp:
        _serial(builder, body, data, chunks)
        builder.ret_void()
        return fn
    alone = builder.or_(builder.icmp_signed("<=", threads, i64(1)),
                        builder.icmp_signed("<=", chunks, i64(1)))
    with builder.if_else(take_serial_turn(builder, alone)) as (then, otherwise):
        with then:
            _serial(builder, body, data, chunks)
        with otherwise:
            _fork(builder, body, data, threads, chunks, _global(module, SKIP),
                  _global(module, BACKOFF))
    builder.ret_void()
    return fn


def take_serial_turn(builder: lir.IRBuilder, alone: lir.Value) -> lir.Value:
    """Whether this region runs serially (an i1): `alone` (one thread asked for), or
    the backoff still has serial regions to run (then one is used up)."""
    skip = _global(builder.module, SKIP)
    pending = builder.load_atomic(skip, "monotonic", 8, typ=I64)
    backing_off = builder.and_(builder.not_(alone), builder.icmp_signed(">", pending, i64(0)))
    with builder.if_then(backing_off):
        builder.store_atomic(builder.sub(pending, i64(1)), skip, "monotonic", 8)
    return builder.or_(alone, backing_off)


def emit_serial_switch(module: lir.Module, name: str) -> lir.Function:
    """Define `void name()`: from now on every region of this process runs serially
    (called in the child after a fork; see FOREVER)."""
    fn = lir.Function(module, lir.FunctionType(lir.VoidType(), []), name=name)
    fn.attributes.add("nounwind")
    builder = lir.IRBuilder(fn.append_basic_block("entry"))
    builder.store_atomic(i64(FOREVER), _global(module, SKIP), "monotonic", 8)
    builder.ret_void()
    return fn


def _global(module: lir.Module, name: str) -> lir.GlobalVariable:
    """A zero-initialised i64 of the library (process-wide state; tests read it)."""
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    variable = lir.GlobalVariable(module, I64, name)
    variable.initializer = i64(0)
    variable.align = 8
    return variable


def _serial(builder: lir.IRBuilder, body, data, chunks) -> None:
    with counted(builder, i64(0), chunks, i64(1), "chunk") as chunk:
        call_body(builder, body, data, chunk, chunks)


def call_body(builder: lir.IRBuilder, body: lir.Value, data: lir.Value, chunk: lir.Value,
              chunks: lir.Value) -> None:
    """Call the region body held in pointer `body` (an indirect call)."""
    target = builder.inttoptr(builder.ptrtoint(body, I64), BODY_TYPE.as_pointer())
    builder.call(target, [data, chunk, chunks])


CLOCK_MONOTONIC = 1           # Linux clock ids
CLOCK_THREAD_CPUTIME_ID = 3


def _clock(builder: lir.IRBuilder, clock_id: int = CLOCK_MONOTONIC) -> lir.Value:
    """clock_gettime(clock_id) in nanoseconds (an i64)."""
    gettime = declare(builder.module, "clock_gettime", I32, [I32, PTR])
    spec = builder.alloca(lir.ArrayType(I64, 2))
    spec.type = PTR
    builder.call(gettime, [lir.Constant(I32, clock_id), spec])
    seconds = builder.load(builder.gep(spec, [i64(0)], source_etype=I64), typ=I64)
    nanoseconds = builder.load(builder.gep(spec, [i64(1)], source_etype=I64), typ=I64)
    return builder.add(builder.mul(seconds, i64(1_000_000_000)), nanoseconds)


def _fork(builder: lir.IRBuilder, body, data, threads, chunks, skip, backoff) -> None:
    """GOMP_parallel(trampoline, block, threads, 0), timed; then the backoff rule."""
    module = builder.module
    gomp_parallel = declare(module, "GOMP_parallel", lir.VoidType(), [PTR, PTR, I32, I32])
    block = builder.alloca(lir.ArrayType(I64, _SLOTS))
    block.type = PTR
    slot = [builder.gep(block, [i64(position)], source_etype=I64) for position in range(_SLOTS)]
    for position, value in ((_BODY, body), (_DATA, data), (_NEXT, i64(0)), (_CHUNKS, chunks),
                            (_MASTER_BEGIN, i64(0)), (_MASTER_END, i64(0)),
                            (_MASTER_CHUNKS, i64(0))):
        builder.store(value, slot[position])
    team = builder.select(builder.icmp_signed("<", chunks, threads), chunks, threads)
    start = _clock(builder)
    builder.call(gomp_parallel, [_trampoline(module), block, builder.trunc(team, I32),
                                 lir.Constant(I32, 0)])
    total = builder.sub(_clock(builder), start)
    own_time = builder.sub(builder.load(slot[_MASTER_END], typ=I64),
                           builder.load(slot[_MASTER_BEGIN], typ=I64))
    own_chunks = builder.load(slot[_MASTER_CHUNKS], typ=I64)
    # lost: total wall time (waking the team included) > own CPU time * chunks /
    # own_chunks: the calling thread alone, with a core to itself, would have been
    # faster (CPU time, not wall time: on a busy machine our own worker slows the
    # caller down too, and its wall time would flatter the region)
    lost = builder.icmp_signed(
        ">", builder.mul(builder.mul(total, own_chunks), i64(LOST_DENOMINATOR)),
        builder.mul(builder.mul(own_time, chunks), i64(LOST_NUMERATOR)))
    current = builder.load_atomic(backoff, "monotonic", 8, typ=I64)
    longer = builder.add(builder.mul(current, i64(2)), i64(1))
    longer = builder.select(builder.icmp_signed(">", longer, i64(MAX_SERIAL_REGIONS)),
                            i64(MAX_SERIAL_REGIONS), longer)
    shorter = builder.sdiv(current, i64(2))
    updated = builder.select(lost, longer, shorter)
    builder.store_atomic(updated, backoff, "monotonic", 8)
    with builder.if_then(lost):
        builder.store_atomic(updated, skip, "monotonic", 8)


def _trampoline(module: lir.Module) -> lir.Function:
    """The function each team thread runs: claim chunks until none is left; thread
    0 (the caller) records when it started and ran out and how many chunks it did."""
    name = "propc.parallel.trampoline"
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    fn = lir.Function(module, lir.FunctionType(lir.VoidType(), [PTR]), name=name)
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    builder = lir.IRBuilder(fn.append_basic_block("entry"))
    block = fn.args[0]
    slot = [builder.gep(block, [i64(position)], source_etype=I64) for position in range(_SLOTS)]
    body = builder.load(slot[_BODY], typ=PTR)
    data = builder.load(slot[_DATA], typ=PTR)
    chunks = builder.load(slot[_CHUNKS], typ=I64)
    thread_num = declare(module, "omp_get_thread_num", I32, [])
    caller = builder.icmp_signed("==", builder.call(thread_num, []), lir.Constant(I32, 0))
    with builder.if_then(caller):
        builder.store(_clock(builder, CLOCK_THREAD_CPUTIME_ID), slot[_MASTER_BEGIN])
    entry = builder.block
    loop = builder.append_basic_block("claim")
    work = builder.append_basic_block("work")
    done = builder.append_basic_block("done")
    builder.branch(loop)
    builder.position_at_end(loop)
    count = builder.phi(I64, name="done_chunks")
    count.add_incoming(i64(0), entry)
    chunk = builder.atomic_rmw("add", slot[_NEXT], i64(1), "monotonic")
    builder.cbranch(builder.icmp_signed("<", chunk, chunks), work, done)
    builder.position_at_end(work)
    call_body(builder, body, data, chunk, chunks)
    count.add_incoming(builder.add(count, i64(1)), work)
    builder.branch(loop)
    builder.position_at_end(done)
    with builder.if_then(caller):
        builder.store(_clock(builder, CLOCK_THREAD_CPUTIME_ID), slot[_MASTER_END])
        builder.store(count, slot[_MASTER_CHUNKS])
    builder.ret_void()
    return fn


__all__ = ["BACKOFF", "FOREVER", "MAX_SERIAL_REGIONS", "SKIP", "call_body", "emit_parallel",
           "emit_serial_switch", "take_serial_turn"]
