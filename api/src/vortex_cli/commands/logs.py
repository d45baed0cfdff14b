"""`vortex logs NAME`: a function's invocation records, past ones or followed as they come.

Each record is printed as one line (start, invocation id, status or error type, duration, code
version), followed by the function's console output, oldest first as in `kubectl logs`; with
`-o json` the API's document (or, with `--follow`, one JSON record per line). `--follow` runs
until Ctrl-C, which ends it with exit code 0.
"""

from __future__ import annotations

import click

from vortex_cli.commands.common import Session, api_command
from vortex_cli.output import record_lines, to_json_line

MAX_LIMIT = 1000


@click.command()
@click.argument("name")
@click.option("--follow", "-f", is_flag=True, help="keep printing new invocations as they end")
@click.option(
    "--limit",
    "-n",
    type=click.IntRange(0, MAX_LIMIT),
    default=None,
    help="how many recent invocations (default 100, or 10 with --follow)",
)
@click.option("--invocation", "-i", metavar="ID", help="only the invocation with this id")
@click.option("--errors", is_flag=True, help="only invocations that failed")
@click.option("--since", metavar="TIME", help="only invocations started since (RFC 3339)")
@api_command
def logs(
    session: Session,
    name: str,
    follow: bool,
    limit: int | None,
    invocation: str | None,
    errors: bool,
    since: str | None,
) -> None:
    """Show the invocations of the function NAME: id, status, duration and console output."""
    query = {"limit": str(limit if limit is not None else 10 if follow else 100)}
    if invocation is not None:
        query["invocation"] = invocation
    if errors:
        query["status"] = "error"
    if since is not None:
        query["since"] = since
    out = session.out
    if follow:
        try:
            for record in session.client.follow(name, query):
                if out.json:
                    out.line(to_json_line(record))
                else:
                    out.lines(record_lines(record))
        except KeyboardInterrupt:
            pass
        return
    records = session.client.records(name, query)
    if out.json:
        out.document({"function_id": name, "records": records})
        return
    if not records:
        out.note(f"no invocations of {name} recorded" + (" that match" if len(query) > 1 else ""))
    for record in reversed(records):
        out.lines(record_lines(record))
