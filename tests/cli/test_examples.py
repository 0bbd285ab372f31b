"""The examples run and do what they say."""
import os
import shutil
import subprocess
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "examples")


def run_example(name, *args):
    return subprocess.run([sys.executable, os.path.join(EXAMPLES, name), *args],
                          capture_output=True, text=True, timeout=240)


def test_mlp_example_learns():
    result = run_example("mlp_digits.py", "2")
    assert result.returncode == 0, result.stderr
    accuracy = float(result.stdout.strip().splitlines()[-1].split(":")[1])
    assert accuracy > 0.6


def test_inspect_example_checks_pass():
    result = run_example("inspect_model.py")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("all leaves agree") == 2
    assert "graph @loss_fwd" in result.stdout and "graph @loss_bwd" in result.stdout


def test_export_c_example_prints_the_demo_accuracy(tmp_path):
    """The C program classifying the test set with the exported demo MLP prints
    the `propc demo` accuracy line (both with --quick's 3 epochs)."""
    if shutil.which("make") is None or not (shutil.which("cc") or shutil.which("gcc")):
        pytest.skip("needs make and a C compiler")
    environment = dict(os.environ, CC=shutil.which("cc") or shutil.which("gcc"))
    built = subprocess.run(["make", "-s", "-C", os.path.join(EXAMPLES, "export_c"), "run",
                            f"PYTHON={sys.executable}", f"OUT={tmp_path}",
                            "DEMO_FLAGS=--quick"],
                           capture_output=True, text=True, timeout=240, env=environment)
    assert built.returncode == 0, built.stderr
    demo = subprocess.run([sys.executable, "-m", "propc", "demo", "--quick"],
                          capture_output=True, text=True, timeout=240)
    assert demo.returncode == 0, demo.stderr
    from_c = built.stdout.strip().splitlines()[-1]
    assert from_c.startswith("test accuracy: 0.")
    assert from_c == demo.stdout.strip().splitlines()[-1]
