"""`vortex invocation ID`, `vortex dead-letters NAME` and `vortex retry ID`: async invocations.

`invoke NAME --async` (invoke.py) queues one; these read one back, list a function's dead ones,
and queue a dead one again.
"""

from __future__ import annotations

import click

from vortex_cli.commands.common import Session, api_command
from vortex_cli.output import DEAD_LETTER_COLUMNS, dead_letter_row, invocation_fields


@click.command()
@click.argument("invocation_id", metavar="ID")
@api_command
def invocation(session: Session, invocation_id: str) -> None:
    """Show the async invocation ID: its status, attempts, and output or error."""
    session.out.record(session.client.invocation(invocation_id), invocation_fields)


@click.command("dead-letters")
@click.argument("name")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@api_command
def dead_letters(session: Session, name: str, limit: int) -> None:
    """List the function NAME's dead async invocations, newest first."""
    dead = session.client.dead_letters(name, limit)
    out = session.out
    if out.json:
        out.document({"function_id": name, "invocations": dead})
    elif not dead:
        out.note(f"no dead invocations of {name}")
    else:
        out.table(DEAD_LETTER_COLUMNS, [dead_letter_row(d) for d in dead])


@click.command()
@click.argument("invocation_id", metavar="ID")
@api_command
def retry(session: Session, invocation_id: str) -> None:
    """Queue the dead async invocation ID again, with a new budget of attempts."""
    doc = session.client.redrive(invocation_id)
    session.out.result(doc, f"queued {invocation_id} again")
