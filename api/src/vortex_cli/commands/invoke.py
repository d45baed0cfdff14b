"""`vortex invoke NAME`: run a function once; its output to stdout, its console logs to stderr.

The event is `--data` (a JSON value, `@file`, or `-` for stdin) or a lone `-` argument (stdin).
It is checked to be JSON and then sent as it was written. A function that throws, times out or
hits its memory limit ends the command with exit code 1, after its logs and the error line.
"""

from __future__ import annotations

import click

from vortex_cli.commands.common import Session, api_command
from vortex_cli.inputs import STDIN, read_event
from vortex_cli.output import to_json


@click.command()
@click.argument("name")
@click.argument("source", required=False, metavar="[-]")
@click.option(
    "--data",
    "-d",
    metavar="JSON|@FILE|-",
    help="the event: a JSON value, @file.json, or - to read stdin (default: no event, null)",
)
@api_command
def invoke(session: Session, name: str, source: str | None, data: str | None) -> None:
    """Invoke the function NAME and print its output as JSON.

    `vortex invoke NAME -` reads the event from stdin. With -o json the whole answer (output,
    logs, execution time) is printed instead, and the logs are not repeated on stderr.
    """
    if source is not None:
        if source != STDIN:
            raise click.UsageError(f"unexpected argument {source!r}: use --data for an event")
        if data is not None:
            raise click.UsageError("give the event once: --data or -, not both")
        data = STDIN
    event = read_event(data)
    invocation = session.client.execute(name, event)
    out = session.out
    if out.json:
        out.document(invocation.document)
        return
    out.logs(invocation.logs)
    out.line(to_json(invocation.output))
