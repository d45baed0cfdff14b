"""Compile-checks function code before it is stored, with the runtime's own compiler.

The deploy route calls `check_code`; a syntax error becomes a 400 `CompileError` naming the line
and column. The check runs in a worker thread so a large file does not stall the event loop.
"""

from __future__ import annotations

import asyncio

import vortex_runtime
from vortex_api.errors import BadRequest


def _check(code: str) -> None:
    try:
        vortex_runtime.check(code)
    except vortex_runtime.CompileError as exc:
        line, column = exc.line, exc.column
        message = str(exc.message)
        if line is not None and f"line {line}" not in message:
            message = f"line {line}, column {column}: {message}"
        raise BadRequest(
            message,
            error_type="CompileError",
            line=line,
            column=column,
        ) from exc


async def check_code(code: str) -> None:
    """Raise `BadRequest(CompileError)` if `code` does not compile."""
    await asyncio.to_thread(_check, code)
