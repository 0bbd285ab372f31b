"""Look inside a compiled model: the IR, its gradient's two passes, cost, memory,
and the compiled-vs-interpreted and finite-difference checks."""
import numpy as np

import propc as pc


def loss(params, x, target):
    (W1, b1), (W2, b2) = params
    hidden = pc.tanh(x @ W1 + b1)
    return pc.nn.mse(hidden @ W2 + b2, target)


def main() -> None:
    params = pc.nn.init_mlp([8, 16, 4], seed=1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 8)).astype(np.float32)
    target = rng.standard_normal((32, 4)).astype(np.float32)

    print(pc.trace(loss, params, x, target))                  # the traced IR
    grad_fn = pc.compile(pc.value_and_grad(loss))
    lowered = grad_fn.lower(params, pc.ShapeDtype((32, 8)), pc.ShapeDtype((32, 4)))
    print(lowered.forward_graph)                              # keeps the residuals
    print(lowered.backward_graph)                             # consumes them
    print(lowered.cost)                                       # FLOPs and bytes per op
    print(lowered.memory)                                     # the buffer plan
    print(lowered.llvm_ir.count("define"), "LLVM functions,",
          lowered.asm.count("vfmadd"), "FMA instructions in the assembly")
    print(pc.compare(pc.value_and_grad(loss), params, x, target))
    print(pc.check_grad(loss, params, x, target))


if __name__ == "__main__":
    main()
