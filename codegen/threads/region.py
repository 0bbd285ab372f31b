"""The library side of codegen/threads/host.py: `propc.shared.parallel`, a fork-join
region whose threads claim chunks of work, with a guard for busy cores.

    void parallel(ptr body, ptr data, i64 threads, i64 chunks)

runs `body(data, chunk, chunks)` once for every chunk 0..chunks-1. The threads
share a job block (`BLOCK_SLOTS` i64 slots, see the layout below): they claim
chunks by decrementing its `REMAINING` counter, so the calling thread starts
claiming at once and a worker that arrives late finds its share already taken.
Who the other threads are:
- when the calling thread owns the process's thread pool for a compiled call
  (codegen/threads/pool.py), the job is posted to the pool's block, whose
  workers are already waiting, spinning: a region costs a cache-line handoff;
- otherwise `GOMP_parallel` starts a libgomp team of up to `threads` threads for
  this region alone (waking sleeping threads: tens of µs here).

A worker that claimed a chunk still has to finish it before the region can end.
When the other cores are busy with other processes that wait can be a scheduler
time slice (ms), far more than the work: the calling thread times each region and,
when the region took longer than doing every chunk itself would have (its own
chunks' CPU time, scaled), runs the next regions serially, 1, 3, 7, ... up to
MAX_SERIAL_REGIONS of them before trying threads again; regions that pay shrink
that backoff again. (A libgomp region whose workers took nothing also counts as
lost: it paid for waking them. A pool region did not: its workers cost nothing
when they do not come.) A pool region also runs serially, without waiting to
lose, while no worker has looked for work for ABSENT_AFTER_NS (its core is taken,
or it sleeps) and for CONTENDED_HOLD_NS after a worker found it had been
preempted (`take_serial_turn`). Without libgomp every region runs serially.
"""
from __future__ import annotations

import llvmlite.binding as llvm
import llvmlite.ir as lir

from ..kernels.matmul_ir import I32, I64, PTR, counted, declare, i64
from .host import BODY_TYPE, PARALLEL_TYPE

MAX_SERIAL_REGIONS = 63
# `skip` after a fork: neither libgomp's threads nor the pool's survive fork() (a
# child that started a region would hang), so a forked child runs every region serially
FOREVER = 1 << 62
# a region "lost" when it took longer than the serial estimate (numerator/denominator)
LOST_NUMERATOR, LOST_DENOMINATOR = 1, 1

# process-wide state: regions still to run serially, the current backoff length
SKIP = "propc_parallel_skip"
BACKOFF = "propc_parallel_backoff"
# the thread pool's block (codegen/threads/pool.py), laid out as a job block
POOL = "propc_pool"

# The job block, in i64 slots; each group of eight is one cache line, so the
# counters the threads hammer do not share a line with what they only read.
REMAINING, ACTIVE = 0, 1       # chunks not yet claimed (<= 0: none); pool: team size
DONE = 8                       # chunks finished
BODY, DATA, CHUNKS, CALLER_BEGIN, CALLER_END, CALLER_CHUNKS = 16, 17, 18, 19, 20, 21
OWNER, EPOCH, SLEEPERS, WORKERS = 24, 25, 26, 27   # the pool's own slots
HEARTBEAT = 32                 # pool: when a waiting worker last looked for work (ns)
TIDS = 33                      # pool: the first MAX_PINNED workers' thread ids
PINNED = 40                    # pool: 1 while such a worker's CPUs are narrowed
MAX_PINNED = 7
CONTENDED = 47                 # pool: when a worker last found it had been off its core
BLOCK_SLOTS = 48
# a pool worker that has not looked for work for this long is off its core (another
# process has it, or it sleeps): the region runs serially rather than wait for it
ABSENT_AFTER_NS = 300_000
# ... and for this long after a worker found it had been preempted (the cores are
# busy with other processes: a worker there would run its chunks late)
CONTENDED_HOLD_NS = 50_000_000
BLOCK_ALIGN = 64


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
            _threaded(builder, body, data, threads, chunks)
    builder.ret_void()
    return fn


def take_serial_turn(builder: lir.IRBuilder, alone: lir.Value) -> lir.Value:
    """Whether this region runs serially (an i1): `alone` (one thread asked for),
    the backoff still has serial regions to run (then one is used up), or the
    calling thread holds the pool and its workers are not on a core now."""
    skip = global_i64(builder.module, SKIP)
    pending = builder.load_atomic(skip, "monotonic", 8, typ=I64)
    backing_off = builder.and_(builder.not_(alone), builder.icmp_signed(">", pending, i64(0)))
    with builder.if_then(backing_off):
        builder.store_atomic(builder.sub(pending, i64(1)), skip, "monotonic", 8)
    return builder.or_(builder.or_(alone, backing_off), _workers_absent(builder))


def _workers_absent(builder: lir.IRBuilder) -> lir.Value:
    """The calling thread holds the pool and no worker looked for work lately, or
    one was preempted lately."""
    pool = pool_block(builder.module)
    now = clock(builder)
    beat = builder.load_atomic(slot(builder, pool, HEARTBEAT), "monotonic", 8, typ=I64)
    contended = builder.load_atomic(slot(builder, pool, CONTENDED), "monotonic", 8, typ=I64)
    stale = builder.icmp_signed(">", builder.sub(now, beat), i64(ABSENT_AFTER_NS))
    busy = builder.icmp_signed("<", builder.sub(now, contended), i64(CONTENDED_HOLD_NS))
    return builder.and_(pool_owned_here(builder), builder.or_(stale, busy))


def emit_serial_switch(module: lir.Module, name: str) -> lir.Function:
    """Define `void name()`: from now on every region of this process runs serially
    (called in the child after a fork; see FOREVER)."""
    fn = lir.Function(module, lir.FunctionType(lir.VoidType(), []), name=name)
    fn.attributes.add("nounwind")
    builder = lir.IRBuilder(fn.append_basic_block("entry"))
    builder.store_atomic(i64(FOREVER), global_i64(module, SKIP), "monotonic", 8)
    builder.ret_void()
    return fn


def global_i64(module: lir.Module, name: str, slots: int = 1) -> lir.GlobalVariable:
    """A zero-initialised i64 (or cache-line aligned array of `slots` i64) of the
    library: process-wide state, which tests read."""
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    kind = I64 if slots == 1 else lir.ArrayType(I64, slots)
    variable = lir.GlobalVariable(module, kind, name)
    variable.initializer = lir.Constant(kind, None)
    variable.align = 8 if slots == 1 else BLOCK_ALIGN
    if slots > 1:
        variable.type = PTR  # llvmlite 0.50 types globals with typed pointers; GEPs want ptr
    return variable


def slot(builder: lir.IRBuilder, block: lir.Value, position: int) -> lir.Value:
    """Address of i64 slot `position` of a job block."""
    return builder.gep(block, [i64(position)], source_etype=I64)


def store_atomic(builder: lir.IRBuilder, value: lir.Value, address: lir.Value,
                 ordering: str) -> None:
    """An atomic store of an integer through any pointer (llvmlite's store_atomic
    wants a typed one)."""
    typed = builder.bitcast(address, PTR)
    typed.type = lir.PointerType(value.type)  # the same `ptr` to LLVM
    builder.store_atomic(value, typed, ordering, value.type.width // 8)


def pool_block(module: lir.Module) -> lir.Value:
    """The pool's job block (a pointer)."""
    return global_i64(module, POOL, BLOCK_SLOTS)


def cpu_relax(builder: lir.IRBuilder) -> None:
    """A spin-wait hint (x86 `pause`); nothing on other targets."""
    if llvm.get_default_triple().startswith(("x86_64", "i686", "i386")):
        builder.call(declare(builder.module, "llvm.x86.sse2.pause", lir.VoidType(), []), [])


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


def clock(builder: lir.IRBuilder, clock_id: int = CLOCK_MONOTONIC) -> lir.Value:
    """clock_gettime(clock_id) in nanoseconds (an i64)."""
    gettime = declare(builder.module, "clock_gettime", I32, [I32, PTR])
    with builder.goto_entry_block():  # not in the loop that calls it: the stack would grow
        spec = builder.alloca(lir.ArrayType(I64, 2))
    spec.type = PTR
    builder.call(gettime, [lir.Constant(I32, clock_id), spec])
    seconds = builder.load(builder.gep(spec, [i64(0)], source_etype=I64), typ=I64)
    nanoseconds = builder.load(builder.gep(spec, [i64(1)], source_etype=I64), typ=I64)
    return builder.add(builder.mul(seconds, i64(1_000_000_000)), nanoseconds)


def pool_owned_here(builder: lir.IRBuilder) -> lir.Value:
    """Whether the calling thread owns the thread pool now (an i1)."""
    self_id = builder.call(declare(builder.module, "pthread_self", I64, []), [])
    owner = builder.load_atomic(slot(builder, pool_block(builder.module), OWNER), "monotonic",
                                8, typ=I64)
    return builder.icmp_unsigned("==", owner, self_id)


def _threaded(builder: lir.IRBuilder, body, data, threads, chunks) -> None:
    """Post the job to the pool, or fork a libgomp team for it; time it; then the
    backoff rule."""
    module = builder.module
    with builder.goto_entry_block():
        stack = builder.alloca(lir.ArrayType(I64, BLOCK_SLOTS))
    stack.align = BLOCK_ALIGN
    stack.type = PTR
    in_pool = pool_owned_here(builder)
    block = builder.select(in_pool, pool_block(module), stack)
    builder.store(body, slot(builder, block, BODY))
    builder.store(data, slot(builder, block, DATA))
    builder.store(chunks, slot(builder, block, CHUNKS))
    store_atomic(builder, i64(0), slot(builder, block, DONE), "monotonic")
    start = clock(builder)
    # the release store publishes the job: a claim (an acquire) sees the fields above
    store_atomic(builder, chunks, slot(builder, block, REMAINING), "release")
    with builder.if_else(in_pool) as (pooled, forked):
        with pooled:
            claim_as_caller(builder, block)
            _wait_until_done(builder, block, chunks)
        with forked:
            gomp_parallel = declare(module, "GOMP_parallel", lir.VoidType(),
                                    [PTR, PTR, I32, I32])
            team = builder.select(builder.icmp_signed("<", chunks, threads), chunks, threads)
            builder.call(gomp_parallel, [_trampoline(module), block, builder.trunc(team, I32),
                                         lir.Constant(I32, 0)])
    end = clock(builder)
    total = builder.sub(end, start)
    own_time = builder.sub(builder.load(slot(builder, block, CALLER_END), typ=I64),
                           builder.load(slot(builder, block, CALLER_BEGIN), typ=I64))
    own_chunks = builder.load(slot(builder, block, CALLER_CHUNKS), typ=I64)
    # lost: total wall time > own CPU time * chunks / own_chunks: the calling thread
    # alone, with a core to itself, would have been faster (CPU time, not wall time:
    # on a busy machine our own worker slows the caller down too, and its wall time
    # would flatter the region). In the pool, a region the caller did alone lost
    # nothing (no one was woken).
    slower = builder.icmp_signed(
        ">", builder.mul(builder.mul(total, own_chunks), i64(LOST_DENOMINATOR)),
        builder.mul(builder.mul(own_time, chunks), i64(LOST_NUMERATOR)))
    shared = builder.icmp_signed("<", own_chunks, chunks)
    lost = builder.and_(slower, builder.or_(builder.not_(in_pool), shared))
    with builder.if_then(builder.and_(in_pool, shared)):
        # a worker just finished a chunk: it is on a core, though busy until now
        store_atomic(builder, end, slot(builder, block, HEARTBEAT), "monotonic")
    _update_backoff(builder, lost)


def _update_backoff(builder: lir.IRBuilder, lost: lir.Value) -> None:
    backoff = global_i64(builder.module, BACKOFF)
    current = builder.load_atomic(backoff, "monotonic", 8, typ=I64)
    longer = builder.add(builder.mul(current, i64(2)), i64(1))
    longer = builder.select(builder.icmp_signed(">", longer, i64(MAX_SERIAL_REGIONS)),
                            i64(MAX_SERIAL_REGIONS), longer)
    shorter = builder.sdiv(current, i64(2))
    updated = builder.select(lost, longer, shorter)
    builder.store_atomic(updated, backoff, "monotonic", 8)
    with builder.if_then(lost):
        builder.store_atomic(updated, global_i64(builder.module, SKIP), "monotonic", 8)


def _wait_until_done(builder: lir.IRBuilder, block: lir.Value, chunks: lir.Value) -> None:
    """Spin until every chunk of the job is finished (the workers' chunks included)."""
    wait = builder.append_basic_block("wait")
    finished = builder.append_basic_block("finished")
    builder.branch(wait)
    builder.position_at_end(wait)
    done = builder.load_atomic(slot(builder, block, DONE), "acquire", 8, typ=I64)
    still = builder.icmp_signed("<", done, chunks)
    relax = builder.append_basic_block("relax")
    builder.cbranch(still, relax, finished)
    builder.position_at_end(relax)
    cpu_relax(builder)
    builder.branch(wait)
    builder.position_at_end(finished)


def claim_as_caller(builder: lir.IRBuilder, block: lir.Value) -> None:
    """Claim chunks until none is left, recording in the block the CPU time this
    took and how many chunks this thread did (the backoff rule reads them)."""
    builder.store(clock(builder, CLOCK_THREAD_CPUTIME_ID), slot(builder, block, CALLER_BEGIN))
    count = builder.call(run_chunks(builder.module), [block])
    builder.store(clock(builder, CLOCK_THREAD_CPUTIME_ID), slot(builder, block, CALLER_END))
    builder.store(count, slot(builder, block, CALLER_CHUNKS))


def run_chunks(module: lir.Module) -> lir.Function:
    """i64 run_chunks(ptr block): claim and run chunks of the block's job until none
    is left; returns how many this thread ran.

    A claim is one atomic decrement of REMAINING: a result r > 0 is chunk r - 1.
    Claims that find nothing drive the counter below zero, which is harmless: the
    next job stores its chunk count over it. The job's fields are read after the
    claim, which synchronises with the store that published the job.
    """
    name = "propc.parallel.run_chunks"
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    fn = lir.Function(module, lir.FunctionType(I64, [PTR]), name=name)
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    block = fn.args[0]
    builder = lir.IRBuilder(fn.append_basic_block("entry"))
    entry = builder.block
    loop = builder.append_basic_block("claim")
    work = builder.append_basic_block("work")
    done = builder.append_basic_block("done")
    builder.branch(loop)
    builder.position_at_end(loop)
    count = builder.phi(I64, name="ran")
    count.add_incoming(i64(0), entry)
    claimed = builder.atomic_rmw("sub", slot(builder, block, REMAINING), i64(1), "acq_rel")
    builder.cbranch(builder.icmp_signed(">", claimed, i64(0)), work, done)
    builder.position_at_end(work)
    call_body(builder, builder.load(slot(builder, block, BODY), typ=PTR),
              builder.load(slot(builder, block, DATA), typ=PTR), builder.sub(claimed, i64(1)),
              builder.load(slot(builder, block, CHUNKS), typ=I64))
    builder.atomic_rmw("add", slot(builder, block, DONE), i64(1), "release")
    count.add_incoming(builder.add(count, i64(1)), work)
    builder.branch(loop)
    builder.position_at_end(done)
    builder.ret(count)
    return fn


def _trampoline(module: lir.Module) -> lir.Function:
    """The function each libgomp team thread runs: claim chunks until none is left;
    thread 0 (the caller) records its share for the backoff rule."""
    name = "propc.parallel.trampoline"
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    fn = lir.Function(module, lir.FunctionType(lir.VoidType(), [PTR]), name=name)
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    builder = lir.IRBuilder(fn.append_basic_block("entry"))
    block = fn.args[0]
    thread_num = declare(module, "omp_get_thread_num", I32, [])
    caller = builder.icmp_signed("==", builder.call(thread_num, []), lir.Constant(I32, 0))
    with builder.if_else(caller) as (then, otherwise):
        with then:
            claim_as_caller(builder, block)
        with otherwise:
            builder.call(run_chunks(module), [block])
    builder.ret_void()
    return fn


__all__ = ["ABSENT_AFTER_NS", "ACTIVE", "CONTENDED", "CONTENDED_HOLD_NS", "BACKOFF", "BLOCK_SLOTS", "DONE", "EPOCH", "FOREVER",
           "HEARTBEAT", "MAX_PINNED", "MAX_SERIAL_REGIONS", "PINNED", "TIDS",
           "OWNER", "POOL", "REMAINING", "SKIP", "SLEEPERS", "WORKERS", "call_body",
           "claim_as_caller", "clock", "cpu_relax", "emit_parallel", "emit_serial_switch",
           "global_i64", "pool_block", "pool_owned_here", "run_chunks", "slot",
           "store_atomic", "take_serial_turn"]
