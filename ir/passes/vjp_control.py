"""VJP rules of the control-flow ops (ir/control_flow.py): one rule per op, and for
`scan` a forward rule that makes the primal scan also stack what its backward reads.

scan. The body is differentiated once (`vjp_graph`) and split by the same partition
pass as any graph (`partition`, policy "save"): its forward gives the body's outputs
plus per-iteration residuals, its backward maps residuals and output cotangents to
input cotangents. In the joint graph the primal scan runs that forward body, so each
residual becomes one more stacked output (T x its bytes). Residuals that are body
inputs are not stacked: a const is passed to the backward as a const, an x slice is
read from xs itself. The backward is one scan running the other way: its carries are
the carry cotangents and the running sums of the const cotangents; its xs are the
stacked residuals, the xs and the y cotangents; its ys are the xs' cotangents.
Integer and bool carries get no cotangent (they are not carried backwards).

checkpoint=True saves only the carries each iteration starts from (stacked) and the
backward body recomputes the body's forward from them before its backward (the
unpartitioned joint body): residual memory O(T x carry) instead of O(T x residuals),
at the price of running each body twice. Both forms perform the same float
operations on the same values, so the gradients are bit-identical.

cond. The backward is a `cond` on the same predicate whose branches are the joint
VJP graphs of the two branches (each recomputes its own forward, then its
backward): only the operands are kept, never a branch's intermediates.

while_loop has no VJP (its trip count is not known before it runs); the rule raises
a TypeError that points to fori_loop/scan.

(Scan transposed into a reversed scan: the same idea as JAX's scan partial
evaluation and transpose, written from scratch on this IR.)
"""
from __future__ import annotations

from dataclasses import dataclass

from ..builder import Builder
from ..control_flow import scan_parts
from ..errors import IRError
from ..graph import Graph, Op, Value
from .autodiff import AutodiffError, VJPGraph, instantiate, vjp_graph
from .partition import partition
from .vjp_rules import FORWARD_RULES, VJP_RULES


class ControlFlowGradError(AutodiffError, TypeError):
    """Reverse mode through an op that has none (while_loop)."""


def _floats(values) -> list[int]:
    return [i for i, v in enumerate(values) if v.dtype.is_float]


def _region(name: str, inputs, ops, outputs) -> Graph:
    return Graph(name, list(inputs), list(ops), list(outputs))


@dataclass
class ScanSaved:
    """What the forward rule of a scan hands its VJP rule.

    body_vjp: the body's joint VJP graph (wrt its float inputs).
    backward: the body's partitioned backward, or None with checkpoint=True.
    sources: where each backward residual comes from: ("const", j), ("x", j) or
      ("stacked", k) (the k-th extra stacked output of the primal scan).
    num_results: the result count of the original scan.
    """

    body_vjp: VJPGraph
    backward: Graph | None
    sources: list[tuple[str, int]]
    num_results: int


def _residual_plan(body: Graph, forward: Graph, nc: int, nk: int):
    """Sources of the partitioned residuals, and the values to stack per iteration."""
    residuals = forward.outputs[len(body.outputs):]
    positions = {v: i for i, v in enumerate(forward.inputs)}
    sources, stacked = [], []
    for value in residuals:
        index = positions.get(value) if value.producer is None else None
        if index is not None and index < nc:
            sources.append(("const", index))
        elif index is not None and index >= nc + nk:
            sources.append(("x", index - nc - nk))
        else:
            sources.append(("stacked", len(stacked)))
            stacked.append(value)
    return sources, stacked


def scan_forward(b: Builder, op: Op, operands: list[Value]):
    """The primal scan of a joint graph: the body also outputs its residuals."""
    body, attrs = op.attrs["body"], op.attrs
    nc, nk = attrs["num_consts"], attrs["num_carry"]
    body_vjp = vjp_graph(body, _floats(body.inputs))
    if attrs["checkpoint"]:
        carries = body.inputs[nc:nc + nk]
        sources = [("stacked", k) for k in range(nk)]
        forward_body = _region("body", body.inputs, body.ops, body.outputs + carries)
        backward = None
    else:
        forward, backward = partition(body_vjp)
        sources, stacked = _residual_plan(body, forward, nc, nk)
        outputs = forward.outputs[:len(body.outputs)] + stacked
        forward_body = _region("body", forward.inputs, forward.ops, outputs)
    results = b.emit("scan", *operands, loc=op.loc, **{**attrs, "body": forward_body})
    return results, ScanSaved(body_vjp, backward, sources, len(op.results))


def _backward_body(saved: ScanSaved, body: Graph, attrs: dict, types: dict) -> Graph:
    """The body of the reversed scan; see the module docstring for its layout."""
    nc, nk = attrs["num_consts"], attrs["num_carry"]
    fc, fk, fx = (_floats(body.inputs[:nc]), _floats(body.inputs[nc:nc + nk]),
                  _floats(body.inputs[nc + nk:]))
    rb = Builder("body")
    consts = [rb.input(t) for t in types["consts"]]
    ct_carry = [rb.input(t) for t in types["ct_carry"]]
    sums = [rb.input(t) for t in types["sums"]]
    slices = [rb.input(t.with_shape(t.shape[1:])) for t in types["xs"]]
    ct_ys = slices[len(slices) - len(types["ct_ys"]):]
    if saved.backward is None:              # checkpoint: recompute the body first
        nx = len(body.inputs) - nc - nk
        carries, xs = slices[:nk], slices[nk:nk + nx]
        joint = saved.body_vjp.graph
        outputs = rb.inline(joint, consts + carries + xs + ct_carry + ct_ys)
        cts = outputs[len(body.outputs):]
    else:
        stacked = slices[:len(slices) - len(types["ct_ys"])]
        where = {"const": consts, "stacked": stacked}
        x_first = sum(1 for kind, _ in saved.sources if kind == "stacked")
        where["x"] = stacked[x_first:]
        residuals = [where[kind][j] for kind, j in saved.sources]
        cts = rb.inline(saved.backward, residuals + ct_carry + ct_ys)
    if len(cts) != len(fc) + len(fk) + len(fx):
        raise IRError(f"internal: the body's VJP gave {len(cts)} cotangents for "
                      f"{len(fc) + len(fk) + len(fx)} float inputs")
    new_sums = [rb.add(s, ct) for s, ct in zip(sums, cts[:len(fc)])]
    rb.output(*cts[len(fc):len(fc) + len(fk)], *new_sums, *cts[len(fc) + len(fk):])
    return rb.build()


def scan_vjp(b: Builder, g: list, op: Op, operands: list[Value], saved: ScanSaved):
    """The reversed scan; returns one cotangent (or None) per operand."""
    attrs = dict(op.attrs)
    nc, nk = attrs["num_consts"], attrs["num_carry"]
    consts, carry, xs = scan_parts(attrs, operands)
    body = saved.body_vjp.graph
    num_inputs = saved.body_vjp.num_primal_inputs
    body_inputs = body.inputs[:num_inputs]
    body_outputs = body.outputs[:saved.body_vjp.num_primal_outputs]
    primal = _region("body", body_inputs, [], body_outputs)   # only its types are read
    fc, fk, fx = _floats(consts), _floats(carry), _floats(xs)
    results = op.results[:saved.num_results]
    ys = results[nk:]
    fy = _floats(ys)
    ct_carry = [instantiate(b, g[k]) for k in fk]
    ct_ys = [instantiate(b, g[nk + j]) for j in fy]
    sums = [b.zeros(consts[j].type) for j in fc]
    if saved.backward is None:
        b_consts = consts
        b_xs = list(op.results[saved.num_results:]) + xs
    else:
        b_consts = [consts[j] for kind, j in saved.sources if kind == "const"]
        b_xs = list(op.results[saved.num_results:])
        b_xs += [xs[j] for kind, j in saved.sources if kind == "x"]
        saved = _const_positions(saved)
    b_xs += ct_ys
    types = {"consts": [v.type for v in b_consts], "ct_carry": [v.type for v in ct_carry],
             "sums": [v.type for v in sums], "xs": [v.type for v in b_xs],
             "ct_ys": [v.type for v in ct_ys]}
    backward_body = _backward_body(saved, primal, attrs, types)
    out = b.emit("scan", *b_consts, *ct_carry, *sums, *b_xs, body=backward_body,
                 length=attrs["length"], reverse=not attrs["reverse"],
                 num_consts=len(b_consts), num_carry=len(ct_carry) + len(sums),
                 checkpoint=attrs["checkpoint"])
    cts: list[Value | None] = [None] * len(operands)
    for position, j in enumerate(fk):
        cts[nc + j] = out[position]
    for position, j in enumerate(fc):
        cts[j] = out[len(fk) + position]
    for position, j in enumerate(fx):
        cts[nc + nk + j] = out[len(fk) + len(fc) + position]
    return cts


def _const_positions(saved: ScanSaved) -> ScanSaved:
    """The same plan with const sources renumbered to the backward scan's consts and
    x sources to their place after the stacked residuals."""
    const_rank, x_rank, sources = 0, 0, []
    for kind, j in saved.sources:
        if kind == "const":
            sources.append(("const", const_rank))
            const_rank += 1
        elif kind == "x":
            sources.append(("x", x_rank))
            x_rank += 1
        else:
            sources.append((kind, j))
    return ScanSaved(saved.body_vjp, saved.backward, sources, saved.num_results)


def cond_vjp(b: Builder, g: list, op: Op, operands: list[Value]):
    """A cond on the same predicate running the taken branch's joint VJP graph."""
    rest = operands[1:]
    branches = {}
    for name in ("true_branch", "false_branch"):
        branch = op.attrs[name]
        joint = vjp_graph(branch, _floats(branch.inputs)).graph
        rb = Builder(name)
        inputs = [rb.input(v.type) for v in list(rest) + _float_outputs(branch)]
        outputs = rb.inline(joint, inputs)
        rb.output(*outputs[len(branch.outputs):])
        branches[name] = rb.build()
    cts_in = [instantiate(b, g[i]) for i in _floats(op.results)]
    out = b.emit("cond", operands[0], *rest, *cts_in, **branches)
    cts: list[Value | None] = [None] * len(operands)
    for position, j in enumerate(_floats(rest)):
        cts[1 + j] = out[position]
    return cts


def _float_outputs(graph: Graph) -> list[Value]:
    return [v for v in graph.outputs if v.dtype.is_float]


def while_vjp(b: Builder, g, op: Op, operands: list[Value]):
    raise ControlFlowGradError(
        f"while_loop at {op.loc}: reverse mode (grad/vjp) through a while_loop is not "
        "supported, since its trip count is only known when it runs; write the loop "
        "with pc.fori_loop (static bounds) or pc.scan")


VJP_RULES.update({"scan": scan_vjp, "cond": cond_vjp, "while_loop": while_vjp})
FORWARD_RULES.add("scan", scan_forward)

__all__ = ["ControlFlowGradError", "ScanSaved", "cond_vjp", "scan_forward", "scan_vjp",
           "while_vjp"]
