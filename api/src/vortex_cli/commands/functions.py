"""`vortex list`, `vortex get NAME` and `vortex delete NAME`: the deployed functions.

`delete` asks first when stdin is a terminal, and without one refuses to act unless given
`--yes`, so a script never deletes by accident.
"""

from __future__ import annotations

import sys

import click

from vortex_cli.commands.common import Session, api_command
from vortex_cli.output import FUNCTION_COLUMNS, function_fields, function_row


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


@click.command("list")
@api_command
def list_functions(session: Session) -> None:
    """List the deployed functions."""
    functions = session.client.list()
    out = session.out
    if out.json:
        out.document({"functions": functions})
    elif not functions:
        out.note("no functions deployed")
    else:
        out.table(FUNCTION_COLUMNS, [function_row(f) for f in functions])


@click.command()
@click.argument("name")
@api_command
def get(session: Session, name: str) -> None:
    """Show the function NAME: its settings, status and code hash."""
    session.out.record(session.client.get(name), function_fields)


@click.command()
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation")
@click.option("--purge-kv", is_flag=True, help="also delete its KV data (kept otherwise)")
@api_command
def delete(session: Session, name: str, yes: bool, purge_kv: bool) -> None:
    """Delete the function NAME and its code (its KV data stays, unless --purge-kv)."""
    if not yes:
        if not stdin_is_terminal():
            raise click.UsageError("stdin is not a terminal: confirm with --yes")
        also = " and its KV data" if purge_kv else ""
        click.confirm(f"Delete the function {name!r}{also}?", abort=True, err=True)
    session.client.delete(name, purge_kv)
    session.out.result({"function_id": name, "deleted": True}, f"deleted {name}")
