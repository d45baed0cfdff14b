"""Relays what a local worker writes (its stdout and stderr, one pipe) through the API's logging.

Workers log JSON lines (the supervisor sets their VORTEX_LOG_FORMAT=json): each is parsed and
handed on as a record of the same logger, level, message and traceback, tagged with the worker's
index, so it comes out in the API's format (logs.py: `worker-0: ...`). uvicorn's announcements
below WARNING are dropped: a worker's "Uvicorn running on http://127.0.0.1:<port>" would invite
a call to the wrong port. Any other line (a crash's traceback, a fatal message of V8) is relayed
as it is, at WARNING. `WorkerSupervisor` runs one `relay` per worker process.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

log = logging.getLogger("vortex_api.worker")

# The longest line read whole (the stream's limit); a longer one is dropped with a note.
LINE_LIMIT = 1 << 20

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


def _parse(text: str) -> dict[str, Any] | None:
    if not text.startswith("{"):
        return None
    try:
        entry = json.loads(text)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) and "message" in entry else None


def relay_line(line: bytes, worker: int) -> None:
    """Log one line the worker with index `worker` wrote."""
    text = line.decode("utf-8", "replace").rstrip()
    if not text:
        return
    entry = _parse(text)
    if entry is None:
        fields: dict[str, Any] = {"name": log.name, "levelno": logging.WARNING, "msg": text}
    else:
        name = str(entry.get("logger") or log.name)
        level = _LEVELS.get(str(entry.get("level")), logging.INFO)
        if level < logging.WARNING and name.startswith("uvicorn"):
            return
        fields = {
            "name": name,
            "levelno": level,
            "msg": str(entry["message"]),
            "exc_text": entry.get("exception"),
            "function": entry.get("function"),
            "invocation_id": entry.get("invocation_id"),
        }
    if not log.isEnabledFor(fields["levelno"]):
        return
    fields["levelname"] = logging.getLevelName(fields["levelno"])
    fields["worker"] = worker
    log.handle(logging.makeLogRecord(fields))


async def relay(stream: asyncio.StreamReader, worker: int) -> None:
    """Relay every line of `stream` until the worker closes it (it exits)."""
    while True:
        try:
            line = await stream.readline()
        except ValueError:  # over LINE_LIMIT: asyncio has dropped what it read of it
            relay_line(f"(a line over {LINE_LIMIT} bytes was left out)".encode(), worker)
            continue
        if not line:
            return
        relay_line(line, worker)
