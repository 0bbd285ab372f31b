"""`pc.vmap`: the batching transform.

`vmap(fn, in_axes=0, out_axes=0)(*args)` traces `fn` once on one example (each
batched argument leaf without its batch axis), batches the traced graph with
`ir.passes.batching.batch_graph` (one rule per primitive, batch axis leading) and
inlines the result into the enclosing trace, with the user's axes moved to and from
the front by transposes. The graph's size therefore does not depend on the batch
size, and vmap composes with every transform that works on traced graphs (grad,
vjp, compile, vmap itself): they all see plain IR. Outside any trace the batched
function runs through the interpreter, like the reverse-mode transforms.

`in_axes` / `out_axes` have JAX's meaning: an int (negative counts from the end) or
None (not batched / not given a batch axis), or a pytree prefix of the arguments
tuple / the result giving one of those per subtree.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ir.passes.batching import batch_graph

from . import tracing
from .pytree import LEAF, NONE, TreeDef, tree_flatten, tree_paths, tree_unflatten
from .signature import ShapeDtype
from .transforms import _eager


def _is_axis(spec: Any) -> bool:
    return spec is None or (isinstance(spec, (int, np.integer)) and not isinstance(spec, bool))


def _broadcast_axes(spec: Any, tree: TreeDef, where: str) -> list:
    """One axis (int or None) per leaf of `tree`, from `spec`, a prefix of it."""
    if _is_axis(spec):
        return [None if spec is None else int(spec)] * tree.num_leaves
    spec_leaves, spec_tree = tree_flatten(spec)
    if not all(_is_axis(leaf) for leaf in spec_leaves):
        raise TypeError(f"vmap: {where} must be ints, None or pytrees of them, got {spec!r}")
    axes: list = []
    _match(spec_tree, iter(spec_leaves), tree, where, axes)
    return axes


def _match(spec_tree: TreeDef, spec_leaves, tree: TreeDef, where: str, axes: list) -> None:
    if spec_tree.kind in (LEAF, NONE):
        axis = next(spec_leaves) if spec_tree.kind == LEAF else None
        axes.extend([axis] * tree.num_leaves)
        return
    if (spec_tree.kind, spec_tree.meta, len(spec_tree.children)) != \
            (tree.kind, tree.meta, len(tree.children)):
        raise ValueError(f"vmap: {where} structure {spec_tree} does not match the "
                         f"structure {tree} it applies to")
    for spec_child, child in zip(spec_tree.children, tree.children):
        _match(spec_child, spec_leaves, child, where, axes)


def _normalize(axis: int | None, ndim: int, path: str, what: str) -> int | None:
    if axis is None:
        return None
    if not -ndim <= axis < ndim:
        raise ValueError(f"vmap: {what} {axis} of {path} is out of range for a value of "
                         f"rank {ndim}")
    return axis % ndim


def _batch_size(leaves: list, axes: list, paths: list[str]) -> int:
    sizes = {}
    for leaf, axis, path in zip(leaves, axes, paths):
        if axis is not None:
            sizes[path] = tracing.type_info(leaf, "vmap")[0][axis]
    if not sizes:
        raise ValueError("vmap: no argument is batched (every in_axes entry is None); "
                         "give at least one argument a batch axis")
    if len(set(sizes.values())) != 1:
        listed = ", ".join(f"{path}: {size}" for path, size in sizes.items())
        raise ValueError(f"vmap: batched arguments disagree on the batch size ({listed})")
    return next(iter(sizes.values()))


def _example(leaf: Any, axis: int | None) -> Any:
    """What `fn` is traced on for one leaf: itself, or a ShapeDtype without the axis."""
    if axis is None:
        return leaf
    shape, dtype, _ = tracing.type_info(leaf, "vmap")
    return ShapeDtype(shape[:axis] + shape[axis + 1:], dtype.numpy)


def _move_axis(value: Any, source: int, target: int) -> Any:
    """`value` (Tensor or array) with axis `source` moved to position `target`."""
    if source == target:
        return value
    if not isinstance(value, tracing.Tensor):
        return np.moveaxis(np.asarray(value), source, target)
    order = [a for a in range(value.ndim) if a != source]
    order.insert(target, source)
    return tracing.apply("transpose", value, weak=value.weak, perm=tuple(order))


def _output(value: tracing.Tensor, is_batched: bool, axis: int | None, size: int,
            path: str) -> tracing.Tensor:
    if axis is None:
        if is_batched:
            raise ValueError(f"vmap: out_axes is None for {path}, but it depends on a "
                             "batched argument, so it differs per example")
        return value
    axis = _normalize(axis, value.ndim + (0 if is_batched else 1), path, "out_axes")
    if not is_batched:
        dims = tuple(range(1, value.ndim + 1))
        value = tracing.apply("broadcast_in_dim", value, weak=value.weak,
                              shape=(size,) + value.shape, dims=dims)
    return _move_axis(value, 0, axis)


def vmap(fn: Callable, in_axes: Any = 0, out_axes: Any = 0) -> Callable:
    """`fn` mapped over a batch axis of its arguments (see the module docstring)."""
    if not callable(fn):
        raise TypeError(f"pc.vmap expects a function, got {type(fn).__name__}")
    if isinstance(in_axes, list):
        in_axes = tuple(in_axes)

    def transformed(*args):
        leaves, in_tree = tree_flatten(args)
        paths = tree_paths(args, "args")
        if isinstance(in_axes, tuple) and len(in_axes) != len(args):
            raise ValueError(f"vmap: in_axes has {len(in_axes)} entries for {len(args)} "
                             "positional argument(s)")
        axes = [_normalize(axis, len(tracing.type_info(leaf, "vmap")[0]), path, "in_axes")
                for axis, leaf, path in zip(_broadcast_axes(in_axes, in_tree, "in_axes"),
                                            leaves, paths)]
        size = _batch_size(leaves, axes, paths)
        examples = [_example(leaf, axis) for leaf, axis in zip(leaves, axes)]
        traced = tracing.trace_to_graph(fn, tree_unflatten(in_tree, examples),
                                        name=tracing.function_name(fn))
        flags = [axis is not None for axis in axes] + [False] * len(traced.captured)
        batched = batch_graph(traced.graph, flags, size)
        inputs = [leaf if axis is None else _move_axis(leaf, axis, 0)
                  for leaf, axis in zip(leaves, axes)]
        results = tracing.bind(batched.graph, inputs + list(traced.captured), traced.out_weak)
        out_struct = tree_unflatten(traced.out_tree, results)
        out_spec = _broadcast_axes(out_axes, traced.out_tree, "out_axes")
        out_paths = tree_paths(out_struct, "output")
        outputs = [_output(value, is_batched, axis, size, path) for value, is_batched, axis, path
                   in zip(results, batched.out_batched, out_spec, out_paths)]
        return tree_unflatten(traced.out_tree, outputs)

    name = f"vmap_{tracing.function_name(fn) or 'fn'}"
    transformed.__name__ = name
    return _eager(transformed, name)
