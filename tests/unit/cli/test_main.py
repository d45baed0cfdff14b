"""The `vortex` group: its version, its commands, and Click's shell completion."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

from click.testing import Result

from vortex_cli import __version__

Cli = Callable[..., Result]


def test_version(cli: Cli) -> None:
    result = cli("--version")

    assert (result.exit_code, result.stdout) == (0, f"vortex {__version__}\n")


def test_the_commands(cli: Cli) -> None:
    result = cli("--help")

    listed = result.stdout.split("Commands:")[1].split()
    for command in ("deploy", "invoke", "list", "get", "delete", "logs", "init", "dev"):
        assert command in listed


def test_an_unknown_command_is_2(cli: Cli) -> None:
    assert cli("frobnicate").exit_code == 2


def test_bash_completion_script(cli: Cli) -> None:
    result = cli(env={"_VORTEX_COMPLETE": "bash_source"})

    assert result.exit_code == 0
    assert "_vortex_completion" in result.stdout
    assert "complete -o nosort -F _vortex_completion vortex" in result.stdout


def test_commands_complete(cli: Cli) -> None:
    env = {"_VORTEX_COMPLETE": "bash_complete", "COMP_WORDS": "vortex de", "COMP_CWORD": "1"}

    result = cli(env=env)

    assert sorted(result.stdout.split()) == [
        "plain,dead-letters",
        "plain,delete",
        "plain,deploy",
        "plain,dev",
    ]


def test_python_dash_m_is_the_same_program() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "vortex_cli", "--version"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert (proc.returncode, proc.stdout) == (0, f"vortex {__version__}\n")
