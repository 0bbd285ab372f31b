"""The bad-input matrix for compiled functions: one row per kind of argument.

Each row is Python source run in a child process (see test_bad_input.py) after
PRELUDE. A row either raises — the test then checks the exception's type and
that its message names the argument path, the expected and the actual thing — or
finishes, having asserted its own results against NumPy / the interpreter.

Row = (name, source, expected exception class name or None, message fragments).
"""
from __future__ import annotations

PRELUDE = """
import numpy as np
import propc as pc
from propc.compile import compile

f32 = np.float32
rng = np.random.default_rng(0)
x = rng.standard_normal((4, 3)).astype(f32)
W = rng.standard_normal((3, 2)).astype(f32)
b = rng.standard_normal(2).astype(f32)
matmul = compile(lambda x, W: x @ W)
affine = compile(lambda p, x: x @ p["W"] + p["b"])


def same(actual, expected, rtol=1e-5):
    assert isinstance(actual, np.ndarray), type(actual)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert np.array_equal(np.isnan(actual), np.isnan(expected)), (actual, expected)
    finite = np.isfinite(expected)
    assert np.array_equal(actual[~finite & ~np.isnan(expected)],
                          expected[~finite & ~np.isnan(expected)]), (actual, expected)
    assert np.allclose(actual[finite], expected[finite], rtol=rtol, atol=1e-6), (actual, expected)
"""

# Trace errors name the user's line: here the line of the `x @ W` lambda.
_MATMUL_SOURCE = "matmul = compile(lambda x, W: x @ W)"
MATMUL_LINE = f"prelude.py:{PRELUDE.split(chr(10)).index(_MATMUL_SOURCE) + 1}:"

ROWS: list[tuple[str, str, str | None, list[str]]] = [
    # -- arity and structure ------------------------------------------------------------
    ("arity_missing_argument", "matmul(x)", "TypeError", ["missing", "'W'"]),
    ("arity_extra_argument", "matmul(x, W, W)", "TypeError", ["2 positional", "3"]),
    ("keyword_argument", "same(matmul(x, W=W), x @ W)", None, []),
    ("keyword_argument_unknown", "matmul(x, V=W)", "TypeError", ["keyword", "'V'"]),
    ("structure_dict_missing_key", "affine({'W': W}, x)", "KeyError", ["'b'"]),
    ("structure_tuple_for_dict", "affine((W, b), x)", "TypeError", ["tuple"]),
    ("structure_error_does_not_poison_cache", """
try:
    affine({"W": W}, x)
except KeyError:
    pass
same(affine({"W": W, "b": b}, x), x @ W + b)
same(affine({"b": b, "W": W}, x), x @ W + b)
""", None, []),
    ("structure_change_retraces", """
layers = compile(lambda ps, x: sum((x @ w + c).sum() for w, c in ps))
same(layers([(W, b)], x), np.asarray((x @ W + b).sum()))
same(layers([(W, b), (W, b)], x), np.asarray(2 * (x @ W + b).sum()), rtol=1e-4)
assert layers.cache_size == 2
""", None, []),
    # -- shapes ---------------------------------------------------------------------------
    ("shape_mismatch", "matmul(x, np.ones((4, 2), f32))", "ValueError",
     ["matmul", "f32[4,3]", "f32[4,2]", MATMUL_LINE]),
    ("shape_change_retraces", """
same(matmul(x, W), x @ W)
same(matmul(x[:2], W), x[:2] @ W)
same(matmul(np.ones((0, 3), f32), W), np.zeros((0, 2), f32))
""", None, []),
    ("shape_dtype_is_not_a_runtime_argument", "matmul(pc.ShapeDtype((4, 3)), W)", "TypeError",
     ["args[0]", "ShapeDtype", "array"]),
    # -- dtypes and leaf kinds ----------------------------------------------------------
    ("dtype_float16", "matmul(x.astype(np.float16), W)", "TypeError",
     ["row_dtype_float16.py:1:", "args[0]", "float16", "float32"]),
    ("dtype_uint8", "matmul(x, W.astype(np.uint8))", "TypeError", ["args[1]", "uint8", "float32"]),
    ("dtype_complex64", "matmul(x.astype(np.complex64), W)", "TypeError",
     ["args[0]", "complex64", "float32"]),
    ("dtype_in_nested_leaf", "affine({'W': W.astype(np.float16), 'b': b}, x)", "TypeError",
     ["args[0]['W']", "float16", "float32"]),
    ("leaf_string", "matmul('abc', W)", "TypeError", ["args[0]", "str", "array"]),
    ("leaf_object", "matmul(x, object())", "TypeError", ["args[1]", "object", "array"]),
    ("leaf_object_array", "matmul(np.array([1, None]), W)", "TypeError",
     ["args[0]", "object", "float32"]),
    ("leaf_string_array", "matmul(np.array(['a', 'b']), W)", "TypeError", ["args[0]", "U1"]),
    ("leaf_python_complex", "compile(lambda a: a * 2)(1j)", "TypeError",
     ["args[0]", "complex", "number"]),
    ("leaf_python_list_is_a_pytree", "matmul([[1.0, 2.0, 3.0]], W)", "TypeError",
     ["matmul", "list", MATMUL_LINE]),
    ("python_int_out_of_int32", "compile(lambda a: a * 2)(2**40)", "TypeError",
     ["args[0]", "int32", "int64"]),
    ("dtypes_supported", """
double = compile(lambda a: a + a)
for dtype in (np.float32, np.float64, np.int32, np.int64):
    a = np.arange(5).astype(dtype)
    same(double(a), a + a)
flags = np.array([True, False])
same(compile(lambda a: a.astype(np.int32) * 2)(flags), flags.astype(np.int32) * 2)
""", None, []),
    # -- 0-d and Python scalars -----------------------------------------------------------
    ("zero_d_arguments", """
twice = compile(lambda a: a * 2)
same(twice(np.float32(3)), np.asarray(np.float32(6)))
same(twice(np.array(3, f32)), np.array(6, f32))
same(twice(3.0), np.array(6, f32))
same(twice(3), np.array(6, np.int32))
same(compile(lambda a: a.sum())(x), np.asarray(x.sum(dtype=f32)))
""", None, []),
    # -- layouts --------------------------------------------------------------------------
    ("non_contiguous_inputs_are_copied", """
wide = rng.standard_normal((4, 6)).astype(f32)
before = wide.copy()
same(matmul(wide[:, ::2], W), wide[:, ::2] @ W)
same(matmul(wide[::-1, 1::2], W), wide[::-1, 1::2] @ W)
same(matmul(np.asfortranarray(x), W), x @ W)
same(matmul(wide[:, :3].T.T, np.ascontiguousarray(W.T).T), wide[:, :3] @ W)
assert np.array_equal(wide, before)
""", None, []),
    ("unaligned_and_readonly_inputs", """
raw = np.zeros(4 * 12 + 1, np.uint8)
unaligned = np.frombuffer(raw.data, dtype=f32, count=12, offset=1).reshape(4, 3)
assert not unaligned.flags.aligned
unaligned_copy = np.array(unaligned)
same(matmul(unaligned, W), unaligned_copy @ W)
frozen = x.copy()
frozen.flags.writeable = False
same(matmul(frozen, W), x @ W)
""", None, []),
    # -- values ---------------------------------------------------------------------------
    ("nan_and_inf_propagate_like_the_interpreter", """
def model(x, W, b):
    h = pc.maximum(x @ W + b, 0.0)
    return (pc.exp(h) - pc.log(pc.abs(x).sum(axis=1, keepdims=True)) + h.max(axis=0),
            pc.where(x > 0, pc.sqrt(x), -x), x.min(axis=1), (x / x).sum())
special = x.copy()
special[0, 0], special[1, 1], special[2, 2] = np.nan, np.inf, -np.inf
special[3] = [0.0, -0.0, np.nan]
native, oracle = compile(model), pc.interpret(model)
infinite_bias = np.array([np.inf, -np.inf], f32)
for inputs in ((special, W, b), (x, np.full_like(W, np.nan), b), (x, W, infinite_bias)):
    for got, want in zip(native(*inputs), oracle(*inputs)):
        same(got, want)
""", None, []),
    # -- transforms ---------------------------------------------------------------------
    ("pullback_cotangent_shape",
     "pc.vjp(lambda x, W: pc.tanh(x @ W), x, W)[1](np.ones((4, 5), f32))", "ValueError",
     ["cotangent", "f32[4,2]", "(4, 5)"]),
    ("pullback_cotangent_structure",
     "pc.vjp(lambda x, W: (x @ W, x.sum()), x, W)[1]([np.ones((4, 2), f32)])", "TypeError",
     ["structure"]),
    ("grad_of_non_scalar", "pc.grad(lambda x: x * 2)(x)", "TypeError", ["scalar", "f32[4,3]"]),
    ("grad_of_integer_argument",
     "pc.grad(lambda x, n: (x * n).sum(), argnums=1)(x, np.int32(2))", "TypeError",
     ["args[1]", "int32", "float"]),
    ("compiled_grad_float16", "compile(pc.grad(lambda x: (x * x).sum()))(x.astype(np.float16))",
     "TypeError", ["args[0]", "float16"]),
    # -- sizes that cannot be allocated ---------------------------------------------------
    ("huge_output_cannot_be_allocated",
     "compile(lambda a: pc.broadcast_to(a, (2**20, 2**20)))(np.ones(1, f32))",
     "MemoryError", ["allocate"]),
    ("output_larger_than_address_space",
     "compile(lambda a: pc.broadcast_to(a, (2**40, 2**40)))(np.ones(1, f32))",
     "ValueError", ["too big"]),
    ("huge_scratch_cannot_be_allocated",
     "compile(lambda a: pc.exp(pc.broadcast_to(a, (2**20, 2**20)))"
     " @ pc.broadcast_to(a, (2**20, 2)))(np.ones(1, f32))",
     "MemoryError", ["allocate"]),
    ("huge_shapes_lower_without_allocating", """
lowered = compile(lambda a: (a * 2).sum()).lower(pc.ShapeDtype((2**31, 2**31), f32))
assert lowered.graph.inputs[0].type.shape == (2**31, 2**31)
assert lowered.cost.flops >= 2**62
assert "define" in lowered.llvm_ir
""", None, []),
]
