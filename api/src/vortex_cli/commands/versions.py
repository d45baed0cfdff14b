"""`vortex versions NAME`, `vortex rollback NAME --to N` and `vortex traffic NAME SPLIT...`: a
function's versions and the split of its executions between them.

`main.py` adds them to the group (`COMMANDS`). A split is checked to be `VERSION=PERCENT` or
`latest=PERCENT`, each with an optional `@tag`, before anything is sent; whether the versions are
kept and the percents sum to 100 is the API's to say (400).
"""

from __future__ import annotations

import re
from typing import Any

import click

from vortex_cli.commands.common import Session, api_command
from vortex_cli.output import VERSION_COLUMNS, traffic_line, version_rows

_TARGET = re.compile(r"^(?P<where>latest|[0-9]+)=(?P<percent>[^@]*)(?:@(?P<tag>.*))?$")
_PERCENT = re.compile(r"^[0-9]{1,3}$")


def parse_target(text: str) -> dict[str, Any]:
    """`3=90`, `3=90@stable`, `latest=10` or `latest=10@canary` as an entry of the API's
    `traffic`; anything else raises BadParameter."""
    match = _TARGET.match(text)
    if match is None:
        raise click.BadParameter(f"{text!r} is not VERSION=PERCENT or latest=PERCENT")
    where, percent, tag = match["where"], match["percent"], match["tag"]
    if not _PERCENT.match(percent) or int(percent) > 100:
        raise click.BadParameter(f"{text!r}: the percent must be an integer from 0 to 100")
    if tag is not None and not tag:
        raise click.BadParameter(f"{text!r}: the tag after @ is empty")
    if where != "latest" and int(where) < 1:
        raise click.BadParameter(f"{text!r}: versions are numbered from 1")
    target: dict[str, Any] = {"latest": True} if where == "latest" else {"version": int(where)}
    target["percent"] = int(percent)
    if tag:
        target["tag"] = tag
    return target


def _targets(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> list[dict[str, Any]]:
    return [parse_target(text) for text in value]


@click.command()
@click.argument("name")
@api_command
def versions(session: Session, name: str) -> None:
    """List the kept versions of the function NAME, oldest first, with their share of traffic."""
    doc = session.client.versions(name)
    out = session.out
    if out.json:
        out.document(doc)
    elif not doc.get("versions"):
        out.note(f"no versions of {name} kept")
    else:
        out.table(VERSION_COLUMNS, version_rows(doc))


@click.command()
@click.argument("name")
@click.option(
    "--to", "version", required=True, type=click.IntRange(min=1), metavar="N", help="the version"
)
@api_command
def rollback(session: Session, name: str, version: int) -> None:
    """Make a new version of NAME with version N's code and settings, taking all the traffic."""
    doc = session.client.rollback(name, version)
    text = f"rolled back {name} to version {version}: now version {doc.get('latest_version')}"
    session.out.result(doc, text)


@click.command()
@click.argument("name")
@click.argument("split", nargs=-1, metavar="[VERSION=PERCENT[@TAG]]...", callback=_targets)
@click.option("--clear", is_flag=True, help="no split: the latest version takes every execution")
@api_command
def traffic(session: Session, name: str, split: list[dict[str, Any]], clear: bool) -> None:
    """Split the executions of NAME between its versions by percent (summing to 100).

    `vortex traffic NAME 3=90 latest=10@canary` sends 90% to version 3 and 10% to the latest
    version, which `X-Vortex-Version: canary` (or `vortex invoke --version canary`) then pins.
    --clear sends every execution to the latest version again.
    """
    if clear and split:
        raise click.UsageError("give a split or --clear, not both")
    if not clear and not split:
        raise click.UsageError("give a split (VERSION=PERCENT ...), or --clear")
    doc = session.client.set_traffic(name, split or None)
    session.out.result(doc, traffic_line(doc))
