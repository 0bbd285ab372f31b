"""The examples run and do what they say."""
import os
import subprocess
import sys

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
