"""`vortex kv get|put|list|delete --function NAME`: a function's KV data (`context.kv`).

`get` prints the value as it is (with `-o json`, the API's `{key, value}`); `put` takes the
value as an argument or, with `-`, from stdin; `list` prints one key a line and follows the
cursor until every key is listed, or up to `--limit`.
"""

from __future__ import annotations

import sys

import click

from vortex_cli.commands.common import Session, api_command

function_option = click.option(
    "--function", "-f", "function", required=True, metavar="NAME", help="the function"
)
PAGE = 1000


@click.group()
def kv() -> None:
    """Read and write a function's KV data."""


@kv.command("get")
@function_option
@click.argument("kv_key", metavar="KEY")
@api_command
def kv_get(session: Session, function: str, kv_key: str) -> None:
    """Print the value of KEY."""
    answer = session.client.kv_get(function, kv_key)
    session.out.result(answer, str(answer.get("value", "")))


@kv.command("put")
@function_option
@click.argument("kv_key", metavar="KEY")
@click.argument("value")
@click.option("--ttl", type=click.FloatRange(min=0, min_open=True), help="expire after SECONDS")
@api_command
def kv_put(session: Session, function: str, kv_key: str, value: str, ttl: float | None) -> None:
    """Set KEY to VALUE (`-`: read it from stdin)."""
    data = sys.stdin.buffer.read() if value == "-" else value.encode()
    session.client.kv_put(function, kv_key, data, ttl)
    session.out.result({"key": kv_key, "stored": True}, f"stored {kv_key}")


@kv.command("delete")
@function_option
@click.argument("kv_key", metavar="KEY")
@api_command
def kv_delete(session: Session, function: str, kv_key: str) -> None:
    """Delete KEY."""
    session.client.kv_delete(function, kv_key)
    session.out.result({"key": kv_key, "deleted": True}, f"deleted {kv_key}")


@kv.command("list")
@function_option
@click.option("--prefix", default="", help="only keys that start with this")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="at most this many")
@api_command
def kv_list(session: Session, function: str, prefix: str, limit: int | None) -> None:
    """List the keys, one a line."""
    keys: list[dict[str, object]] = []
    cursor = ""
    while limit is None or len(keys) < limit:
        want = PAGE if limit is None else min(PAGE, limit - len(keys))
        page = session.client.kv_list(function, prefix, want, cursor)
        keys += [k for k in page.get("keys") or [] if isinstance(k, dict)]
        cursor = str(page.get("cursor") or "")
        if page.get("list_complete", True) or not cursor:
            break
    if session.out.json:
        session.out.document({"keys": keys})
    else:
        session.out.lines(str(k.get("name", "")) for k in keys)
