"""The specialised call path of `pc.compile`: one generated Python function per
signature that checks an argument tuple with a few comparisons and runs the
native code directly.

`Compiled.__call__` on its general path flattens the arguments into a pytree,
builds a signature key, converts leaves and rebuilds the output tree: ~20 µs of
Python per call, more than the whole native train step of a small MLP. Once a
signature has been compiled, everything that path computes is known, so
`specialise` writes it out as straight-line Python, e.g. for `step(params, x, y)`
with `params = [(W1, b1), (W2, b2)]`:

    def call(args):
        if len(args) != 3: return MISS
        a0 = args[0]
        if type(a0) is not list or len(a0) != 2: return MISS
        ...
        if type(l0) is not ndarray or l0.dtype is not D0 or l0.shape != S0: return MISS
        flags = l0.flags
        if not (flags.c_contiguous and flags.aligned): l0 = l0.copy()
        ...
        block, address, arena = state()
        block[0] = id(l0); ...
        o0 = empty(R0, E0); block[6] = id(o0); ...
        entry(address, arena)
        return ([(o0, o1), (o2, o3)], o4)

Python numbers and NumPy scalars of the signature's type are converted in place;
a non-contiguous or unaligned array of the right shape and dtype is copied into a
contiguous one there too. Anything unexpected (another structure, dtype, shape,
scalar type, a Tensor) returns MISS and the general path, which converts or
explains, takes the call. A dtype is compared by identity (NumPy's native-order
built-in dtypes are singletons; any other dtype object is a MISS, never a wrong
answer). Values never enter the generated text: shapes, dtypes, dict keys and
namedtuple classes are bound as names in the function's namespace.
"""
from __future__ import annotations

import functools
from types import CodeType
from typing import Any, Callable, NamedTuple

import numpy as np

from .pytree import DICT, LEAF, LIST, NAMEDTUPLE, NONE, TUPLE, TreeDef

MISS = object()  # returned when the arguments do not fit the specialised signature
UNROLLED_LEAVES = 32
"""A tuple, list or dict of more leaves than this (all of them arrays going in) is
read, checked and rebuilt by loops over tables of its keys, shapes and dtypes, not
by lines of its own per leaf: CPython's compile time grows faster than the length
of the function (a dict of 2,000 arrays in and out: 16,000 lines, 0.2 s to
compile, 5x the time for 500)."""
# NumPy scalar types a generated caller converts itself (the supported dtypes)
NUMPY_SCALARS = frozenset({np.float32, np.float64, np.int32, np.int64, np.bool_})
_INT32_MIN, _INT32_MAX = -2 ** 31, 2 ** 31 - 1


class _Group(NamedTuple):
    """A run of `count` argument leaves read into the list local `name` by a loop."""

    name: str
    count: int


def _leaf_count(leaves: list) -> int:
    return sum(leaf.count if isinstance(leaf, _Group) else 1 for leaf in leaves)


class _Writer:
    """Source lines of the generated function and the namespace they refer to."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.namespace: dict[str, Any] = {"MISS": MISS, "ndarray": np.ndarray,
                                          "asarray": np.asarray, "empty": np.empty}
        self._counter = 0
        self.indent = "    "

    def constant(self, value: Any, prefix: str = "K") -> str:
        """A namespace name bound to `value`."""
        name = f"{prefix}{self._counter}"
        self._counter += 1
        self.namespace[name] = value
        return name

    def fresh(self, prefix: str) -> str:
        """A new local variable name."""
        self._counter += 1
        return f"{prefix}{self._counter}"

    def line(self, text: str) -> None:
        self.lines.append(self.indent + text)

    def miss_unless(self, condition: str) -> None:
        self.line(f"if not ({condition}): return MISS")


def specialise(in_tree: TreeDef, kinds: tuple, out_tree: TreeDef, parts,
               hidden: list | None = None) -> Callable[[tuple], Any] | None:
    """The fast caller of one compiled signature, or None when it cannot have one.

    `kinds` has one entry per argument leaf, as `Compiled` keys its bound
    signatures: (shape, dtype) of an array, or the type of a Python number (float,
    int or bool) or NumPy scalar (NUMPY_SCALARS). `parts` is the executable's `CallParts` (codegen/runtime.py).
    Arrays whose dtype is not exactly the compiled input's (another byte order)
    get no fast path: they must be converted on every call. `hidden` are NumPy
    arrays the function read (not arguments), passed after the leaves: the caller
    checks that each still has its traced shape and dtype (else MISS)."""
    hidden = list(hidden or [])
    if in_tree.kind != TUPLE or not _supported(in_tree) or not _supported(out_tree):
        return None
    if len(kinds) + len(hidden) != len(parts.inputs) or out_tree.num_leaves != len(parts.outputs):
        return None
    if any(isinstance(kind, tuple) and kind != spec for kind, spec in zip(kinds, parts.inputs)):
        return None
    writer = _Writer()
    leaves: list = []   # per argument leaf its local name, or a _Group of leaves
    _read_node(writer, in_tree, "args", leaves, kinds)
    if _leaf_count(leaves) != len(kinds):
        return None
    position = 0
    for leaf in leaves:
        if isinstance(leaf, str):
            _check_leaf(writer, leaf, kinds[position], *parts.inputs[position])
        position += leaf.count if isinstance(leaf, _Group) else 1
    leaves += _hidden_leaves(writer, hidden, parts.inputs[len(kinds):])
    outputs = _run(writer, leaves, parts)
    writer.line(f"return {_build_node(writer, out_tree, outputs, iter(range(len(outputs))))}")
    source = "def call(args):\n" + "\n".join(writer.lines) + "\n"
    exec(_code(source), writer.namespace)  # noqa: S102
    # taken out of the namespace it reads as its globals: the two referring to each
    # other kept a dropped caller (and the executable it calls) until the cyclic
    # collector ran
    call = writer.namespace.pop("call")
    call.source = source
    return call


@functools.lru_cache(maxsize=256)
def _code(source: str) -> CodeType:
    """The code of a caller's source, compiled once per distinct text: signatures of
    one structure (any shapes and dtypes: those are namespace names) share it."""
    return compile(source, "<propc call path>", "exec")


def _supported(tree: TreeDef) -> bool:
    if tree.kind not in (LEAF, NONE, TUPLE, LIST, DICT, NAMEDTUPLE):
        return False
    return all(_supported(child) for child in tree.children)


def _read_node(writer: _Writer, tree: TreeDef, name: str, leaves: list, kinds: tuple
               ) -> None:
    """Check that `name` has the structure `tree` and bind its leaves to locals (a
    large container of arrays: to one list, checked as it is read)."""
    if _grouped(tree) and all(isinstance(kind, tuple) for kind in
                              kinds[_leaf_count(leaves):][:len(tree.children)]):
        _read_group(writer, tree, name, leaves, kinds)
        return
    if tree.kind == LEAF:
        leaf = f"l{len(leaves)}"
        leaves.append(leaf)
        if leaf != name:
            writer.line(f"{leaf} = {name}")
        return
    if tree.kind == NONE:
        writer.miss_unless(f"{name} is None")
        return
    count = len(tree.children)
    if tree.kind == NAMEDTUPLE:
        writer.miss_unless(f"type({name}) is {writer.constant(tree.meta, 'T')}")
    else:
        kind = {TUPLE: "tuple", LIST: "list", DICT: "dict"}[tree.kind]
        writer.miss_unless(f"type({name}) is {kind} and len({name}) == {count}")
    for position, child in enumerate(tree.children):
        if tree.kind == DICT:
            key = writer.constant(tree.meta[position])
            writer.miss_unless(f"{key} in {name}")
            item = f"{name}[{key}]"
        else:
            item = f"{name}[{position}]"
        if child.kind == LEAF:
            _read_node(writer, child, item, leaves, kinds)
        else:
            local = writer.fresh("n")
            writer.line(f"{local} = {item}")
            _read_node(writer, child, local, leaves, kinds)


def _grouped(tree: TreeDef) -> bool:
    """A tuple, list or dict of more than UNROLLED_LEAVES leaves and nothing else."""
    return (tree.kind in (TUPLE, LIST, DICT) and len(tree.children) > UNROLLED_LEAVES
            and all(child.kind == LEAF for child in tree.children))


def _read_group(writer: _Writer, tree: TreeDef, name: str, leaves: list, kinds: tuple
                ) -> None:
    """Lines reading the array leaves of container `name` into a list in one loop
    over a table of (key, dtype, shape), checking each as `_check_leaf` does."""
    kind = {TUPLE: "tuple", LIST: "list", DICT: "dict"}[tree.kind]
    count = len(tree.children)
    writer.miss_unless(f"type({name}) is {kind} and len({name}) == {count}")
    first = _leaf_count(leaves)
    keys = tree.meta if tree.kind == DICT else range(count)
    table = writer.constant(tuple((key, dtype, shape) for key, (shape, dtype)
                                  in zip(keys, kinds[first:first + count])), "G")
    group = _Group(writer.fresh("g"), count)
    writer.line(f"{group.name} = []")
    writer.line(f"for key, dtype, shape in {table}:")
    writer.indent += "    "
    if tree.kind == DICT:
        writer.miss_unless(f"key in {name}")
    writer.line(f"leaf = {name}[key]")
    _check_array(writer, "leaf", "dtype", "shape")
    writer.line(f"{group.name}.append(leaf)")
    writer.indent = writer.indent[:-4]
    leaves.append(group)


def _check_leaf(writer: _Writer, name: str, kind, shape: tuple, dtype: np.dtype) -> None:
    """MISS unless leaf `name` can be passed as it is (an array of exactly the
    input's shape and dtype, C-contiguous and aligned), or is a Python number of the
    signature's type, converted here."""
    dtype_name = writer.constant(dtype, "D")
    if not isinstance(kind, tuple):
        writer.miss_unless(f"type({name}) is {writer.constant(kind, 'P')}")
        if kind is int:
            writer.miss_unless(f"{_INT32_MIN} <= {name} <= {_INT32_MAX}")
        writer.line(f"{name} = asarray({name}, {dtype_name})")
        return
    _check_array(writer, name, dtype_name, writer.constant(shape, 'S'))


def _check_array(writer: _Writer, name: str, dtype: str, shape: str) -> None:
    """MISS unless `name` is an array of dtype `dtype` and shape `shape` (names in
    the generated code); copied when not C-contiguous and aligned."""
    writer.miss_unless(f"type({name}) is ndarray and {name}.dtype is {dtype} "
                       f"and {name}.shape == {shape}")
    writer.line(f"flags = {name}.flags")
    # a copy is C-ordered and aligned (ascontiguousarray keeps an unaligned array)
    writer.line(f"if not (flags.c_contiguous and flags.aligned): {name} = {name}.copy()")


def _hidden_leaves(writer: _Writer, hidden: list, inputs: list) -> list[str]:
    """Names bound to the hidden arrays, each checked against its traced type."""
    names = []
    for array, (shape, dtype) in zip(hidden, inputs):
        name = writer.constant(array, "H")
        writer.miss_unless(f"{name}.shape == {writer.constant(shape, 'S')} and "
                           f"{name}.dtype is {writer.constant(dtype, 'D')}")
        names.append(name)
    return names


def _run(writer: _Writer, leaves: list, parts) -> list[str]:
    """Lines filling the argument block and calling the entry; the output names
    (more than UNROLLED_LEAVES outputs: items `outs[j]` of one list)."""
    writer.namespace.update(state=parts.thread_state, entry=parts.entry,
                            after=parts.after_call)
    writer.line("block, address, arena = state()")
    position = 0
    for leaf in leaves:
        if isinstance(leaf, _Group):
            writer.line(f"block[{position}:{position + leaf.count}] = "
                        f"list(map(id, {leaf.name}))")
            position += leaf.count
        else:
            writer.line(f"block[{position}] = id({leaf})")
            position += 1
    count = len(parts.outputs)
    if count > UNROLLED_LEAVES:
        specs = writer.constant(tuple(parts.outputs), "R")
        writer.line(f"outs = [empty(shape, dtype) for shape, dtype in {specs}]")
        writer.line(f"block[{position}:{position + count}] = list(map(id, outs))")
        outputs = [f"outs[{j}]" for j in range(count)]
    else:
        outputs = []
        for j, (shape, dtype) in enumerate(parts.outputs):
            name = f"o{j}"
            writer.line(f"{name} = empty({writer.constant(shape, 'R')}, "
                        f"{writer.constant(dtype, 'E')})")
            writer.line(f"block[{position + j}] = id({name})")
            outputs.append(name)
    writer.line("entry(address, arena)")
    if parts.after_call is not None:
        writer.line("after(arena)")
    return outputs


def _build_node(writer: _Writer, tree: TreeDef, names: list[str], positions) -> str:
    """A Python expression rebuilding an output tree from the output names (leaf
    positions taken from the iterator `positions`). Each inner container is first
    bound to a local of its own, so the expression never nests brackets by the
    tree's depth (Python refuses 200 nested parentheses)."""
    if tree.kind == LEAF:
        return names[next(positions)]
    if tree.kind == NONE:
        return "None"
    if _grouped(tree):   # then there are more than UNROLLED_LEAVES outputs: `outs`
        first = next(positions)
        for _ in tree.children[1:]:
            next(positions)
        span = f"outs[{first}:{first + len(tree.children)}]"
        if tree.kind == DICT:
            return f"dict(zip({writer.constant(tuple(tree.meta))}, {span}))"
        return span if tree.kind == LIST else f"tuple({span})"
    items = []
    for child in tree.children:
        item = _build_node(writer, child, names, positions)
        if child.kind not in (LEAF, NONE):
            local = writer.fresh("b")
            writer.line(f"{local} = {item}")
            item = local
        items.append(item)
    if tree.kind == LIST:
        return "[" + ", ".join(items) + "]"
    if tree.kind == DICT:
        keys = [writer.constant(key) for key in tree.meta]
        return "{" + ", ".join(f"{k}: {v}" for k, v in zip(keys, items)) + "}"
    if tree.kind == NAMEDTUPLE:
        return f"{writer.constant(tree.meta, 'T')}({', '.join(items)})"
    return "(" + "".join(item + ", " for item in items) + ")"


__all__ = ["MISS", "NUMPY_SCALARS", "specialise"]
