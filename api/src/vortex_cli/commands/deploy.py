"""`vortex deploy FILE`: deploy a function from a .js file and print its id.

Its options and request body are shared with `vortex dev` (`commands/dev.py`), which redeploys
the same way on every save.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from vortex_cli.commands.common import Command, Session, api_command
from vortex_cli.inputs import check_name, parse_env, read_code
from vortex_kube.contract import ISOLATIONS

file_argument = click.argument(
    "file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)
)


def _name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    return None if value is None else check_name(value)


def deploy_options(command: Command) -> Command:
    """`--name`, `--timeout-ms`, `--memory-mb`, `--cpu-limit-ms`, `--env`, `--kv-namespace`,
    `--allow`, `--max-requests` and `--isolation`."""
    options: list[Callable[[Command], Command]] = [
        click.option("--name", callback=_name, help="function name (default: a generated id)"),
        click.option("--timeout-ms", type=click.IntRange(min=1), help="wall-clock timeout"),
        click.option("--memory-mb", type=click.IntRange(min=1), help="isolate memory limit"),
        click.option(
            "--cpu-limit-ms",
            type=click.IntRange(min=1),
            help="CPU time per execution (default: only the timeout applies)",
        ),
        click.option(
            "--env",
            "env",
            multiple=True,
            metavar="NAME=VALUE",
            help="an environment variable of the function (repeatable)",
        ),
        click.option(
            "--kv-namespace",
            metavar="NAME",
            help="a KV keyspace shared with the functions that name it (default: its own)",
        ),
        click.option(
            "--allow",
            "allow",
            multiple=True,
            metavar="RULE",
            help="where fetch may go: a host, *.domain, IP or CIDR, with an optional :port"
            " (repeatable; default: nowhere)",
        ),
        click.option(
            "--max-requests",
            type=click.IntRange(min=1),
            help="fetch requests per execution (default 50)",
        ),
        click.option(
            "--isolation",
            type=click.Choice(ISOLATIONS),
            help="shared (default), warm or pod (warm and pod need a cluster)",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def deploy_request(
    code: str,
    name: str | None,
    timeout_ms: int | None,
    memory_mb: int | None,
    env: tuple[str, ...],
    isolation: str | None,
    cpu_limit_ms: int | None = None,
    kv_namespace: str | None = None,
    allow: tuple[str, ...] = (),
    max_requests: int | None = None,
) -> dict[str, Any]:
    """The `/deploy` body: the code and the settings that were given."""
    request: dict[str, Any] = {"code": code}
    optional = {
        "name": name,
        "timeout_ms": timeout_ms,
        "memory_mb": memory_mb,
        "cpu_limit_ms": cpu_limit_ms,
        "env": parse_env(env) or None,
        "isolation": isolation,
        "kv": {"namespace": kv_namespace} if kv_namespace else None,
        "egress": _egress(allow, max_requests),
    }
    request.update({key: value for key, value in optional.items() if value is not None})
    return request


def _egress(allow: tuple[str, ...], max_requests: int | None) -> dict[str, Any] | None:
    if not allow and max_requests is None:
        return None
    egress: dict[str, Any] = {"allow": list(allow)}
    if max_requests is not None:
        egress["maxRequests"] = max_requests
    return egress


@click.command()
@file_argument
@deploy_options
@api_command
def deploy(session: Session, file: Path, **settings: Any) -> None:
    """Deploy the function in FILE; prints its id.

    Deploying an existing --name replaces its code and settings.
    """
    function_id = session.client.deploy(deploy_request(read_code(file), **settings))
    session.out.result({"function_id": function_id}, function_id)
