"""`pc.einsum`: np.einsum subscripts lowered to `dot`, `reduce_sum` and `transpose`.

Operands are contracted left to right, two at a time: a label shared by both and
still needed (by the output or a later operand) is a batch axis of the `dot`, a
shared label needed nowhere else is contracted, and a label of one operand needed
nowhere else is summed away first. The last result is transposed into the output's
label order. Implicit output (no "->"): the labels used once, in alphabetical order,
like NumPy. Not supported: "..." and a label repeated within one operand (diagonals).
"""
from __future__ import annotations

from typing import Any

from .errors import ShapeError, TraceTypeError
from .promotion import result_type
from .reductions import sum
from .shape_ops import transpose
from .tracing import Tensor, apply, cast, to_tensor, traceable, type_info


def _parse(subscripts: str, count: int) -> tuple[list[str], str]:
    if not isinstance(subscripts, str):
        raise TraceTypeError("einsum", f"subscripts must be a string, got {subscripts!r}")
    text = subscripts.replace(" ", "")
    if "." in text:
        raise TraceTypeError("einsum", f"'...' in {subscripts!r} is not supported",
                             hint="write every axis label out")
    inputs, arrow, output = text.partition("->")
    terms = inputs.split(",")
    if len(terms) != count:
        raise ShapeError("einsum", f"{subscripts!r} names {len(terms)} operands, got {count}")
    for term in terms + [output]:
        if not all(c.isalpha() for c in term) or len(set(term)) != len(term):
            raise TraceTypeError("einsum", f"term {term!r} of {subscripts!r} must be distinct "
                                 "letters (repeated labels are not supported)")
    if not arrow:
        once = [c for c in set(inputs) if c.isalpha() and inputs.count(c) == 1]
        output = "".join(sorted(once))
    return terms, output


def _sum_unneeded(t: Tensor, labels: str, needed: set[str]) -> tuple[Tensor, str]:
    axes = tuple(i for i, c in enumerate(labels) if c not in needed)
    if not axes:
        return t, labels
    return sum(t, axis=axes), "".join(c for c in labels if c in needed)


def _contract(a: Tensor, la: str, b: Tensor, lb: str, needed: set[str]) -> tuple[Tensor, str]:
    batch = [c for c in la if c in lb and c in needed]
    contract = [c for c in la if c in lb and c not in needed]
    result = apply("dot", a, b, weak=a.weak and b.weak,
                   lhs_batch=tuple(la.index(c) for c in batch),
                   rhs_batch=tuple(lb.index(c) for c in batch),
                   lhs_contract=tuple(la.index(c) for c in contract),
                   rhs_contract=tuple(lb.index(c) for c in contract))
    labels = ("".join(batch) + "".join(c for c in la if c not in lb)
              + "".join(c for c in lb if c not in la))
    return result, labels


@traceable
def einsum(subscripts: str, *operands: Any) -> Tensor:
    """np.einsum for explicit letter subscripts, e.g. "bij,bjk->bik", "ij->ji", "i,i->"."""
    if not operands:
        raise TraceTypeError("einsum", "needs at least one operand")
    terms, output = _parse(subscripts, len(operands))
    infos = [type_info(x, "einsum") for x in operands]
    dtype, _ = result_type([(d, w) for _, d, w in infos])
    tensors = [cast(to_tensor(x, "einsum", dtype), dtype) for x in operands]
    sizes: dict[str, int] = {}
    for t, term in zip(tensors, terms):
        if t.ndim != len(term):
            raise ShapeError("einsum", f"term {term!r} has {len(term)} labels but operand "
                             f"{t.type} has {t.ndim} axes")
        for c, size in zip(term, t.shape):
            if sizes.setdefault(c, size) != size:
                raise ShapeError("einsum", f"label {c!r} has sizes {sizes[c]} and {size} in "
                                 f"{subscripts!r}")
    for c in output:
        if c not in sizes:
            raise ShapeError("einsum", f"output label {c!r} of {subscripts!r} is in no operand")

    def needed_after(position: int) -> set[str]:
        return set(output).union(*[set(term) for term in terms[position + 1:]])

    result, labels = _sum_unneeded(tensors[0], terms[0], needed_after(0))
    for position in range(1, len(tensors)):
        needed = needed_after(position)
        other, other_labels = _sum_unneeded(tensors[position], terms[position],
                                            needed | set(labels))
        result, labels = _sum_unneeded(result, labels, needed | set(other_labels))
        result, labels = _contract(result, labels, other, other_labels, needed)
    result, labels = _sum_unneeded(result, labels, set(output))
    return transpose(result, tuple(labels.index(c) for c in output))


__all__ = ["einsum"]
