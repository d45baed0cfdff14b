"""Compile-checks function code before it is stored, with the runtime's own compiler.

The deploy route calls `check_code`; a syntax error becomes a 400 `CompileError` naming the line
and column. The check runs on a thread of its own, never on the event loop, and is given
`CHECK_TIMEOUT_S` once it starts: code that takes longer to check is refused with 413
`PayloadTooLarge` (the deploy is answered at once; the abandoned check finishes in the
background). Checks run one at a time, as the runtime's checker does; a deploy waiting behind
another is not charged for the wait.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import vortex_runtime
from vortex_api.errors import BadRequest, PayloadTooLarge

# Checking 1 MiB of any code takes well under this (the runtime's code-form scan and V8's
# parser are both linear in its size); the bound is there for what nobody has thought of yet.
CHECK_TIMEOUT_S = 1.0

_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vortex-codecheck")


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


def _forget(job: asyncio.Future[None]) -> None:
    # Read the outcome of a check whose request gave up, so that asyncio does not log it.
    if not job.cancelled():
        job.exception()


async def check_code(code: str) -> None:
    """Raise `BadRequest(CompileError)` if `code` does not compile, `PayloadTooLarge` if it
    cannot be checked within `CHECK_TIMEOUT_S`."""
    loop = asyncio.get_running_loop()
    started = asyncio.Event()

    def run() -> None:
        try:
            loop.call_soon_threadsafe(started.set)
        except RuntimeError:  # the loop closed while this waited its turn: nobody to answer
            return
        _check(code)

    job = loop.run_in_executor(_executor, run)
    job.add_done_callback(_forget)  # if this request gives up on it
    waiting = asyncio.ensure_future(started.wait())
    try:
        await asyncio.wait((job, waiting), return_when=asyncio.FIRST_COMPLETED)
        done, _ = await asyncio.wait((job,), timeout=CHECK_TIMEOUT_S)
    finally:
        waiting.cancel()
    if not done:
        raise PayloadTooLarge(
            f"the code could not be compile-checked within {CHECK_TIMEOUT_S:g} s;"
            " it is too large or too complex"
        )
    job.result()
