"""The command line's edges: no command, --version, --plot without matplotlib, and
the package's own description of itself."""
import os
import subprocess
import sys

import propc


def run_propc(*args, env=None):
    return subprocess.run([sys.executable, "-m", "propc", *args], capture_output=True,
                          text=True, timeout=120, env=env)


def test_no_command_is_a_usage_error():
    result = run_propc()
    assert result.returncode == 2
    assert "usage: propc" in result.stderr and result.stdout == ""


def test_version_matches_the_package():
    result = run_propc("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"propc {propc.__version__}"
    assert propc.__version__ not in ("", "unknown")


def test_plot_without_matplotlib_fails_before_training(tmp_path):
    """A `matplotlib` that cannot be imported stands for one that is not installed."""
    (tmp_path / "matplotlib.py").write_text("raise ImportError('no matplotlib here')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    result = run_propc("demo", "--quick", "--plot", str(tmp_path / "curves.png"), env=env)
    assert result.returncode == 2, result.stdout
    assert "matplotlib" in result.stderr
    assert "== 2. training ==" not in result.stdout
    assert not (tmp_path / "curves.png").exists()


def test_the_package_docstring_cites_only_what_ships():
    assert "SPEC.md" not in propc.__doc__
