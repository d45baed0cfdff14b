"""The queue of async invocations: one interface, one implementation per place it runs.

`POST /async/{id}` (routes/invocations.py) enqueues; the dispatcher (dispatcher.py) claims due
invocations, runs them and writes back what happened; `GET /invocations/{id}` reads them back.
The queue only stores and hands out: an invocation is claimed by one consumer at a time, for a
lease, and a write-back counts only if it comes from the attempt that holds the claim. What to
do after an attempt (retry when, dead when) is the dispatcher's, from the function's
`spec.retry`.

`sqlite` keeps the queue in a file under the data dir (local mode, the embedded default);
`nats` in NATS JetStream, which any number of API processes share. `make_queue` picks the one
the settings name.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from vortex_api.settings import Settings
from vortex_runtime.records import rfc3339

Status = Literal["queued", "running", "failed", "succeeded", "dead"]
# queued: waiting for its first attempt; running: an attempt holds it; failed: an attempt
# failed and the next is due at `due_at`; succeeded and dead are final.
FINAL: frozenset[str] = frozenset({"succeeded", "dead"})
IDEMPOTENCY_WINDOW_S = 24 * 3600


@dataclass(slots=True)
class Attempt:
    """One attempt of an async invocation (epoch seconds)."""

    number: int
    started_at: float
    finished_at: float | None = None
    error: dict[str, Any] | None = None  # {type, message}; None while running or if it succeeded

    def doc(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "error": self.error,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Attempt:
        return cls(
            int(doc["number"]), float(doc["started_at"]), doc.get("finished_at"), doc.get("error")
        )


@dataclass(slots=True)
class AsyncInvocation:
    """An async invocation as the queue keeps it. Times are epoch seconds."""

    invocation_id: str
    function: str
    event: bytes
    # The request it came with: method, path, query and the headers passed to the function.
    request: dict[str, Any]
    created_at: float
    status: Status = "queued"
    attempts: int = 0  # attempts started
    due_at: float | None = None  # when it was or will be due (its attempt's start, or the next)
    finished_at: float | None = None
    result: bytes | None = None  # the runtime's answer: {output, logs, execution_time_ms, ...}
    error: dict[str, Any] | None = None  # the last attempt's error, {type, message}
    history: list[Attempt] = field(default_factory=list)
    idempotency_key: str | None = None
    redrives: int = 0
    age_from: float = 0.0  # its age (for maxAgeSeconds) counts from here: queued or redriven

    @property
    def final(self) -> bool:
        return self.status in FINAL

    def doc(self) -> dict[str, Any]:
        """Its public record (`GET /invocations/{id}`, and the event of an onSuccess or
        onFailure call): times in RFC 3339, the result as the runtime answered it."""
        result = None
        if self.result is not None:
            with contextlib.suppress(ValueError):
                result = json.loads(self.result)
        return {
            "invocation_id": self.invocation_id,
            "function": self.function,
            "status": self.status,
            "attempts": self.attempts,
            "created_at": _iso(self.created_at),
            "finished_at": _iso(self.finished_at),
            "next_attempt_at": _iso(self.due_at) if self.status == "failed" else None,
            "result": result,
            "error": self.error,
            "history": [
                {
                    "attempt": a.number,
                    "started_at": _iso(a.started_at),
                    "finished_at": _iso(a.finished_at),
                    "error": a.error,
                }
                for a in self.history
            ],
            "redrives": self.redrives,
        }

    def hook_id(self, target: str) -> str:
        """The id of the onSuccess / onFailure call to `target` after this invocation ends (one
        per redrive): the same each time, so a repeated end enqueues it once."""
        seed = f"{self.invocation_id}/{target}/{self.redrives}"
        return hashlib.sha256(seed.encode()).hexdigest()[:32]

    def history_json(self) -> str:
        return json.dumps([a.doc() for a in self.history], separators=(",", ":"))


def _iso(moment: float | None) -> str | None:
    """Epoch seconds in the records' RFC 3339 (UTC, milliseconds), or None."""
    return None if moment is None else rfc3339(moment)


class Queue(Protocol):
    """Where async invocations wait, run and end. Every method may raise `QueueUnavailable`."""

    async def open(self) -> None:
        """Be ready to serve; invocations a dead consumer held become claimable."""

    async def close(self) -> None:
        """Release what `open` took."""

    async def enqueue(self, new: AsyncInvocation) -> tuple[AsyncInvocation, bool]:
        """Store `new`, or return the invocation it repeats and False: one of the same id, or
        of the same function and idempotency key within `IDEMPOTENCY_WINDOW_S`."""

    async def get(self, invocation_id: str) -> AsyncInvocation | None:
        """The invocation with this id, if the queue has it."""

    async def claim(
        self, now: float, lease_s: float, exclude: Collection[str] = ()
    ) -> AsyncInvocation | None:
        """The invocation due soonest (due by `now`, of a function not in `exclude`), or one
        whose lease ran out: now running, its attempt counted, held for `lease_s`."""

    async def next_due(self) -> float | None:
        """When the next invocation falls due (now or earlier if one is due already)."""

    async def settle(self, invocation: AsyncInvocation, attempt: int) -> bool:
        """Write back `invocation` (its status, due time, result, error, history) if attempt
        `attempt` still holds it; False if it does not (its lease ran out and it was claimed
        again: that attempt's outcome is the one kept)."""

    async def release(self, invocation_id: str, attempt: int) -> None:
        """Give back a claimed invocation that did not run: its attempt is not counted."""

    async def dead_letters(self, function: str, limit: int) -> list[AsyncInvocation]:
        """The function's dead invocations, newest first."""

    async def redrive(self, invocation_id: str, now: float) -> AsyncInvocation | None:
        """Queue a dead invocation again with a new budget of attempts and age; None if there
        is no such invocation. One that is not dead is returned unchanged."""

    async def depth(self, now: float) -> list[tuple[str, str, int, float]]:
        """(function, status, count, age of the oldest in seconds) of what has not ended."""

    async def purge(self, before: float) -> int:
        """Forget invocations that ended before `before`; how many."""

    async def wait(self, seconds: float) -> None:
        """Return when something was enqueued or redriven, or after `seconds`."""


class QueueSignal:
    """What `Queue.wait` waits on in one process: set by enqueue and redrive."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._event.wait(), seconds)
        except TimeoutError:
            return
        self._event.clear()


def make_queue(settings: Settings) -> Queue | None:
    """The queue the settings choose (`VORTEX_ASYNC_QUEUE`), or None: async invocations are
    then refused with a clear error."""
    if settings.async_queue == "sqlite":
        from vortex_api.queues.sqlite import SqliteQueue

        return SqliteQueue(settings.data_dir / "queue.sqlite3")
    if settings.async_queue == "nats":
        from vortex_api.queues.nats import NatsQueue

        return NatsQueue(
            settings.nats_url,
            settings.namespace,
            retention_s=settings.async_retention_s,
            ack_wait_s=settings.nats_ack_wait_s,
        )
    return None
