"""`propc show`: sections per flag, IR that parses back, one-line errors with status 2."""
import os
import subprocess
import sys

import ir

MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "model.py")


def run_show(*args):
    return subprocess.run([sys.executable, "-m", "propc", "show", *args], capture_output=True,
                          text=True, timeout=120)


def sections(stdout: str) -> dict[str, str]:
    found, title = {}, None
    for line in stdout.splitlines():
        if line.startswith("=== ") and line.endswith(" ==="):
            title = line[4:-4]
            found[title] = ""
        elif title is not None:
            found[title] += line + "\n"
    return found


def test_show_prints_ir_that_parses_back():
    result = run_show(f"{MODEL}:layer", "--arg", "f32[8,4]", "--arg", "f32[4,3]")
    assert result.returncode == 0, result.stderr
    parts = sections(result.stdout)
    graph = ir.parse(parts[f"IR of {MODEL}:layer"])
    assert [v.type for v in graph.inputs] == [ir.TensorType((8, 4), ir.DType.f32),
                                             ir.TensorType((4, 3), ir.DType.f32)]
    assert [op.prim for op in graph.ops] == ["dot", "tanh"]
    assert graph.ops[0].loc.file == "model.py"


def test_show_every_flag_has_its_section():
    result = run_show(f"{MODEL}:loss", "--arg", "f32[8,4]", "--arg", "f32[4,3]", "--arg",
                      "i32[8]", "--grad", "--argnums", "1", "--llvm", "--asm", "--cost")
    assert result.returncode == 0, result.stderr
    parts = sections(result.stdout)
    forward = ir.parse(parts["forward pass"])
    backward = ir.parse(parts["backward pass"])
    assert forward.residual_outputs > 0 and backward.residual_inputs == forward.residual_outputs
    assert "define" in parts["LLVM IR"]
    assert "ret" in parts["assembly"]
    assert "total" in parts["cost"] and "dot" in parts["cost"]
    # the textbook accounting: forward one matmul, 2*n*m*d; --argnums 1 differentiates
    # W alone (not the data x), so the backward is dW = x^T E: 2*n*m*d too
    assert "forward vs backward (matmul FLOPs)" in parts["cost"]
    assert f"forward {2 * 8 * 4 * 3:,}, backward {2 * 8 * 4 * 3:,}" in parts["cost"]


def test_bad_arguments_exit_2_with_one_line():
    cases = [
        [f"{MODEL}:layer", "--arg", "f33[8,4]"],             # bad dtype in spec
        [f"{MODEL}:layer", "--arg", "f32[8,4"],              # unterminated spec
        ["/no/such/file.py:layer", "--arg", "f32[2]"],       # missing file
        [f"{MODEL}:missing", "--arg", "f32[2]"],             # missing function
        [f"{MODEL}:not_a_function", "--arg", "f32[2]"],      # not callable
        [f"{MODEL}", "--arg", "f32[2]"],                     # no :FUNC
        [f"{MODEL}:layer", "--arg", "f32[8,4]", "--arg", "f32[5,3]"],  # shapes do not fit
        [f"{MODEL}:layer", "--bogus"],                       # unknown flag
    ]
    for args in cases:
        result = run_show(*args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_grad_differentiates_the_first_argument_only_by_default():
    """Like pc.grad: the data arguments are not differentiated unless asked."""
    result = run_show(f"{MODEL}:loss", "--arg", "f32[8,4]", "--arg", "f32[4,3]", "--arg",
                      "i32[8]", "--grad")
    assert result.returncode == 0, result.stderr
    graph = ir.parse(sections(result.stdout)[f"IR of {MODEL}:loss"])
    assert [v.type.shape for v in graph.outputs] == [(), (8, 4)]   # value, d/dx only


def test_pytree_arguments():
    result = run_show(f"{MODEL}:mlp", "--arg", "[(f32[8,4], f32[4]), (f32[4,3], f32[3])]",
                      "--arg", "{'x': f32[2,8]}")
    assert result.returncode == 0, result.stderr
    graph = ir.parse(sections(result.stdout)[f"IR of {MODEL}:mlp"])
    assert [v.type.shape for v in graph.inputs] == [(8, 4), (4,), (4, 3), (3,), (2, 8)]
    bad = run_show(f"{MODEL}:mlp", "--arg", "[(f32[8,4], 3)]", "--arg", "f32[2,8]")
    assert bad.returncode == 2 and "pytree" in bad.stderr


def test_dot_prints_dot_alone():
    result = run_show(f"{MODEL}:layer", "--arg", "f32[8,4]", "--arg", "f32[4,3]", "--dot")
    assert result.returncode == 0, result.stderr
    text = result.stdout.strip()
    assert text.startswith("digraph") and text.endswith("}")
    assert "===" not in text and "graph @" not in text


def test_help_says_the_file_runs():
    result = run_show("--help")
    assert result.returncode == 0
    assert "top-level code runs" in result.stdout
