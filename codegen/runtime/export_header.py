"""The C99 header of an exported library (codegen/runtime/export.py, export_abi.py).

`header_text(code, arguments, source)` documents, for each pass, the argument
order with every array's role, shape and dtype, as a comment and as `#define`s
(`NAME_PASS_IN<i>_NDIM / _DIMS / _SIZE / _BYTES / _DTYPE`, the same for OUT<j>),
then declares the functions. `arguments` gives, per pass, (C parameter name,
description) for each input and each output: the caller knows what the flat
arguments were (pytree paths), the backend only their types.
"""
from __future__ import annotations

from ir.types import DType, TensorType

from .export import ExportedCode, ExportedPass
from .export_abi import ABI_VERSION, STATUS_MISALIGNED, STATUS_NO_MEMORY, STATUS_OK
from ..plan.memplan import ALIGN

C_TYPES = {DType.f32: "float", DType.f64: "double", DType.i32: "int32_t",
           DType.i64: "int64_t", DType.bool: "bool"}

# (C parameter name, description) of each input, then each output, of one pass
Arguments = tuple[list[tuple[str, str]], list[tuple[str, str]]]

_USAGE = """\
 * Calling a pass: one pointer per array, inputs then outputs, in the order below,
 * then `workspace`. Every array is C-contiguous (row-major) with exactly the
 * documented shape and element type (bool: one byte holding 0 or 1; a 0-d array
 * is a pointer to one element, its _NDIM 0 and _DIMS {{1}}). Outputs are written in full; they must not
 * overlap an input or each other. To continue from a call's results (a training
 * step's new parameters), pass them as the next call's inputs and give that call
 * other output buffers: swap two sets of buffers each step, or copy back.
 *
 * workspace: NULL (the call allocates its scratch with aligned_alloc and frees it)
 * or {NAME}_workspace_bytes() bytes aligned to {MACRO}_WORKSPACE_ALIGN, which one
 * call uses at a time: give each thread its own and calls never allocate. The
 * functions are reentrant: any number of threads may call them at once.
 * Each returns {MACRO}_OK, {MACRO}_ERROR_NO_MEMORY or {MACRO}_ERROR_MISALIGNED
 * (nothing was written then).
 *
 * Check at start-up that {NAME}_abi_version() == {MACRO}_ABI_VERSION and that
 * {NAME}_ir_hash() equals {MACRO}_IR_HASH when the library may be rebuilt apart
 * from this header."""


def header_text(code: ExportedCode, arguments: list[Arguments], source: str) -> str:
    """The header for `code`; `source` says what was exported (a comment)."""
    name, macro = code.name, code.name.upper()
    guard = f"{macro}_H_INCLUDED"
    target = code.target
    lines = [f"/* {name}.h: the C interface of {name}.so / {name}.o, written by propc export.",
             f" * Exported: {source}",
             f" * CPU: {target.name} (LLVM cpu {target.cpu}); {_threads_note(target.threads)}",
             f" * IR hash (SHA-256 of the exported graphs' text): {code.ir_hash}",
             " *",
             _USAGE.format(NAME=name, MACRO=macro), " */",
             f"#ifndef {guard}", f"#define {guard}", "",
             "#include <stdbool.h>", "#include <stddef.h>", "#include <stdint.h>", "",
             "#ifdef __cplusplus", 'extern "C" {', "#endif", "",
             f"#define {macro}_ABI_VERSION {ABI_VERSION}",
             f'#define {macro}_IR_HASH "{code.ir_hash}"',
             f"#define {macro}_WORKSPACE_BYTES {code.workspace_bytes}",
             f"#define {macro}_WORKSPACE_ALIGN {ALIGN}",
             f"#define {macro}_OK {STATUS_OK}",
             f"#define {macro}_ERROR_NO_MEMORY {STATUS_NO_MEMORY}",
             f"#define {macro}_ERROR_MISALIGNED {STATUS_MISALIGNED}", ""]
    for exported, names in zip(code.passes, arguments, strict=True):
        lines += _pass_lines(exported, names)
    lines += ["/* bytes of the largest workspace any pass needs (0: none) */",
              f"size_t {name}_workspace_bytes(void);",
              f"/* {macro}_ABI_VERSION of the library itself */",
              f"int {name}_abi_version(void);",
              f"/* {macro}_IR_HASH of the library itself */",
              f"const char *{name}_ir_hash(void);", "",
              "#ifdef __cplusplus", "}", "#endif", "", f"#endif /* {guard} */", ""]
    return "\n".join(lines)


def _threads_note(threads: int | None) -> str:
    if not threads or threads <= 1:
        return "one thread (no libgomp)."
    return (f"big products and loops on up to {threads} threads (libgomp teams: link the .o "
            "with -lgomp; OMP_* variables apply).")


def _pass_lines(exported: ExportedPass, names: Arguments) -> list[str]:
    inputs, outputs = names
    macro = exported.symbol.upper()
    rows = ([("in", f"IN{i}", c, what, kind)
             for i, ((c, what), kind) in enumerate(zip(inputs, exported.inputs, strict=True))]
            + [("out", f"OUT{j}", c, what, kind)
               for j, ((c, what), kind) in enumerate(zip(outputs, exported.outputs,
                                                         strict=True))])
    lines = [f"/* {exported.symbol}: {len(inputs)} inputs, {len(outputs)} outputs, "
             f"workspace {exported.workspace_bytes} bytes"]
    lines += [f" *   {role:<3} {c_name:<16} {str(kind):<16} {what}"
              for role, _, c_name, what, kind in rows]
    lines += [" */", f"#define {macro}_N_INPUTS {len(inputs)}",
              f"#define {macro}_N_OUTPUTS {len(outputs)}"]
    for _, slot, _, _, kind in rows:
        lines += _array_macros(f"{macro}_{slot}", kind)
    parameters = [f"{'const ' if role == 'in' else ''}{C_TYPES[kind.dtype]} *{c_name}"
                  for role, _, c_name, _, kind in rows] + ["void *workspace"]
    opening = f"int {exported.symbol}("
    lines.append(opening + f",\n{' ' * len(opening)}".join(parameters) + ");")
    lines.append("")
    return lines


def _array_macros(prefix: str, kind: TensorType) -> list[str]:
    dims = ", ".join(str(d) for d in kind.shape) or "1"
    size = 1
    for d in kind.shape:
        size *= d
    return [f"#define {prefix}_NDIM {len(kind.shape)}",
            f"#define {prefix}_DIMS {{{dims}}}",
            f"#define {prefix}_SIZE {size}",
            f"#define {prefix}_BYTES {size * kind.dtype.itemsize}",
            f'#define {prefix}_DTYPE "{kind.dtype.numpy.name}"']


__all__ = ["Arguments", "C_TYPES", "header_text"]
