"""The conv's EpilogueRule: a conv's elementwise consumer (its bias add, relu, the
relu VJP's select) run on each finished block of the conv's rows, the way a dot's
consumer runs after its sgemm (codegen/kernels/matmul_epilogue.py).

The fusion plan (codegen/plan/epilogues.py) picks the pair; the rule accepts a conv
whose kernel goes through sgemm (codegen/kernels/conv_gemm.py: float32, one feature
group) and builds that kernel writing the consumer's buffer, with the consumer's
expression (a TileEpilogue over the conv's output shape: a row is one output
position, the columns its features) called on each finished row block: by the
sgemm on the block's last tap block, or after the transposing copy of a transposed
product, or after the rows summed in registers. The conv's own buffer and one pass
over the activations disappear.
"""
from __future__ import annotations

from ir.graph import Op

from ..emit.steps import KernelPlan
from ..plan.fusion import FusionPlan
from ..registry import EpilogueRule
from ..options import CompileOptions
from .conv_gemm import ConvGemmStep, gemm_qualifies


def conv_takes_epilogue(op: Op, materialized, options: CompileOptions) -> bool:
    """The conv's EpilogueRule query (pure): its kernel is the sgemm path's."""
    return options.sgemm_conv and gemm_qualifies(op)


def lower_conv_with_epilogue(op: Op, materialized: FusionPlan, epilogue) -> KernelPlan:
    """The conv's kernel writing the consumer's buffer through `epilogue`, threaded
    as the fusion plan's ThreadPlan allows."""
    step = ConvGemmStep(op, materialized, epilogue.dest, epilogue)
    return KernelPlan(epilogue.dest, [step], step.workspace_bytes())


CONV_EPILOGUE = EpilogueRule(conv_takes_epilogue, lower_conv_with_epilogue)

__all__ = ["CONV_EPILOGUE"]
