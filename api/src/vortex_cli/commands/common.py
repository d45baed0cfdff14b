"""What every command shares: its options, its `Session`, and how an error ends it.

`api_command` gives a command `--url` (`VORTEX_URL`), `--key` (`VORTEX_API_KEY`) and
`-o/--output`, then calls it with a `Session` (a `Client` and an `Output`); `output_command` gives
`-o/--output` alone (`vortex init`). A `CliError` raised inside is printed by `Output.error` and
ends the command with the error's exit code (`errors.py`); Click's own usage errors keep their 2.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from vortex_cli.client import DEFAULT_URL, Client
from vortex_cli.errors import CliError
from vortex_cli.output import FORMATS, Format, Output

Command = Callable[..., None]


@dataclass
class Session:
    """One command's connection to the API and its output."""

    client: Client
    out: Output


def _check_url(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise click.BadParameter(f"{value!r} is not an http:// or https:// URL")
    return value


output_option = click.option(
    "-o",
    "--output",
    "output_format",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="text for people, json for scripts",
)


def _env_option(flag: str, envvar: str, help: str, **settings: Any) -> Callable[[Command], Command]:
    """An option that falls back on the environment variable `envvar`, named in its help."""
    return click.option(flag, envvar=envvar, help=f"{help} (env {envvar})", **settings)


url_option = _env_option(
    "--url",
    "VORTEX_URL",
    "the Vortex API",
    default=DEFAULT_URL,
    show_default=True,
    callback=_check_url,
)
key_option = _env_option("--key", "VORTEX_API_KEY", "API key, sent as a Bearer token")


def guarded(out: Output, call: Callable[[], None]) -> None:
    """Run `call`; a `CliError` is printed and becomes the command's exit code."""
    try:
        call()
    except CliError as exc:
        out.error(exc)
        raise click.exceptions.Exit(exc.exit_code) from None


def api_command(command: Command) -> Command:
    """Decorate a command taking `(session, **params)` (apply it below Click's decorators)."""

    @functools.wraps(command)
    def run(url: str, key: str | None, output_format: Format, **params: Any) -> None:
        out = Output(output_format)
        with Client(url, key) as client:
            guarded(out, lambda: command(Session(client, out), **params))

    return output_option(key_option(url_option(run)))


def output_command(command: Command) -> Command:
    """Decorate a command taking `(out, **params)` that does not talk to the API."""

    @functools.wraps(command)
    def run(output_format: Format, **params: Any) -> None:
        out = Output(output_format)
        guarded(out, lambda: command(out, **params))

    return output_option(run)
