"""propc's intermediate representation: types, graphs, the primitive table, the text
form (printer and parser), the verifier, the NumPy interpreter and the passes.

This package imports NumPy and nothing else of ours.
"""
from .builder import Builder
from .errors import InterpretError, IRError, ParseError, TypeRuleError, VerifyError
from .graph import CustomVJP, Graph, Op, SourceLoc, Value
from .ops import PRIMITIVES, Primitive, get_primitive
from .types import DType, TensorType

from .printer import print_graph  # noqa: E402
from .parser import parse  # noqa: E402
from .verify import verify  # noqa: E402
from .interpret import interpret  # noqa: E402
from . import interpret_window  # noqa: E402,F401  (fills IMPLS for the window/index ops)
from . import control_flow  # noqa: E402,F401  (scan, cond, while_loop: region ops)

__all__ = [
    "Builder", "CustomVJP", "DType", "Graph", "IRError", "InterpretError", "Op", "PRIMITIVES",
    "ParseError", "Primitive", "SourceLoc", "TensorType", "TypeRuleError", "Value",
    "VerifyError", "get_primitive", "interpret", "parse", "print_graph", "verify",
]
