"""The README's quickstart runs, and prints what the README says it prints."""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _quickstart_blocks() -> tuple[str, str]:
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    output = re.search(r"prints.*?```\n(.*?)```", section, re.S).group(1)
    return code, output


def _strip(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip().splitlines()]


def test_readme_quickstart_output_is_real(tmp_path):
    code, expected = _quickstart_blocks()
    script = tmp_path / "quickstart.py"
    script.write_text(code)
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert _strip(result.stdout) == _strip(expected)


def test_readme_commands_match_ci():
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    ci = open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8").read()
    commands = re.findall(r"```bash\n(.*?)\n```", readme)
    assert len(commands) >= 2
    assert commands[0].endswith("propc demo")
    assert commands[1].endswith("pytest")
    assert commands[1] in ci
