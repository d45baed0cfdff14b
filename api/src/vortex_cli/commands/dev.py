"""`vortex dev FILE`: deploy FILE, then redeploy it on every save until Ctrl-C.

Each redeploy prints one line: the function's id on success, or the compile error as
`FILE:LINE:COLUMN: CompileError: ...` (the line and column are the API's). Errors that a later
save or a restarted API can cure are printed and watching goes on; an auth error ends the
command with exit code 4. Ctrl-C exits 0. Without --name the function is named after the file,
so every redeploy replaces the same function.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from vortex_cli.commands.common import Session, api_command
from vortex_cli.commands.deploy import deploy_options, deploy_request, file_argument
from vortex_cli.errors import ApiError, AuthError, CliError
from vortex_cli.inputs import name_from, read_code
from vortex_cli.watch import saves


def compile_error_line(file: Path, error: ApiError) -> str:
    """`FILE:LINE:COLUMN: <type>: <message>`, as compilers and editors write positions."""
    line, column = error.extra.get("line"), error.extra.get("column")
    where = f"{file}:{line}:{column}" if line is not None else str(file)
    return f"{where}: {error.line()}"


def redeploy(session: Session, file: Path, settings: dict[str, Any]) -> None:
    """Deploy `file` once and print the outcome; only an auth error is raised."""
    out = session.out
    try:
        code = read_code(file)
    except click.BadParameter as exc:  # removed or half-written: the next save may cure it
        out.line(f"{file}: {exc.message}")
        return
    try:
        function_id = session.client.deploy(deploy_request(code, **settings))
    except AuthError:
        raise
    except CliError as exc:
        if out.json:
            out.document(exc.document())
        elif isinstance(exc, ApiError) and exc.error_type == "CompileError":
            out.line(compile_error_line(file, exc))
        else:
            out.line(f"{file}: {exc.line()}")
        return
    out.result({"function_id": function_id, "deployed": str(file)}, f"deployed {function_id}")


@click.command()
@file_argument
@deploy_options
@api_command
def dev(session: Session, file: Path, **settings: Any) -> None:
    """Deploy FILE and redeploy it on every save; Ctrl-C stops."""
    settings["name"] = settings["name"] or name_from(file.stem)
    session.out.note(f"watching {file}; Ctrl-C stops")
    try:
        redeploy(session, file, settings)
        for _ in saves(file):
            redeploy(session, file, settings)
    except KeyboardInterrupt:
        pass
