"""`pc.compile`: per-signature trace → simplify → lower → JIT → cache, and `Lowered`.

A `Compiled` callable keys its cache on the input signature (pytree structure and
each leaf's shape, dtype and weakness). A new signature traces and compiles again,
and says so through `logging` (logger "propc.compile"), naming the argument leaf
that changed and how. Calls convert Python scalars and non-contiguous arrays,
run one native function, and rebuild the output pytree from fresh arrays. Once a
signature of plain arrays and Python numbers has run, a caller generated for it
(propc/callpath.py) does all of that in a few comparisons: ~2 µs of Python.
"""
from __future__ import annotations

import contextlib
import functools
import gc
import logging
import pickle
import sys
import threading
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

import codegen
import ir
from codegen.forksafe import ForkSafeLock
from codegen.options import from_environment
from ir.passes.simplify import simplify
from ir.table import render

from .arguments import ArgumentSplitter, CallKey, argument_paths
from .callpath import MISS, NUMPY_SCALARS, specialise
from .recompiles import LRUCache, warn_if_mixed_precision, warn_recompile
from .costs import StepCost, step_cost
from .errors import TraceError, api_boundary
from .pytree import TreeDef, tree_flatten, tree_unflatten
from .signature import LeafSpec, leaf_spec, runtime_array
from .tracing import Tensor, Traced, bind, current_trace, trace_to_graph

log = logging.getLogger("propc.compile")


@dataclass
class MemorySummary:
    """Bytes of one compiled signature's buffer plan.

    `workspace` is the part of `peak_scratch` that is there only for kernel
    workspaces (the sgemm's packing panels): the peak less the scratch the array
    values alone take (`buffers`) under the same placement
    (codegen/memplan.MemoryPlan.workspace).
    """

    inputs: int
    outputs: int
    residuals: int
    peak_scratch: int
    workspace: int = 0

    @property
    def buffers(self) -> int:
        """Bytes of the peak scratch the array values need (peak less workspace)."""
        return self.peak_scratch - self.workspace

    @property
    def total(self) -> int:
        return self.inputs + self.outputs + self.peak_scratch

    def __str__(self) -> str:
        rows = [("inputs", self.inputs), ("outputs", self.outputs),
                ("residuals (kept for backward)", self.residuals),
                ("peak scratch", self.peak_scratch),
                ("  array buffers", self.buffers),
                ("  kernel workspace (sgemm packing)", self.workspace)]
        cells = [(name, f"{value:,d} B") for name, value in rows]
        return "\n".join(render(("memory", "bytes"), cells, left={0}, rule=True,
                                footer=("total", f"{self.total:,d} B")))


class _Entry:
    """Everything one signature needs: its trace, optimised graph and native code.

    The optimised graph is made on first use: a compile served by the disk cache
    (keyed by the traced graph's text) never needs it.
    """

    def __init__(self, traced: Traced):
        self.traced = traced
        self._graph: ir.Graph | None = None
        self.executable: Any = None  # codegen.Executable, built on first use
        self.bound_keys: list[tuple] = []  # its keys in Compiled._bound (forgotten with it)

    @property
    def graph(self) -> ir.Graph:
        if self._graph is None:
            self._graph = simplify(self.traced.graph)
        return self._graph


class Lowered:
    """One signature of a compiled function, opened up for inspection.

    What it shows is what runs. `graph` is the one graph that is compiled: the
    traced graph after simplification. When the function is or calls a reverse-mode
    transform (`grad`, `value_and_grad`, `vjp`), that transform inlined its forward
    pass and then its backward pass (fed the forward's residuals) into the trace;
    `forward_graph` and `backward_graph` are those two passes, and `cost` and
    `memory` split by them. Simplifying `graph` may still merge work across the two
    passes (a value both compute is computed once), so they are the passes as
    inlined, each simplified on its own. With several reverse-mode transforms in one
    function, they are the last one's (`traced_graph` holds every one).
    """

    def __init__(self, compiled: "Compiled", entry: _Entry):
        self._compiled = compiled
        self._entry = entry

    @property
    def graph(self) -> ir.Graph:
        """The optimised graph that is compiled."""
        return self._entry.graph

    @property
    def traced_graph(self) -> ir.Graph:
        """The graph as traced, before simplification."""
        return self._entry.traced.graph

    def _reverse_pass(self, index: int) -> ir.Graph | None:
        """One of the last reverse-mode transform's inlined passes, simplified."""
        passes = self._entry.traced.reverse_passes
        return simplify(passes[-1][index]) if passes else None

    @functools.cached_property
    def forward_graph(self) -> ir.Graph | None:
        """The forward pass (outputs, aux outputs, then residuals) that the function's
        reverse-mode transform inlined into `graph`; None when it does not differentiate."""
        return self._reverse_pass(0)

    @functools.cached_property
    def backward_graph(self) -> ir.Graph | None:
        """The backward pass (residuals + cotangents → input cotangents) inlined into
        `graph` after the forward pass, or None."""
        return self._reverse_pass(1)

    @property
    def executable(self):
        return self._compiled._executable(self._entry)

    @property
    def llvm_ir(self) -> str:
        return self.executable.llvm_ir

    @property
    def asm(self) -> str:
        return self.executable.asm

    @functools.cached_property
    def cost(self) -> StepCost:
        """FLOPs and bytes per op and in total; forward vs backward when differentiating."""
        return step_cost(self.graph, self.forward_graph, self.backward_graph)

    @functools.cached_property
    def memory(self) -> MemorySummary:
        """Bytes of the buffer plan. `residuals` counts what the forward pass computes
        and keeps for the backward (saved inputs cost nothing extra: they are inputs)."""
        plan = self.executable.memory
        forward = self.forward_graph
        residuals = 0
        if forward is not None:
            kept = forward.outputs[len(forward.outputs) - forward.residual_outputs:]
            residuals = sum(v.type.nbytes for v in kept if v.producer is not None)
        return MemorySummary(plan.inputs, plan.outputs, residuals, plan.peak_scratch,
                             plan.workspace)

    def __repr__(self) -> str:
        return f"<Lowered @{self.graph.name}: {len(self.graph.ops)} ops>"


def _describe_change(old: tuple, new: tuple, paths: list[str]) -> str:
    old_tree, old_specs = old
    new_tree, new_specs = new
    if old_tree != new_tree:
        return f"argument structure changed from {old_tree} to {new_tree}"
    for path, a, b in zip(paths, old_specs, new_specs):
        if a != b:
            return f"{path} changed from {a} to {b}"
    return "signature changed"


def _describe_call_key(key: CallKey) -> str:
    """A new static key in words: the static values and keyword names it has now."""
    values = [f"args[{i}]={value!r}" for i, (_, value) in key.static_positions]
    values += [f"{name}={value!r}" for name, (_, value) in key.static_names]
    text = f"static arguments are now {', '.join(values)}" if values else "a new call layout"
    if key.dynamic_names:
        text += f" (keyword arguments {', '.join(key.dynamic_names)})"
    return text


def _quick_key(leaves: list) -> tuple | None:
    """A cheap signature of plain leaves (arrays, Python numbers and NumPy scalars of
    the supported dtypes), or None when a leaf needs the full check (Tensors, bad
    leaves, other scalar types)."""
    key = []
    for leaf in leaves:
        kind = type(leaf)
        if kind is np.ndarray:
            key.append((leaf.shape, leaf.dtype))
        elif kind is float or kind is bool or kind in NUMPY_SCALARS or (
                kind is int and _INT32_MIN <= leaf <= _INT32_MAX):
            key.append(kind)
        else:
            return None
    return tuple(key)


_INT32_MIN, _INT32_MAX = -2 ** 31, 2 ** 31 - 1
_TRACING = threading.local()


_GC_PAUSES = [0, False]  # compiles in progress, whether the collector was on before
_GC_LOCK = ForkSafeLock()


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while tracing or compiling (any thread).

    A trace and its compile allocate hundreds of thousands of objects that live on;
    the collector then ran full collections over the growing heap again and again
    (a dict of 2,000 arrays in and out: 10 full collections, 0.9 s of 6 s, against
    0.04 s for 500), making compile time grow faster than the graph."""
    with _GC_LOCK:
        if _GC_PAUSES[0] == 0:
            _GC_PAUSES[1] = gc.isenabled()
            gc.disable()
        _GC_PAUSES[0] += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _GC_PAUSES[0] -= 1
            if _GC_PAUSES[0] == 0 and _GC_PAUSES[1]:
                gc.enable()


def _tracing_now() -> set:
    """(compiled function id, signature) pairs this thread is tracing right now."""
    found = getattr(_TRACING, "pairs", None)
    if found is None:
        found = _TRACING.pairs = set()
    return found


class _Bound:
    """The per-call work of one signature reduced to conversions and one native call."""

    __slots__ = ("run", "dtypes", "out_tree", "fast", "key", "hidden")

    def __init__(self, run: Callable, specs: tuple[LeafSpec, ...], out_tree: TreeDef,
                 fast: Callable | None = None, key: tuple | None = None,
                 hidden: Traced | None = None):
        self.key = key  # its signature in Compiled._cache
        self.hidden = hidden  # the Traced whose arrays (read by fn) follow the leaves
        self.run = run
        self.dtypes = [spec.dtype.numpy for spec in specs]
        self.out_tree = out_tree
        self.fast = fast  # the generated caller of propc/callpath.py, if any

    def __call__(self, leaves: list) -> Any:
        arrays = []
        for leaf, dtype in zip(leaves, self.dtypes):
            if type(leaf) is not np.ndarray:
                leaf = np.asarray(leaf, dtype=dtype)
            elif leaf.dtype != dtype or not (leaf.flags.c_contiguous and leaf.flags.aligned):
                leaf = np.require(leaf, dtype=dtype, requirements=("C_CONTIGUOUS", "ALIGNED"))
            arrays.append(leaf)
        if self.hidden is not None:
            arrays += self.hidden.hidden_now()
        return tree_unflatten(self.out_tree, self.run(*arrays))


class Compiled:
    """`pc.compile(fn)`: a callable with fn's signature running native code.

    Calls with keyword arguments or static arguments go through one `Compiled` per
    static key (propc/arguments.py), which takes the dynamic arguments positionally.
    """

    def __init__(self, fn: Callable, interpret: bool = False,
                 static_argnums: int | tuple[int, ...] = (),
                 static_argnames: str | tuple[str, ...] = ()):
        self.fn = fn
        self.interpret = interpret
        self._splitter = ArgumentSplitter(fn, static_argnums, static_argnames)
        self._arguments = (fn, interpret, static_argnums, static_argnames)  # for pickle
        self._specialised: dict[CallKey, Compiled] = {}
        self.compile_count = 0
        self._cache = LRUCache()
        self._bound: dict[tuple, _Bound] = {}
        self.recompiles = 0  # new signatures after the first (static keys included)
        self._precision_warned = False
        self._fast: Callable | None = None  # the last signature's generated caller
        self._last_key: tuple | None = None
        self.slow_calls = 0  # calls that took the general path (not a generated caller)
        # (policy, signature) -> what pc.vjp reuses, bounded like the signatures
        self._vjps = LRUCache()
        self._lock = ForkSafeLock()
        functools.update_wrapper(self, fn, updated=())

    # -- signatures and the cache ---------------------------------------------------

    def _signature(self, args: tuple) -> tuple[list, TreeDef, list[str], tuple]:
        leaves, tree = tree_flatten(args)
        paths = argument_paths(self.fn, args)
        specs = tuple(leaf_spec(leaf, path) for leaf, path in zip(leaves, paths))
        return leaves, tree, paths, (tree, specs)

    def _entry(self, args: tuple, key: tuple, paths: list[str]) -> _Entry:
        """The entry of signature `key`, tracing `fn` when it is new.

        No lock is held while tracing: the user's function may call this compiled
        function (or another one that calls back) on a new signature, from this
        thread or another. Two threads tracing one new signature at once both
        trace, and the first to finish is kept. A trace that needs its own
        signature again on the same thread is recursion without a base case: an
        error, not a hang."""
        entry = self._cache.get(key)
        if entry is not None:
            return entry
        if self._last_key is not None:
            self._note_recompile(_describe_change(self._last_key, key, paths))
        if not self._precision_warned:
            self._precision_warned = warn_if_mixed_precision(self._name, key[1], paths)
        traced = self._trace(args, key)
        if traced.captured:
            return _Entry(traced)  # reads a Tensor of an enclosing trace: never cached
        with self._lock:
            entry, evicted = self._cache.setdefault(key, _Entry(traced), self.max_signatures)
            for old_key, old_entry in evicted:
                self._forget(old_key, old_entry)
            self._last_key = key
        return entry

    # Class-wide defaults (propc/recompiles.py); set them on one function to change it.
    warn_recompiles_after = 3   # the recompile from which each one is a RecompileWarning
    max_signatures = 32         # signatures kept per function, least recently used out

    @property
    def _name(self) -> str:
        return getattr(self.fn, "__name__", "fn")

    def _note_recompile(self, change: str) -> None:
        """Log a recompile; warn once they are `warn_recompiles_after` or more."""
        owner = self._recompile_owner()
        owner.recompiles += 1
        count = owner.recompiles
        log.info("recompiling %s: %s", self._name, change)
        if count >= self.warn_recompiles_after:
            warn_recompile(self._name, count, change)

    def _recompile_owner(self) -> "Compiled":
        """The function whose recompiles these are (a static key's parent)."""
        return self

    def _forget(self, key: tuple, entry: _Entry) -> None:
        """An evicted signature: its bound call paths go too (the lock is held)."""
        for bound_key in entry.bound_keys:
            bound = self._bound.pop(bound_key, None)
            if bound is not None and bound.fast is not None and self._fast is bound.fast:
                self._fast = None
        if self._last_key == key:
            self._last_key = None

    def _trace(self, args: tuple, key: tuple) -> Traced:
        """`trace_to_graph(fn, args)`, refusing to re-enter a trace of the same
        signature on this thread (it would recurse until Python's stack runs out)."""
        tracing = _tracing_now()
        marker = (id(self), key)
        if marker in tracing:
            raise TraceError("compile", f"{getattr(self.fn, '__name__', 'fn')} calls itself "
                             "on the signature it is being traced for (recursion that "
                             "never reaches a base case)",
                             hint="recurse on smaller shapes or write the loop in Python")
        tracing.add(marker)
        try:
            with gc_paused():
                return trace_to_graph(self.fn, args, hide_arrays=True)
        finally:
            tracing.discard(marker)

    def _executable(self, entry: _Entry):
        if entry.executable is None:
            with self._lock:
                if entry.executable is None:
                    with gc_paused():
                        entry.executable = codegen.compile_traced(
                            str(entry.traced.graph), lambda: entry.graph,
                            options=from_environment())   # built once, at the edge
                    self.compile_count += 1
        return entry.executable

    # -- public -------------------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        fast = self._fast
        if fast is not None and not kwargs:
            result = fast(args)
            if result is not MISS:
                return result
        if kwargs or self._splitter.has_static:
            return self._call_split(args, kwargs)
        return self._call(args, kwargs)

    @api_boundary
    def _call_split(self, args: tuple, kwargs: dict) -> Any:
        """A call with keyword or static arguments: run its static key's specialisation."""
        key, dynamic = self._splitter.split(args, kwargs)
        return self._specialisation(key)(*dynamic)

    def _specialisation(self, key: CallKey) -> "Compiled":
        specialised = self._specialised.get(key)
        if specialised is None:
            with self._lock:
                specialised = self._specialised.get(key)
                if specialised is None:
                    if self._specialised:
                        self._note_recompile(_describe_call_key(key))
                    specialised = _Specialisation(self, self._splitter.specialise(key))
                    self._specialised[key] = specialised
        return specialised

    @api_boundary
    def _call(self, args: tuple, kwargs: dict) -> Any:
        """Every call the generated caller does not take: check, convert, compile."""
        self.slow_calls += 1
        leaves, tree = tree_flatten(args)
        quick = _quick_key(leaves)
        bound = self._bound.get((tree, quick)) if quick is not None else None
        if bound is not None:
            self._cache.touch(bound.key)
            if bound.fast is not None:
                self._fast = bound.fast
            return bound(leaves)
        if any(isinstance(leaf, Tensor) for leaf in leaves):
            if current_trace() is None:
                raise _escaped_tracer(self.fn, args, leaves)
            traced = self._trace(args, self._signature(args)[3])
            outputs = bind(traced.graph, leaves + traced.captured, traced.out_weak)
            return tree_unflatten(traced.out_tree, outputs)
        leaves, tree, paths, key = self._signature(args)
        entry = self._entry(args, key, paths)
        if entry.traced.captured:
            # fn read a traced value of the enclosing trace (from a global, say): its
            # result depends on that trace, so it is inlined there, like a call on Tensors
            outputs = bind(entry.traced.graph, leaves + entry.traced.captured,
                           entry.traced.out_weak)
            return tree_unflatten(entry.traced.out_tree, outputs)
        arrays = [runtime_array(leaf, spec, path)
                  for leaf, spec, path in zip(leaves, key[1], paths)]
        run = ((lambda *xs: ir.interpret(entry.graph, *xs)) if self.interpret
               else self._executable(entry))
        if quick is not None:
            self._bind(tree, quick, run, key, entry)
        hidden = entry.traced.hidden_now()
        return tree_unflatten(entry.traced.out_tree, run(*arrays, *hidden))

    def _bind(self, tree: TreeDef, quick: tuple, run: Callable, key: tuple, entry: _Entry
              ) -> None:
        """Remember the per-call work of a signature of plain leaves; for native code
        also generate its specialised caller (propc/callpath.py)."""
        out_tree = entry.traced.out_tree
        fast = None
        if not self.interpret:
            fast = specialise(tree, quick, out_tree, run.call_parts(), entry.traced.hidden)
        with self._lock:
            if key not in self._cache:
                return  # evicted meanwhile by another thread's new signature
            self._bound[(tree, quick)] = _Bound(run, key[1], out_tree, fast, key,
                                                entry.traced)
            entry.bound_keys.append((tree, quick))
        if fast is not None:
            self._fast = fast

    @api_boundary
    def lower(self, *args: Any, **kwargs: Any) -> Lowered:
        """The `Lowered` view of this function for one signature (arrays or ShapeDtypes)."""
        if kwargs or self._splitter.has_static:
            call_key, dynamic = self._splitter.split(args, kwargs)
            return self._specialisation(call_key).lower(*dynamic)
        leaves, tree, paths, key = self._signature(args)
        entry = self._entry(args, key, paths)
        if entry.traced.captured:
            raise TraceError("lower", f"{getattr(self.fn, '__name__', 'fn')} reads "
                             f"{len(entry.traced.captured)} traced value(s) of the "
                             "enclosing trace, so it has no code of its own to lower",
                             hint="pass those values in as arguments")
        return Lowered(self, entry)

    def cached_vjp(self, args: tuple, policy: str, build: Callable[[], tuple]) -> tuple:
        """What `pc.vjp(self, *args, policy=policy)` needs for this signature
        (transforms.py builds it: trace, derivative, native passes), made once."""
        key = (policy, self._signature(args)[3])
        found = self._vjps.get(key)
        if found is None:
            found = build()
            with self._lock:
                found, _ = self._vjps.setdefault(key, found, self.max_signatures)
        else:
            self._vjps.touch(key)
        return found

    @property
    def cache_size(self) -> int:
        """Signatures traced, over every static key."""
        return len(self._cache) + sum(s.cache_size for s in self._specialised.values())

    # -- copying, pickling, use as a method ---------------------------------------------

    def __copy__(self) -> "Compiled":
        return self  # like a function: immutable code, shared caches

    def __deepcopy__(self, memo: dict) -> "Compiled":
        return self

    def __reduce__(self) -> Any:
        """Pickled by reference: as the module attribute it is (`@pc.compile def f`),
        else as `pc.compile(fn)` with fn pickled by reference (a lambda or a local
        function cannot be). Unpickled, it traces and compiles again on first call."""
        module = sys.modules.get(getattr(self, "__module__", None) or "")
        found: Any = module
        for part in getattr(self, "__qualname__", "<>").split("."):
            found = getattr(found, part, None)
        if found is self:
            return self.__qualname__
        qualname = getattr(self.fn, "__qualname__", "")
        if "<lambda>" in qualname or "<locals>" in qualname:
            raise pickle.PicklingError(
                f"cannot pickle pc.compile({qualname}): a compiled function pickles by "
                "reference to its Python function, and a lambda or a function defined "
                "inside another cannot be found again by name; define it at module level")
        return (Compiled, self._arguments)

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        """`@pc.compile` on a method: called through an instance, it would get the
        arguments without `self`; that call raises a TypeError saying so."""
        if instance is None:
            return self
        return functools.partial(_method_call, self, type(instance).__name__)


def _method_call(compiled: Compiled, owner: str, *args: Any, **kwargs: Any) -> Any:
    name = getattr(compiled.fn, "__name__", "fn")
    raise TypeError(f"pc.compile: {owner}.{name} is a method, and a compiled function "
                    "takes arrays (pytrees of arrays, Python numbers), not `self`; leave "
                    "the method undecorated and compile a function of arrays that calls "
                    f"it, e.g. pc.compile(lambda x: obj.{name}(x)), or make it a "
                    "@staticmethod")


def _escaped_tracer(fn: Callable, args: tuple, leaves: list) -> TraceError:
    """The error for a compiled call outside any trace given a Tensor argument."""
    paths = argument_paths(fn, args)
    position = next(i for i, leaf in enumerate(leaves) if isinstance(leaf, Tensor))
    return TraceError("compile", f"argument {paths[position]} is a traced value "
                      f"{leaves[position].type} that escaped from the trace that made it "
                      "(stored in a global or returned through a side channel?)",
                      hint="pass a NumPy array, or make this call inside the traced function")


class _Specialisation(Compiled):
    """The `Compiled` of one static key: its native compiles count for its parent.

    It refers to its parent weakly: the parent holds it, and the two referring to
    each other kept a dropped function (and its native code) until the cyclic
    collector ran. A specialisation outliving its parent (through a `Lowered`) has
    the class-wide limits and counts for itself."""

    def __init__(self, parent: Compiled, fn: Callable):
        self._parent = weakref.ref(parent)
        super().__init__(fn, parent.interpret)

    # the parent's limits and recompile count apply (propc/recompiles.py)
    @property
    def max_signatures(self) -> int:
        parent = self._parent()
        return Compiled.max_signatures if parent is None else parent.max_signatures

    @property
    def warn_recompiles_after(self) -> int:
        parent = self._parent()
        return Compiled.warn_recompiles_after if parent is None else parent.warn_recompiles_after

    def _recompile_owner(self) -> Compiled:
        parent = self._parent()
        return self if parent is None else parent

    def _executable(self, entry: _Entry):
        before = self.compile_count
        executable = super()._executable(entry)
        parent = self._parent()
        if self.compile_count != before and parent is not None:
            with parent._lock:
                parent.compile_count += 1
        return executable


def compile(fn: Callable, *, interpret: bool = False,
            static_argnums: int | tuple[int, ...] = (),
            static_argnames: str | tuple[str, ...] = ()) -> Compiled:
    """Compile `fn` to native code per input signature (see module docstring).

    static_argnums / static_argnames: arguments that are Python values (flags,
    sizes, names, tuples), traced as constants; each new value compiles again.
    """
    if isinstance(fn, Compiled):
        fn = fn.fn
    if not callable(fn):
        raise TypeError(f"pc.compile expects a function, got {type(fn).__name__}")
    return Compiled(fn, interpret=interpret, static_argnums=static_argnums,
                    static_argnames=static_argnames)


def contiguous(value: Any) -> np.ndarray:
    """`value` as a C-contiguous array, keeping 0-d arrays 0-d (np.ascontiguousarray
    would make them 1-d)."""
    return np.require(np.asarray(value), requirements="C")


@dataclass
class PassRunners:
    """How a top-level `pc.vjp` runs its two passes on flat input lists."""

    forward: Callable[[list], list]
    backward: Callable[[list], list]
    llvm_ir: str | None = None   # the module holding both native functions, if compiled


def pass_runners(forward: ir.Graph, backward: ir.Graph, native: bool,
                 traced: Traced) -> PassRunners:
    """Runners of a vjp's forward and backward passes: two native functions in one
    module when `native`, else the interpreter."""
    forward, backward = simplify(forward), simplify(backward)
    specs = traced.in_leaves

    def forward_inputs(values: list) -> list[np.ndarray]:
        return [runtime_array(value, specs[i], f"args leaf {i}") if i < len(specs)
                else contiguous(value) for i, value in enumerate(values)]

    def backward_inputs(values: list) -> list[np.ndarray]:
        return [contiguous(v) for v in values]

    if native:
        fwd_exe, bwd_exe = codegen.compile_graphs([forward, backward],
                                                  options=from_environment())
        return PassRunners(lambda values: fwd_exe(*forward_inputs(values)),
                           lambda values: bwd_exe(*backward_inputs(values)),
                           fwd_exe.llvm_ir)
    return PassRunners(lambda values: ir.interpret(forward, *forward_inputs(values)),
                       lambda values: ir.interpret(backward, *backward_inputs(values)))
