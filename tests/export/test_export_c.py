"""An exported library called from C: a C99 program (cc -std=c99 -Wall -Werror,
linked against the .so alone) computes exactly what the in-process compiled
function computes, and what the interpreter computes within tolerance: for a
forward pass, a gradient, and a training step run for 10 steps from C."""
from __future__ import annotations

import numpy as np
import pytest

import propc as pc

import export_models as models
from export_harness import CC, build_driver, run_driver
from tolerances import tolerance

pytestmark = pytest.mark.skipif(CC is None, reason="needs a C compiler (cc or gcc)")


def assert_identical(got: list, want: list, what: str) -> None:
    assert len(got) == len(want), what
    for position, (a, b) in enumerate(zip(got, want)):
        assert a.dtype == b.dtype and a.shape == b.shape, f"{what} leaf {position}"
        assert np.array_equal(a, b), (f"{what} leaf {position}: max difference "
                                      f"{np.max(np.abs(a - b))}")


def assert_close(got: list, want: list, what: str) -> None:
    """Within pc.compare's default (per-dtype) tolerances."""
    for position, (a, b) in enumerate(zip(got, want)):
        rtol, atol = tolerance("numpy", b.dtype)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol,
                                   err_msg=f"{what} leaf {position}")


def test_forward_from_c_matches_compiled_and_interpreter(tmp_path):
    params, x, _ = models.inputs()
    pc.export(models.forward, params, pc.ShapeDtype(x.shape), path=str(tmp_path))
    program = build_driver(str(tmp_path))
    from_c = run_driver(program, str(tmp_path), models.flat((params, x)))
    assert_identical(from_c, models.flat(pc.compile(models.forward)(params, x)), "forward")
    assert_close(from_c, models.flat(pc.interpret(models.forward)(params, x)), "forward")


def test_gradient_from_c_matches_compiled_and_interpreter(tmp_path):
    params, x, labels = models.inputs(1)
    gradient = pc.grad(models.loss)
    pc.export(gradient, params, x, labels, path=str(tmp_path), name="grad")
    program = build_driver(str(tmp_path), "grad")
    from_c = run_driver(program, str(tmp_path), models.flat((params, x, labels)), "grad")
    assert len(from_c) == 4
    assert_identical(from_c, models.flat(pc.compile(gradient)(params, x, labels)), "grad")
    assert_close(from_c, models.flat(pc.interpret(gradient)(params, x, labels)), "grad")


def test_train_step_runs_ten_steps_from_c(tmp_path):
    params, x, labels = models.inputs(2)
    step = pc.compile(models.train_step)
    pc.export(step, params, x, labels, path=str(tmp_path), name="step")
    # the C program feeds the 4 new parameter leaves back as the next step's inputs
    program = build_driver(str(tmp_path), "step", steps=models.STEPS, feedback=4)
    from_c = run_driver(program, str(tmp_path), models.flat((params, x, labels)), "step")
    compiled = models.flat(models.run_steps(step, params, x, labels))
    interpreted = models.flat(models.run_steps(pc.interpret(models.train_step),
                                               params, x, labels))
    assert_identical(from_c, compiled, "train step x10")
    assert_close(from_c, interpreted, "train step x10")
    first_loss = step(params, x, labels)[1]
    assert from_c[-1] < first_loss  # it trained: the 10th step's loss is lower


def mixed_dtypes(a, n, mask):
    """float64, int64 and bool leaves in and out (the header's double, int64_t, bool)."""
    scaled = pc.where(mask, a * 2.0, pc.exp(a))
    return scaled.sum(axis=0), n * 3 + 1, pc.where(mask, a > 0, a < -1)


def test_every_dtype_crosses_the_c_interface(tmp_path):
    rng = np.random.default_rng(4)
    a = rng.standard_normal((4, 3))
    n = rng.integers(-5, 5, (2, 2)).astype(np.int64)
    mask = rng.random((4, 3)) > 0.5
    pc.export(mixed_dtypes, a, n, mask, path=str(tmp_path), name="mixed")
    header = (tmp_path / "mixed.h").read_text()
    prototype = header[header.index("int mixed_run("):].split(");")[0]
    assert [part.strip() for part in prototype.split("(", 1)[1].split(",")] == [
        "const double *a", "const int64_t *n", "const bool *mask", "double *out_0",
        "int64_t *out_1", "bool *out_2", "void *workspace"]
    program = build_driver(str(tmp_path), "mixed")
    from_c = run_driver(program, str(tmp_path), [a, n, mask], "mixed")
    assert_identical(from_c, models.flat(pc.compile(mixed_dtypes)(a, n, mask)), "mixed")
    assert_close(from_c, models.flat(pc.interpret(mixed_dtypes)(a, n, mask)), "mixed")
