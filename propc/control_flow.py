"""Loops and branches that stay one op: `scan`, `fori_loop`, `cond`, `while_loop`.

Each traces the user's body (or branches) once, in a nested trace, into a region
graph, and records one control-flow op (ir/control_flow.py) in the current trace.
Values the body closes over (Tensors of the enclosing trace) become the region's
leading inputs and the op's leading operands ("consts"), so a region reads only its
own inputs. Pytrees (tuples, lists, dicts, namedtuples) work for carries, xs and ys.

Outside a trace these run eagerly through the interpreter, like every pc function.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

import ir
from ir import DType, TensorType

from .errors import ShapeError, TraceTypeError
from .pytree import TreeDef, tree_flatten, tree_paths, tree_unflatten
from .signature import ShapeDtype
from .tensor import Tensor
from .tracing import Traced, adopt, cast, current_trace, to_tensor, trace_to_graph, traceable


def _leaves(tree: Any, what: str, op: str) -> tuple[list[Tensor], TreeDef, list[str]]:
    """The leaves of `tree` as Tensors of the current trace, its structure and paths."""
    leaves, treedef = tree_flatten(tree)
    paths = tree_paths(tree, what)
    return [to_tensor(leaf, op) for leaf in leaves], treedef, paths


def _types(values) -> str:
    return "(" + ", ".join(str(t) for t in values) + ")"


def _regions(traced: list[Traced], names: list[str], leading: int,
             op: str) -> tuple[list[ir.Graph], list[Tensor]]:
    """Each traced graph as a region taking the captured values of all of them
    (consts, in first-capture order) first, then its `leading` argument leaves, so
    sibling regions (cond's branches, while_loop's cond and body) share one
    signature. Returns the regions and the consts as Tensors of the current trace."""
    context = current_trace()
    consts: list[Tensor] = []
    position: dict = {}
    for one in traced:
        for t in one.captured:
            inner = adopt(t, context, op)
            if inner.value not in position:
                position[inner.value] = len(consts)
                consts.append(inner)
    regions = []
    for one, name in zip(traced, names):
        graph = one.graph
        b = ir.Builder(name)
        shared = [b.input(t.type) for t in consts]
        args = [b.input(v.type) for v in graph.inputs[:leading]]
        own = [shared[position[adopt(t, context, op).value]] for t in one.captured]
        b.output(*b.inline(graph, args + own))
        regions.append(b.build())
    return regions, consts


def _check_tree(op: str, what: str, expected: TreeDef, got: TreeDef) -> None:
    if expected != got:
        raise TraceTypeError(op, f"{what} must keep the structure of the initial value: "
                                 f"expected {expected}, got {got}")


def _check_carry(op: str, paths: list[str], before: list[TensorType],
                 after: list[TensorType]) -> None:
    for path, old, new in zip(paths, before, after):
        if old != new:
            raise ShapeError(op, f"the body changes carry {path} from {old} to {new}; a "
                                 "carry must keep its shape and dtype",
                             hint="cast or reshape it in the body (or start from the "
                                  "type the body gives)")


def _scan_length(xs: list[Tensor], paths: list[str], length: int | None) -> int:
    """The trip count from the xs' leading axes and `length`; errors name both."""
    for x, path in zip(xs, paths):
        if x.ndim == 0:
            raise ShapeError("scan", f"{path} is a 0-d {x.type}; every xs leaf needs a "
                                     "leading axis to scan over")
    sizes = {x.shape[0] for x in xs}
    if len(sizes) > 1:
        shown = ", ".join(f"{p}: {x.type}" for p, x in zip(paths, xs))
        raise ShapeError("scan", f"xs leaves have different leading axes ({shown})")
    if length is not None:
        if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 0:
            raise TypeError(f"scan: length must be an int >= 0, got {length!r}")
        if sizes and sizes != {int(length)}:
            raise ShapeError("scan", f"length={length} but the xs have leading axis "
                                     f"{sizes.pop()}")
        return int(length)
    if not sizes:
        raise TypeError("scan: length is required when xs is None (or has no leaves)")
    return sizes.pop()


@traceable
def scan(f: Callable, init: Any, xs: Any = None, length: int | None = None,
         reverse: bool = False, checkpoint: bool = False) -> tuple[Any, Any]:
    """`(final carry, stacked ys)` of `carry, y = f(carry, x)` over the xs' leading axis.

    JAX's meaning. checkpoint=True (propc's option) changes only the derivative: the
    forward saves only the carry each iteration starts from, and the backward
    recomputes each body, so residual memory is O(T x carry)."""
    carry, carry_tree, carry_paths = _leaves(init, "init", "scan")
    x_leaves, x_tree, x_paths = _leaves(xs, "xs", "scan")
    count = _scan_length(x_leaves, x_paths, length)
    slices = [ShapeDtype(x.shape[1:], x.type.dtype.numpy) for x in x_leaves]

    def body(*leaves):
        result = f(tree_unflatten(carry_tree, leaves[:len(carry)]),
                   tree_unflatten(x_tree, leaves[len(carry):]))
        if not isinstance(result, tuple) or len(result) != 2:
            raise TraceTypeError("scan", "the body must return a pair (carry, y), got "
                                         f"{type(result).__name__}")
        return result

    traced = trace_to_graph(body, tuple(carry) + tuple(slices), name="body")
    _check_tree("scan", "the body's carry", carry_tree, traced.out_tree.children[0])
    (region,), consts = _regions([traced], ["body"], len(carry) + len(slices), "scan")
    _check_carry("scan", carry_paths, [t.type for t in carry],
                 region.output_types[:len(carry)])
    results = _emit("scan", consts + carry + x_leaves, body=region, length=count,
                    reverse=bool(reverse), num_consts=len(consts), num_carry=len(carry),
                    checkpoint=bool(checkpoint))
    y_tree = traced.out_tree.children[1]
    return (tree_unflatten(carry_tree, results[:len(carry)]),
            tree_unflatten(y_tree, results[len(carry):]))


def _emit(prim: str, operands: list[Tensor], **attrs: Any) -> list[Tensor]:
    context = current_trace()
    values = context.emit(prim, *(t.value for t in operands), **attrs)
    return [Tensor(v, context, False) for v in values]


@traceable
def fori_loop(lower: int, upper: int, body: Callable, init: Any) -> Any:
    """`val = body(i, val)` for i in range(lower, upper) (static bounds); i is an
    int32 0-d tensor. One scan without xs/ys whose carry holds the counter."""
    for name, bound in (("lower", lower), ("upper", upper)):
        if isinstance(bound, bool) or not isinstance(bound, (int, np.integer)):
            raise TypeError(f"fori_loop: {name} must be a Python int (static bounds; use "
                            f"while_loop for a traced bound), got {type(bound).__name__}")
    start = to_tensor(np.int32(lower), "fori_loop")

    def step(carry, _):
        i, value = carry
        return (i + np.int32(1), body(i, value)), ()

    (_, value), _ = scan(step, (start, init), None, length=max(int(upper) - int(lower), 0))
    return value


def _predicate(pred: Any) -> Tensor:
    """`pred` as a bool 0-d tensor (nonzero is true); a TypeError names its type."""
    t = to_tensor(pred, "cond")
    if t.ndim != 0:
        raise TraceTypeError("cond", f"the predicate must be a 0-d (scalar) tensor, got "
                                     f"{t.type}")
    if t.type.dtype is DType.bool:
        return t
    return t != cast(to_tensor(0, "cond", t.type.dtype), t.type.dtype)


@traceable
def cond(pred: Any, true_fn: Callable, false_fn: Callable, *operands: Any) -> Any:
    """The result of `true_fn(*operands)` if `pred` else `false_fn(*operands)`; only
    the taken branch runs. Both must return the same structure, shapes and dtypes."""
    predicate = _predicate(pred)
    leaves, tree, _ = _leaves(operands, "operands", "cond")
    names = ["true_branch", "false_branch"]
    traced = [trace_to_graph(lambda *xs, fn=fn: fn(*tree_unflatten(tree, xs)),
                             tuple(leaves), name=name)
              for name, fn in zip(names, (true_fn, false_fn))]
    if traced[0].out_tree != traced[1].out_tree:
        raise TraceTypeError("cond", f"the branches return different structures: "
                                     f"{traced[0].out_tree} and {traced[1].out_tree}")
    regions, consts = _regions(traced, names, len(leaves), "cond")
    given = [r.output_types for r in regions]
    if given[0] != given[1]:
        raise TraceTypeError("cond", f"the branches return different types: true_fn "
                                     f"{_types(given[0])}, false_fn {_types(given[1])}")
    results = _emit("cond", [predicate] + consts + leaves, **dict(zip(names, regions)))
    return tree_unflatten(traced[0].out_tree, results)


@traceable
def while_loop(cond_fn: Callable, body_fn: Callable, init: Any) -> Any:
    """`val = body_fn(val)` while `cond_fn(val)`; forward only (grad through it is a
    TypeError: use fori_loop or scan)."""
    carry, tree, paths = _leaves(init, "init", "while_loop")
    traced_cond = trace_to_graph(lambda *xs: cond_fn(tree_unflatten(tree, xs)),
                                 tuple(carry), name="cond")
    traced_body = trace_to_graph(lambda *xs: body_fn(tree_unflatten(tree, xs)),
                                 tuple(carry), name="body")
    _check_tree("while_loop", "body_fn's result", tree, traced_body.out_tree)
    (test, body), consts = _regions([traced_cond, traced_body], ["cond", "body"],
                                    len(carry), "while_loop")
    if test.output_types != [TensorType((), DType.bool)]:
        raise TraceTypeError("while_loop", "cond_fn must return a bool 0-d tensor, got "
                                           f"{_types(test.output_types)}")
    _check_carry("while_loop", paths, [t.type for t in carry], body.output_types)
    results = _emit("while_loop", consts + carry, cond=test, body=body,
                    num_consts=len(consts))
    return tree_unflatten(tree, results)
