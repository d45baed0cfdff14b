"""`vortex invoke NAME`: run a function once; its output to stdout, its console logs to stderr.
`--async` queues it instead (POST /async) and prints its id; `--wait` then waits for its end.
`--version` pins the version that runs (a tag of the traffic split, or a number).

The event is `--data` (a JSON value, `@file`, or `-` for stdin) or a lone `-` argument (stdin).
It is checked to be JSON and then sent as it was written. A function that throws, times out or
hits its memory limit ends the command with exit code 1, after its logs and the error line.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import click

from vortex_cli.commands.common import Session, api_command
from vortex_cli.errors import CliError
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
@click.option(
    "--async",
    "queued",
    is_flag=True,
    help="queue the invocation and print its id (POST /async)",
)
@click.option("--wait", is_flag=True, help="with --async: wait until it has ended, then print it")
@click.option(
    "--idempotency-key", metavar="KEY", help="with --async: one invocation per KEY (24 h)"
)
@click.option(
    "--version",
    metavar="TAG|N",
    help="run this version: a tag of the traffic split or a version number (X-Vortex-Version)",
)
@api_command
def invoke(
    session: Session,
    name: str,
    source: str | None,
    data: str | None,
    queued: bool,
    wait: bool,
    idempotency_key: str | None,
    version: str | None,
) -> None:
    """Invoke the function NAME and print its output as JSON.

    `vortex invoke NAME -` reads the event from stdin. With -o json the whole answer (output,
    logs, execution time) is printed instead, and the logs are not repeated on stderr. With
    --async the invocation is queued and its id printed (see `vortex invocation ID`); --wait
    then waits for it and prints its output, or its error (exit code 1) if it ended dead.
    """
    if (wait or idempotency_key) and not queued:
        raise click.UsageError("--wait and --idempotency-key go with --async")
    if source is not None:
        if source != STDIN:
            raise click.UsageError(f"unexpected argument {source!r}: use --data for an event")
        if data is not None:
            raise click.UsageError("give the event once: --data or -, not both")
        data = STDIN
    event = read_event(data)
    out = session.out
    if queued:
        accepted = session.client.enqueue(name, event, idempotency_key, version)
        if wait:
            _wait(session, str(accepted["invocation_id"]))
        else:
            out.result(accepted, str(accepted["invocation_id"]))
        return
    invocation = session.client.execute(name, event, version)
    if out.json:
        out.document(invocation.document)
        return
    out.logs(invocation.logs)
    out.line(to_json(invocation.output))


POLL_S = (0.05, 0.1, 0.2, 0.5, 1.0)  # then every second


def _wait(session: Session, invocation_id: str) -> None:
    """Poll the invocation until it has ended; print it as a synchronous invoke would."""
    for n in itertools.count():
        doc = session.client.invocation(invocation_id)
        if doc.get("status") in ("succeeded", "dead"):
            break
        time.sleep(POLL_S[min(n, len(POLL_S) - 1)])
    out = session.out
    if out.json:
        out.document(doc)
    found = doc.get("result")
    result: dict[str, Any] = found if isinstance(found, dict) else {}
    error = doc.get("error")
    if doc["status"] == "dead":
        error = error if isinstance(error, dict) else {}
        raise CliError(str(error.get("type", "Dead")), str(error.get("message", "")))
    if not out.json:
        out.logs(result.get("logs") or [])
        out.line(to_json(result.get("output")))
