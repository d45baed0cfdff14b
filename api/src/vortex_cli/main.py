"""The `vortex` command group: `--version`, `--help`, and the commands of `commands/`.

`main` is the console script's entry point (api/pyproject.toml) and `python -m vortex_cli`'s.
Shell completion is Click's: `eval "$(_VORTEX_COMPLETE=bash_source vortex)"` (zsh_source,
fish_source for the other shells).
"""

from __future__ import annotations

import click

from vortex_cli import __version__
from vortex_cli.commands import COMMANDS

PROG = "vortex"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name=PROG, message="%(prog)s %(version)s")
def cli() -> None:
    """Deploy and invoke Vortex functions through the Vortex HTTP API.

    Exit codes: 0 success, 1 the function or the API answered an error, 2 bad usage, 3 the API
    is unreachable, 4 the API key was refused (401/403).
    """


for command in COMMANDS:
    cli.add_command(command)


def main() -> None:
    cli(prog_name=PROG)
