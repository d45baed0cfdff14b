"""The README's "The vortex CLI" section, verbatim: its shell commands run with the `vortex`
console script against real local mode, as a new user runs them after `make install`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from tests.integration.local.cli import ROOT, RUN_TIMEOUT_S, cli_env, console_script_dir
from tests.integration.local.conftest import ApiProcess

HEADING = "## The vortex CLI"


def readme_commands() -> str:
    """The first bash block of the section."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split(f"\n{HEADING}\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert match is not None, f"no bash block under {HEADING!r}"
    return match.group(1)


def test_the_section_names_every_command() -> None:
    commands = [
        line.split()[1] for line in readme_commands().splitlines() if line.startswith("vortex ")
    ]

    assert commands == ["init", "deploy", "invoke", "invoke", "logs", "list", "get", "delete"]


def test_the_readme_cli_section_runs_verbatim(api: ApiProcess, tmp_path: Path) -> None:
    bin_dir = console_script_dir(tmp_path)
    env = cli_env(api.url, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    work = tmp_path / "work"
    work.mkdir()
    assert shutil.which("vortex", path=env["PATH"]) == str(bin_dir / "vortex")

    result = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + readme_commands()],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S * 2,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert out.startswith("wrote hello/function.js\nwrote hello/vortexfunction.yaml\nhello\n")
    for name in ("Ada", "Grace", "Linus"):
        assert f'"message": "Hello, {name}!"' in out
        assert f"log greeting {name}" in result.stderr
        # `vortex logs hello --limit 3`: each invocation's line, then its console output.
        assert re.search(rf"^  \S+ log greeting {name}$", out, re.MULTILINE)
    assert len(re.findall(r"^\S+Z  [0-9a-f]{32}  ok  [0-9.]+ ms  [0-9a-f]{12}$", out, re.M)) == 3
    assert re.search(r"^hello +Ready +shared ", out, re.MULTILINE)
    assert re.search(r"^name +hello$", out, re.MULTILINE)
    assert out.endswith("deleted hello\n")
    assert "Traceback" not in result.stderr
