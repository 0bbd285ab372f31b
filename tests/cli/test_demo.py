"""`propc demo --quick` runs end to end in a subprocess."""
import re
import subprocess
import sys
from pathlib import Path

PROPC = Path(__file__).resolve().parents[2] / "propc"


def assert_residuals_point_at_the_model(out: str, model_file: str):
    """Each residual's source line is a line of the model's own code (a line that
    calls propc or multiplies), not the demo command that ran it."""
    places = re.findall(r"B from (\w+\.py):(\d+)$", out, re.M)
    assert places
    lines = (PROPC / model_file).read_text().splitlines()
    for name, line in places:
        assert name == model_file, places
        assert "pc." in lines[int(line) - 1] or "@" in lines[int(line) - 1], lines[int(line) - 1]


def test_demo_quick_trains_and_agrees():
    result = subprocess.run([sys.executable, "-m", "propc", "demo", "--quick"],
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for heading in ("== 1. the compiled step ==", "== 2. training ==", "== 3. accuracy ==",
                    "== 4. compiled vs interpreted", "== 5. speed"):
        assert heading in out
    assert out.index("== 1.") < out.index("== 2.") < out.index("== 3.") < out.index("== 4.") \
        < out.index("== 5.")
    last = out.strip().splitlines()[-1]
    match = re.fullmatch(r"test accuracy: (0\.\d{3}|1\.000)", last)
    assert match, last
    assert float(match.group(1)) > 0.6          # chance is 0.1
    assert "all leaves agree" in out
    assert len(re.findall(r"^epoch\s+\d+\s+loss", out, re.M)) == 3
    assert_residuals_point_at_the_model(out, "demo_mlp.py")


def test_demo_bad_option_is_one_line():
    result = subprocess.run([sys.executable, "-m", "propc", "demo", "--optimizer", "sdg"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1


def test_cnn_demo_quick_trains_and_agrees():
    result = subprocess.run([sys.executable, "-m", "propc", "demo", "--model", "cnn", "--quick"],
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    positions = [out.index(heading) for heading in (
        "== 1. the compiled step ==", "== 2. training ==", "== 3. accuracy ==",
        "== 4. compiled vs interpreted", "== 5. speed")]
    assert positions == sorted(positions)
    assert "conv" in out and "all leaves agree" in out
    match = re.fullmatch(r"test accuracy: (0\.\d{3}|1\.000)", out.strip().splitlines()[-1])
    assert match and float(match.group(1)) > 0.8
    assert_residuals_point_at_the_model(out, "demo_cnn.py")

def test_demo_rnn_reaches_the_accuracy_target():
    """The scanned RNN reading digits row by row: the full run (15 epochs, seconds)."""
    result = subprocess.run([sys.executable, "-m", "propc", "demo", "--model", "rnn"],
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    positions = [out.index(f"== {n}.") for n in range(1, 6)]
    assert positions == sorted(positions)
    assert "the time loop is one scan op" in out and "all leaves agree" in out
    last = out.strip().splitlines()[-1]
    match = re.fullmatch(r"test accuracy: (0\.9\d{2}|1\.000)", last)
    assert match, last
    assert float(match.group(1)) >= 0.95
