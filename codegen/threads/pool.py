"""The thread pool a compiled call runs its parallel regions on (Linux).

    void team(ptr entry, ptr buffers, i64 threads)

runs `entry(buffers)` (a graph's kernels, codegen/emit/entry.py) on the calling thread.
For the length of the call that thread owns the process's pool: `threads - 1`
worker threads (started on first use, then kept) that wait, spinning, for the
jobs `propc.shared.parallel` posts to the pool's job block
(codegen/threads/region.py). A region then costs a cache-line handoff, about a
microsecond, where a libgomp region whose workers sleep between regions (propc's
default wait policy, codegen/threads/host.py) costs a wake-up of tens of µs.

Outside compiled calls the workers sleep, so nothing spins while Python or NumPy
runs. A call that finds them asleep wakes them through a futex after narrowing
their CPUs to those it does not run on itself (they widen them again at once):
a virtual machine's kernel would otherwise often queue the woken worker behind
the caller for a time slice. A worker keeps spinning for SLEEP_AFTER_NS after a call (the next step of a
training loop comes within microseconds), then sleeps on a futex. Inside a call, a
worker that found no work for YIELD_AFTER_NS yields its core after every round
(sched_yield), so another process on that core still gets it, while on an idle
core the worker answers within a microsecond. Every waiting round stamps
HEARTBEAT; a round that took longer than PREEMPTED_NS (the worker was off its
core) stamps CONTENDED too. Regions run on the caller alone while the heartbeat
is stale or a contention is recent (parallel_region.take_serial_turn), and a
region that still lost time to a slow worker backs off.

The pool serves one call at a time: a call that finds it owned by another thread
(concurrent calls from Python threads), and a call in a forked child (the pool's
threads do not survive fork()), runs `entry` without it; its regions then fork
libgomp teams as before.

Pool state lives in the job block's extra slots: OWNER (pthread_self of the owning
thread, 0 when free), ACTIVE (the owner's team size while a call runs, else 0;
worker i takes part when i + 1 < ACTIVE), EPOCH (the futex word, bumped when a
call starts), SLEEPERS (workers asleep on it) and WORKERS (threads started).
"""
from __future__ import annotations

import time

import llvmlite.ir as lir

from ..kernels.matmul_ir import I32, I64, PTR, counted, declare, i64, smin
from .host import futex_syscall, syscall_number
from .region import (ACTIVE, CONTENDED, CONTENDED_HOLD_NS, EPOCH, FOREVER, HEARTBEAT, MAX_PINNED, OWNER, PINNED, REMAINING, SKIP, SLEEPERS, TIDS, WORKERS,
                              clock, cpu_relax, global_i64, pool_block, run_chunks, slot,
                              store_atomic)

TEAM = "propc.shared.team"
TEAM_TYPE = lir.FunctionType(lir.VoidType(), [PTR, PTR, I64])
ENTRY_TYPE = lir.FunctionType(lir.VoidType(), [PTR])
WORKER_TYPE = lir.FunctionType(PTR, [PTR])

YIELD_AFTER_NS = 30_000
SLEEP_AFTER_NS = 50_000
# a waiting round that took this long means the worker was off its core: another
# process wants it (parallel_region.CONTENDED_HOLD_NS)
PREEMPTED_NS = 2_000_000

# Linux system call numbers per architecture (futex(2), gettid(2)); private futexes
SYS_GETTID = {"x86_64": 186, "aarch64": 178}
FUTEX_WAIT_PRIVATE, FUTEX_WAKE_PRIVATE = 128, 129
SIG_BLOCK, SIG_SETMASK = 0, 2
SIGSET_BYTES = 128
CPU_SET_BYTES = 128          # glibc's cpu_set_t: 1024 CPUs


def emit_team(module: lir.Module, enabled: bool) -> lir.Function:
    """Define `team` (see the module docstring) in the library module. Not
    `enabled` (no libgomp, or no futex here): it just calls entry."""
    fn = lir.Function(module, TEAM_TYPE, name=module.get_unique_name("team"))
    fn.attributes.add("nounwind")
    entry, buffers, threads = fn.args
    builder = lir.IRBuilder(fn.append_basic_block("entry"))
    direct = _as_entry(builder, entry)
    if futex_syscall() is None or not enabled:
        builder.call(direct, [buffers])
        builder.ret_void()
        return fn
    pool = pool_block(module)
    self_id = builder.call(declare(module, "pthread_self", I64, []), [])
    forked = builder.icmp_signed(">=", builder.load_atomic(global_i64(module, SKIP), "monotonic",
                                                           8, typ=I64), i64(FOREVER))
    wanted = builder.and_(builder.icmp_signed(">", threads, i64(1)), builder.not_(forked))
    with builder.if_then(wanted):
        # take the pool: OWNER 0 -> this thread (fails while another call owns it)
        taken = builder.cmpxchg(slot(builder, pool, OWNER), i64(0), self_id, "acquire",
                                "monotonic")
        with builder.if_then(builder.extract_value(taken, 1)):
            _start_workers(builder, pool, builder.sub(threads, i64(1)))
            store_atomic(builder, threads, slot(builder, pool, ACTIVE), "seq_cst")
            builder.atomic_rmw("add", slot(builder, pool, EPOCH), lir.Constant(I32, 1),
                               "seq_cst")
            sleepers = builder.load_atomic(slot(builder, pool, SLEEPERS), "seq_cst", 8, typ=I64)
            with builder.if_then(builder.icmp_signed(">", sleepers, i64(0))):
                _keep_off_this_cpu(builder, pool)
                _futex(builder, slot(builder, pool, EPOCH), FUTEX_WAKE_PRIVATE,
                       lir.Constant(I32, 2 ** 31 - 1))
            # sleeping workers are on their way (tens of µs): the first regions are
            # posted to them, not run serially for want of a recent heartbeat
            store_atomic(builder, clock(builder), slot(builder, pool, HEARTBEAT), "monotonic")
            builder.call(direct, [buffers])
            store_atomic(builder, i64(0), slot(builder, pool, ACTIVE), "release")
            store_atomic(builder, i64(0), slot(builder, pool, OWNER), "release")
            builder.ret_void()
    builder.call(direct, [buffers])
    builder.ret_void()
    return fn


def emit_awake_count(module: lir.Module, name: str) -> lir.Function:
    """Define `i64 name()`: pool workers started and not asleep now (see
    `wait_until_asleep`)."""
    fn = lir.Function(module, lir.FunctionType(I64, []), name=name)
    fn.attributes.add("nounwind")
    builder = lir.IRBuilder(fn.append_basic_block("entry"))
    pool = pool_block(module)
    started = builder.load_atomic(slot(builder, pool, WORKERS), "seq_cst", 8, typ=I64)
    asleep = builder.load_atomic(slot(builder, pool, SLEEPERS), "seq_cst", 8, typ=I64)
    builder.ret(builder.sub(started, asleep))
    return fn


def wait_until_asleep(awake_count, timeout: float = 0.05) -> bool:
    """Wait (up to `timeout` s) until no pool worker runs; True when none does.
    Registered to run at exit: a worker still spinning after the last call must not
    be running the library's code when the interpreter frees it."""
    deadline = time.monotonic() + timeout
    while awake_count() > 0:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.0005)
    return True


def _keep_off_this_cpu(builder: lir.IRBuilder, pool: lir.Value) -> None:
    """Let the sleeping workers run on any CPU the caller may use but the one it runs
    on now. Woken from a busy CPU, a thread is often queued on that CPU (the kernel
    takes an idle virtual CPU for a busy one) and waits there for a time slice,
    ~1.8 ms here, before the load balancer moves it: the call then runs alone."""
    module = builder.module
    getcpu = declare(module, "sched_getcpu", I32, [])
    getaffinity = declare(module, "sched_getaffinity", I32, [I32, I64, PTR])
    setaffinity = declare(module, "sched_setaffinity", I32, [I32, I64, PTR])
    with builder.goto_entry_block():
        mask = builder.alloca(lir.ArrayType(I64, CPU_SET_BYTES // 8))
    mask.type = PTR
    failed = builder.call(getaffinity, [lir.Constant(I32, 0), i64(CPU_SET_BYTES), mask])
    cpu = builder.sext(builder.call(getcpu, []), I64)
    usable = builder.and_(builder.icmp_signed("==", failed, lir.Constant(I32, 0)),
                          builder.and_(builder.icmp_signed(">=", cpu, i64(0)),
                                       builder.icmp_signed("<", cpu, i64(CPU_SET_BYTES * 8))))
    with builder.if_then(usable):
        word = builder.gep(mask, [builder.sdiv(cpu, i64(64))], source_etype=I64)
        bit = builder.shl(i64(1), builder.srem(cpu, i64(64)))
        builder.store(builder.and_(builder.load(word, typ=I64), builder.not_(bit)), word)
        others = i64(0)
        for position in range(CPU_SET_BYTES // 8):
            others = builder.or_(others, builder.load(
                builder.gep(mask, [i64(position)], source_etype=I64), typ=I64))
        with builder.if_then(builder.icmp_signed("!=", others, i64(0))):
            started = builder.load_atomic(slot(builder, pool, WORKERS), "monotonic", 8, typ=I64)
            with counted(builder, i64(0), smin(builder, started, i64(MAX_PINNED)), i64(1),
                         "pin") as index:
                tid = builder.load_atomic(builder.gep(slot(builder, pool, TIDS), [index],
                                                      source_etype=I64), "monotonic", 8, typ=I64)
                with builder.if_then(builder.icmp_signed(">", tid, i64(0))):
                    builder.call(setaffinity, [builder.trunc(tid, I32), i64(CPU_SET_BYTES), mask])
                    # after the narrowing: the worker widens its CPUs again once it
                    # sees this, whether it was asleep or not
                    store_atomic(builder, i64(1), builder.gep(slot(builder, pool, PINNED),
                                                              [index], source_etype=I64),
                                 "release")


def _as_entry(builder: lir.IRBuilder, pointer: lir.Value) -> lir.Value:
    return builder.inttoptr(builder.ptrtoint(pointer, I64), ENTRY_TYPE.as_pointer())


def _syscall(builder: lir.IRBuilder, number: int, args: list) -> lir.Value:
    """libc's syscall(number, args...) (a variadic function)."""
    syscall = builder.module.globals.get("syscall")
    if syscall is None:
        syscall = lir.Function(builder.module, lir.FunctionType(I64, [I64], var_arg=True),
                               name="syscall")
    return builder.call(syscall, [i64(number)] + args)


def _futex(builder: lir.IRBuilder, word: lir.Value, operation: int, value: lir.Value) -> None:
    _syscall(builder, futex_syscall(), [word, lir.Constant(I32, operation), value,
                                        lir.Constant(PTR, None), lir.Constant(PTR, None),
                                        lir.Constant(I32, 0)])


def _start_workers(builder: lir.IRBuilder, pool: lir.Value, wanted: lir.Value) -> None:
    """Start workers until the pool has `wanted` (only the pool's owner gets here,
    so no two threads start them at once). They begin with every signal blocked:
    signals belong to the Python threads."""
    module = builder.module
    workers = slot(builder, pool, WORKERS)
    have = builder.load_atomic(workers, "monotonic", 8, typ=I64)
    with builder.if_then(builder.icmp_signed("<", have, wanted)):
        sigmask = declare(module, "pthread_sigmask", I32, [I32, PTR, PTR])
        create = declare(module, "pthread_create", I32, [PTR, PTR, PTR, PTR])
        detach = declare(module, "pthread_detach", I32, [I64])
        masks = builder.alloca(lir.ArrayType(lir.IntType(8), 2 * SIGSET_BYTES))
        masks.type = PTR
        every, previous = masks, builder.gep(masks, [i64(SIGSET_BYTES)],
                                             source_etype=lir.IntType(8))
        memset = declare(module, "llvm.memset.p0.i64", lir.VoidType(),
                         [PTR, lir.IntType(8), I64, lir.IntType(1)])
        builder.call(memset, [every, lir.Constant(lir.IntType(8), 0xFF), i64(SIGSET_BYTES),
                              lir.Constant(lir.IntType(1), 0)])
        builder.call(sigmask, [lir.Constant(I32, SIG_BLOCK), every, previous])
        handle = builder.alloca(I64)
        handle.type = PTR
        with counted(builder, have, wanted, i64(1), "worker") as index:
            failed = builder.call(create, [handle, lir.Constant(PTR, None), _worker(module),
                                           builder.inttoptr(index, PTR)])
            with builder.if_then(builder.icmp_signed("==", failed, lir.Constant(I32, 0))):
                builder.call(detach, [builder.load(handle, typ=I64)])
                store_atomic(builder, builder.add(index, i64(1)), workers, "monotonic")
        builder.call(sigmask, [lir.Constant(I32, SIG_SETMASK), previous,
                               lir.Constant(PTR, None)])


def _worker(module: lir.Module) -> lir.Function:
    """ptr worker(ptr index): the life of pool worker `index`, forever:

        loop:
          if index + 1 < ACTIVE:            # a call runs and wants this worker
              if REMAINING > 0: run chunks; idle_since = now; continue
              relax; yield the core once idle longer than YIELD_AFTER_NS
          else:
              relax; once idle longer than SLEEP_AFTER_NS, sleep until EPOCH moves
    """
    name = "propc.pool.worker"
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    fn = lir.Function(module, WORKER_TYPE, name=name)
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    pool = pool_block(module)
    builder = lir.IRBuilder(fn.append_basic_block("entry"))
    index = builder.ptrtoint(fn.args[0], I64)
    member = builder.add(index, i64(1))
    pinned = builder.icmp_signed("<", index, i64(MAX_PINNED))
    with builder.if_then(pinned):
        tid = _syscall(builder, syscall_number(SYS_GETTID), [])
        store_atomic(builder, tid,
                     builder.gep(slot(builder, pool, TIDS), [index], source_etype=I64),
                     "monotonic")
    # the CPUs this worker may use, restored after each wake-up (_keep_off_this_cpu
    # narrows them only to steer where the wake-up lands)
    own_cpus = builder.alloca(lir.ArrayType(I64, CPU_SET_BYTES // 8))
    own_cpus.type = PTR
    getaffinity = declare(module, "sched_getaffinity", I32, [I32, I64, PTR])
    setaffinity = declare(module, "sched_setaffinity", I32, [I32, I64, PTR])
    known = builder.icmp_signed("==", builder.call(getaffinity, [lir.Constant(I32, 0),
                                                                i64(CPU_SET_BYTES), own_cpus]),
                                lir.Constant(I32, 0))
    start = clock(builder)
    entry = builder.block
    loop = builder.append_basic_block("loop")
    builder.branch(loop)
    builder.position_at_end(loop)
    idle_since = builder.phi(I64, name="idle_since")
    idle_since.add_incoming(start, entry)
    last_round = builder.phi(I64, name="last_round")
    last_round.add_incoming(start, entry)

    def again(since: lir.Value, round_time: lir.Value | None = None) -> None:
        idle_since.add_incoming(since, builder.block)
        last_round.add_incoming(since if round_time is None else round_time, builder.block)
        builder.branch(loop)

    def look_for_work() -> lir.Value:
        """A waiting round: relax, then record that this worker is on a core (and,
        when it was off its core since the last round, that its core is contended)."""
        cpu_relax(builder)
        now = clock(builder)
        store_atomic(builder, now, slot(builder, pool, HEARTBEAT), "monotonic")
        with builder.if_then(builder.icmp_signed(">", builder.sub(now, last_round),
                                                 i64(PREEMPTED_NS))):
            store_atomic(builder, now, slot(builder, pool, CONTENDED), "monotonic")
        return now

    with builder.if_then(pinned):
        narrowed = builder.gep(slot(builder, pool, PINNED), [index], source_etype=I64)
        with builder.if_then(builder.icmp_signed("!=", builder.load_atomic(
                narrowed, "acquire", 8, typ=I64), i64(0))):
            store_atomic(builder, i64(0), narrowed, "monotonic")
            with builder.if_then(known):
                builder.call(setaffinity, [lir.Constant(I32, 0), i64(CPU_SET_BYTES), own_cpus])
    active = builder.load_atomic(slot(builder, pool, ACTIVE), "acquire", 8, typ=I64)
    in_call, between = builder.append_basic_block("in_call"), builder.append_basic_block("between")
    builder.cbranch(builder.icmp_signed("<", member, active), in_call, between)

    builder.position_at_end(in_call)
    remaining = builder.load_atomic(slot(builder, pool, REMAINING), "monotonic", 8, typ=I64)
    work, wait = builder.append_basic_block("work"), builder.append_basic_block("wait")
    builder.cbranch(builder.icmp_signed(">", remaining, i64(0)), work, wait)
    builder.position_at_end(work)
    builder.call(run_chunks(module), [pool])
    again(clock(builder))
    sleep = builder.append_basic_block("sleep")

    def contended(now: lir.Value) -> lir.Value:
        """A worker was preempted lately: the caller runs its regions alone, and a
        worker that stayed runnable would only take turns with the caller or the
        other process for a core."""
        stamp = builder.load_atomic(slot(builder, pool, CONTENDED), "monotonic", 8, typ=I64)
        return builder.icmp_signed("<", builder.sub(now, stamp), i64(CONTENDED_HOLD_NS))

    builder.position_at_end(wait)
    now = look_for_work()
    keep = builder.append_basic_block("keep_waiting")
    builder.cbranch(contended(now), sleep, keep)
    builder.position_at_end(keep)
    with builder.if_then(builder.icmp_signed(">", builder.sub(now, idle_since),
                                             i64(YIELD_AFTER_NS))):
        builder.call(declare(module, "sched_yield", I32, []), [])
    again(idle_since, now)

    builder.position_at_end(between)
    now = look_for_work()
    spin = builder.append_basic_block("spin")
    builder.cbranch(builder.icmp_signed(">", builder.sub(now, idle_since), i64(SLEEP_AFTER_NS)),
                    sleep, spin)
    builder.position_at_end(spin)
    again(idle_since, now)
    builder.position_at_end(sleep)
    # SLEEPERS first, then read EPOCH and ACTIVE: a call starting meanwhile either
    # sees the sleeper and wakes it, or has already moved EPOCH / set ACTIVE. A
    # worker sleeping through a contended call wakes when the next call starts.
    sleepers = slot(builder, pool, SLEEPERS)
    builder.atomic_rmw("add", sleepers, i64(1), "seq_cst")
    seen = builder.load_atomic(slot(builder, pool, EPOCH), "seq_cst", 4, typ=I32)
    active = builder.load_atomic(slot(builder, pool, ACTIVE), "seq_cst", 8, typ=I64)
    unwanted = builder.icmp_signed(">=", member, active)
    with builder.if_then(builder.or_(unwanted, contended(clock(builder)))):
        _futex(builder, slot(builder, pool, EPOCH), FUTEX_WAIT_PRIVATE, seen)
    builder.atomic_rmw("sub", sleepers, i64(1), "seq_cst")
    again(clock(builder))
    return fn


__all__ = ["SLEEP_AFTER_NS", "TEAM", "TEAM_TYPE", "YIELD_AFTER_NS", "emit_awake_count",
           "emit_team", "wait_until_asleep"]
