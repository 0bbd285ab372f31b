"""Neural-network building blocks, composed from propc functions (so from primitives).

The softmax family is built in max-subtracted form: with m the row maximum,
logsumexp(x) = log(sum(exp(x - m))) + m. `logsumexp` (and with it `log_softmax`
and `cross_entropy`) is one IR primitive, whose kernel and VJP (g * exp(x - result))
apply that form; `softmax` is composed, its shift m a constant for the gradient
(stop_gradient) since the result does not depend on it. A row that is all -inf has
no finite maximum: it is shifted by 0 instead, its sum of exponentials is 0, and the
helpers return -inf (logsumexp, log_softmax) or 0 (softmax) there, with no NaN in
values or gradients.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ir import DType

from .errors import ShapeError, TraceTypeError
from .numpy_api import (abs, exp, log, matmul, maximum, mean, sqrt, stop_gradient, subtract, sum,
                        tanh, where)
from .numpy_api import max as reduce_max
from .promotion import float_result, to_dtype
from .shape_ops import normalize_axes, reshape
from .tracing import Tensor, apply, cast, full, to_tensor, traceable
from .conv import avg_pool2d, conv2d, max_pool2d  # noqa: F401  (re-exported)
from .numpy_math import float_operand, log1p
from .take import embedding  # noqa: F401  (re-exported)


def _as_float(x: Any, op: str) -> Tensor:
    """x as a float Tensor (integers become float64, like NumPy's float functions)."""
    return float_operand(x, op)


@traceable
def relu(x: Any) -> Tensor:
    """max(x, 0) elementwise."""
    return maximum(x, 0)


@traceable
def sigmoid(x: Any) -> Tensor:
    """1 / (1 + exp(-x)), computed from z = exp(-|x|) <= 1 so nothing overflows:
    x >= 0: 1 / (1 + z);  x < 0: z / (1 + z)."""
    x = _as_float(x, "sigmoid")
    z = exp(-abs(x))
    return where(x >= 0, 1.0, z) / (1.0 + z)


@traceable
def softplus(x: Any) -> Tensor:
    """log(1 + exp(x)) in the stable form max(x, 0) + log1p(exp(-|x|))."""
    x = _as_float(x, "softplus")
    return maximum(x, 0.0) + log1p(exp(-abs(x)))


@traceable
def gelu(x: Any) -> Tensor:
    """GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    x = _as_float(x, "gelu")
    inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * (x * x * x))
    return 0.5 * x * (1.0 + tanh(inner))


def _shifted_exponentials(x: Any, axis: Any, op: str):
    """(shift, x - shift, exp(x - shift), safe row sums, rows with sum 0), keepdims form.

    The shift is the row max (0 where it is infinite) with no gradient; a row sum of
    0 (an all -inf row) is replaced by 1 so that logs and divisions stay finite.
    """
    x = _as_float(x, op)
    axes = normalize_axes(axis, x.ndim, op, str(x.type))
    if any(x.shape[a] == 0 for a in axes):  # empty rows: no maximum, nothing to shift
        kept = tuple(1 if a in axes else size for a, size in enumerate(x.shape))
        row_max = full(kept, 0.0, x.type.dtype, weak=x.weak)
    else:
        row_max = reduce_max(x, axis=axes, keepdims=True)
    shift = stop_gradient(where(abs(row_max) == math.inf, 0.0, row_max))
    shifted = x - shift
    exps = exp(shifted)
    total = sum(exps, axis=axes, keepdims=True)
    empty = total == 0.0
    return shift, shifted, exps, where(empty, 1.0, total), empty, axes


@traceable
def softmax(x: Any, axis: Any = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along `axis`, max-shifted; all -inf rows give 0."""
    _, _, exps, safe_total, _, _ = _shifted_exponentials(x, axis, "softmax")
    return exps / safe_total


@traceable
def log_softmax(x: Any, axis: Any = -1) -> Tensor:
    """x - logsumexp(x) along `axis`; an all -inf row gives -inf (not -inf + inf)."""
    x = _as_float(x, "log_softmax")
    total = logsumexp(x, axis, keepdims=True)
    return x - where(total == -math.inf, 0.0, total)


@traceable
def logsumexp(x: Any, axis: Any = -1, keepdims: bool = False) -> Tensor:
    """log(sum(exp(x))) along `axis`: the `logsumexp` primitive (max-shifted, one
    kernel of two passes when compiled); an all -inf row gives -inf."""
    x = _as_float(x, "logsumexp")
    axes = normalize_axes(axis, x.ndim, "logsumexp", str(x.type))
    result = apply("logsumexp", x, weak=x.weak, axes=axes)
    if keepdims:
        result = reshape(result, tuple(1 if i in axes else d for i, d in enumerate(x.shape)))
    return result


def _integer_labels(labels: Any, op: str) -> Tensor:
    labels = to_tensor(labels, op)
    if not labels.type.dtype.is_int:
        raise TraceTypeError(op, f"labels must be integers, got {labels.type}",
                             hint="convert with .astype(np.int32)")
    return labels


@traceable
def one_hot(labels: Any, n: int, dtype: Any = np.float32) -> Tensor:
    """labels (...) -> (..., n): 1 at each label's class, 0 elsewhere (none if out of range)."""
    labels = _integer_labels(labels, "one_hot")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise TraceTypeError("one_hot", f"n must be a non-negative int, got {n!r}")
    target = to_dtype(dtype, "one_hot")
    shape = labels.shape + (int(n),)
    classes = apply("iota", shape=shape, dtype=labels.type.dtype, dimension=labels.ndim)
    hit = labels[..., None] == classes
    return cast(hit, target) if target is not DType.bool else hit


@traceable
def cross_entropy(logits: Any, labels: Any) -> Tensor:
    """Mean over all label positions of -log_softmax(logits)[label].

    logits (..., C) floats, labels (...) integers. Built on log_softmax, never
    log(softmax); the label's entry is picked with a select, so -inf logits of other
    classes cannot turn into NaN.
    """
    logits = _as_float(logits, "cross_entropy")
    labels = _integer_labels(labels, "cross_entropy")
    if logits.ndim == 0 or labels.shape != logits.shape[:-1]:
        raise ShapeError("cross_entropy", f"logits {logits.type} and labels {labels.type}: "
                         "labels must have the logits' shape without the class axis")
    log_probs = log_softmax(logits, axis=-1)
    chosen = one_hot(labels, logits.shape[-1], dtype=bool)
    picked = sum(where(chosen, log_probs, 0.0), axis=-1)
    return -mean(picked)


@traceable
def mse(pred: Any, target: Any) -> Tensor:
    """Mean squared error over all elements (operands broadcast)."""
    diff = subtract(pred, target)
    return mean(diff * diff)


@traceable
def layer_norm(x: Any, gamma: Any, beta: Any, eps: float = 1e-5) -> Tensor:
    """Normalise the last axis: (x - mean) / sqrt(var + eps) * gamma + beta.

    The variance is the biased one, computed in two passes (mean first).
    """
    x = _as_float(x, "layer_norm")
    if x.ndim == 0:
        raise ShapeError("layer_norm", f"x {x.type} needs at least one axis")
    size = x.shape[-1]
    for name, param in (("gamma", gamma), ("beta", beta)):
        shape = param.shape if isinstance(param, Tensor) else np.shape(param)
        if tuple(shape) != (size,):
            raise ShapeError("layer_norm", f"{name} has shape {list(shape)}, expected "
                             f"[{size}] (the last axis of x {x.type})")
    centered = x - mean(x, axis=-1, keepdims=True)
    variance = mean(centered * centered, axis=-1, keepdims=True)
    return centered / sqrt(variance + eps) * gamma + beta


@traceable
def linear(x: Any, W: Any, b: Any = None) -> Tensor:
    """x @ W + b (b may be None)."""
    y = matmul(x, W)
    return y if b is None else y + b


def init_mlp(sizes: Sequence[int], seed: int = 0, dtype: Any = np.float32) -> list[tuple]:
    """Parameters [(W, b), ...] of an MLP with layer widths `sizes`, as NumPy arrays.

    W has shape (n_in, n_out), drawn from a normal with std sqrt(2 / n_in) (He
    initialisation, suited to relu); b is zeros of shape (n_out,).
    """
    sizes = list(sizes)
    if len(sizes) < 2 or any(isinstance(n, bool) or not isinstance(n, (int, np.integer))
                             or n <= 0 for n in sizes):
        raise ValueError(f"init_mlp: sizes must be at least two positive ints, got {sizes!r}")
    np_dtype = to_dtype(dtype, "init_mlp").numpy
    rng = np.random.default_rng(seed)
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        W = rng.standard_normal((n_in, n_out)) * math.sqrt(2.0 / n_in)
        params.append((W.astype(np_dtype), np.zeros((n_out,), dtype=np_dtype)))
    return params
