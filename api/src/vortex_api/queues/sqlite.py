"""The async-invocation queue in one SQLite file under the data dir (local mode's queue).

One connection, used from the event loop's thread: each statement takes microseconds, so
nothing is handed to a thread. WAL journal with `synchronous=NORMAL`: a committed invocation
survives the API process dying at any point; an operating-system crash may lose the last
moments of commits. A claim is one UPDATE of the row due soonest, so two consumers never hold
the same attempt; `settle` writes only while its attempt still holds the row. Built by
`queues.make_queue`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection
from pathlib import Path
from typing import Any

from vortex_api.errors import QueueUnavailable
from vortex_api.queues import IDEMPOTENCY_WINDOW_S, AsyncInvocation, Attempt, QueueSignal

_SCHEMA = """
CREATE TABLE IF NOT EXISTS invocations (
    id TEXT PRIMARY KEY,
    function TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    age_from REAL NOT NULL,
    due_at REAL,
    lease_until REAL,
    finished_at REAL,
    event BLOB NOT NULL,
    request TEXT NOT NULL,
    result BLOB,
    error TEXT,
    history TEXT NOT NULL DEFAULT '[]',
    idempotency_key TEXT,
    redrives INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS due ON invocations (due_at) WHERE status IN ('queued', 'failed');
CREATE INDEX IF NOT EXISTS leased ON invocations (lease_until) WHERE status = 'running';
CREATE INDEX IF NOT EXISTS dead ON invocations (function, finished_at) WHERE status = 'dead';
CREATE INDEX IF NOT EXISTS ended ON invocations (finished_at) WHERE finished_at IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS idempotency ON invocations (function, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
"""
_COLUMNS = (
    "id, function, status, attempts, created_at, age_from, due_at, finished_at, event, request,"
    " result, error, history, idempotency_key, redrives"
)


def _row(row: tuple[Any, ...]) -> AsyncInvocation:
    (id_, function, status, attempts, created, age_from, due, finished, event, request, result,
     error, history, key, redrives) = row  # fmt: skip
    return AsyncInvocation(
        invocation_id=id_,
        function=function,
        event=bytes(event),
        request=json.loads(request),
        created_at=created,
        status=status,
        attempts=attempts,
        due_at=due,
        finished_at=finished,
        result=bytes(result) if result is not None else None,
        error=json.loads(error) if error else None,
        history=[Attempt.from_doc(a) for a in json.loads(history)],
        idempotency_key=key,
        redrives=redrives,
        age_from=age_from,
    )


class SqliteQueue:
    """`queues.Queue` over one SQLite database file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._signal = QueueSignal()

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise QueueUnavailable("the async queue is not open")
        return self._db

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            # One process consumes this file: what was running when it last stopped is due now
            # (its attempt counted: it may have run).
            db.execute("UPDATE invocations SET lease_until = 0 WHERE status = 'running'")
        except sqlite3.Error as exc:
            raise QueueUnavailable(
                f"the async queue at {self.path} cannot be opened: {exc}"
            ) from exc
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _one(self, sql: str, args: tuple[Any, ...]) -> AsyncInvocation | None:
        row = self.db.execute(f"SELECT {_COLUMNS} FROM invocations WHERE {sql}", args).fetchone()
        return _row(row) if row is not None else None

    async def enqueue(self, new: AsyncInvocation) -> tuple[AsyncInvocation, bool]:
        db = self.db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                same = self._one("id = ?", (new.invocation_id,))
                if same is None and new.idempotency_key is not None:
                    same = self._one(
                        "function = ? AND idempotency_key = ?", (new.function, new.idempotency_key)
                    )
                    if same is not None and same.created_at < new.created_at - IDEMPOTENCY_WINDOW_S:
                        db.execute(
                            "UPDATE invocations SET idempotency_key = NULL WHERE id = ?",
                            (same.invocation_id,),
                        )
                        same = None
                if same is not None:
                    db.execute("COMMIT")
                    return same, False
                db.execute(
                    "INSERT INTO invocations (id, function, status, attempts, created_at,"
                    " age_from, due_at, event, request, idempotency_key)"
                    " VALUES (?, ?, 'queued', 0, ?, ?, ?, ?, ?, ?)",
                    (
                        new.invocation_id,
                        new.function,
                        new.created_at,
                        new.created_at,
                        new.due_at if new.due_at is not None else new.created_at,
                        new.event,
                        json.dumps(new.request, separators=(",", ":")),
                        new.idempotency_key,
                    ),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise QueueUnavailable(f"the async queue failed: {exc}") from exc
        self._signal.set()
        new.status, new.attempts, new.age_from = "queued", 0, new.created_at
        if new.due_at is None:
            new.due_at = new.created_at
        return new, True

    async def get(self, invocation_id: str) -> AsyncInvocation | None:
        try:
            return self._one("id = ?", (invocation_id,))
        except sqlite3.Error as exc:
            raise QueueUnavailable(f"the async queue failed: {exc}") from exc

    async def claim(
        self, now: float, lease_s: float, exclude: Collection[str] = ()
    ) -> AsyncInvocation | None:
        skip = tuple(exclude)
        marks = ",".join("?" * len(skip))
        not_excluded = f" AND function NOT IN ({marks})" if skip else ""
        try:
            row = self.db.execute(
                "UPDATE invocations SET status = 'running', attempts = attempts + 1,"
                " lease_until = ?"
                " WHERE id = (SELECT id FROM ("
                "  SELECT id, due_at AS at FROM invocations"
                f"   WHERE status IN ('queued', 'failed') AND due_at <= ?{not_excluded}"
                "  UNION ALL"
                "  SELECT id, lease_until AS at FROM invocations"
                f"   WHERE status = 'running' AND lease_until <= ?{not_excluded}"
                " ) ORDER BY at LIMIT 1)"
                f" RETURNING {_COLUMNS}",
                (now + lease_s, now, *skip, now, *skip),
            ).fetchone()
        except sqlite3.Error as exc:
            raise QueueUnavailable(f"the async queue failed: {exc}") from exc
        return _row(row) if row is not None else None

    async def next_due(self) -> float | None:
        row = self.db.execute(
            "SELECT MIN(at) FROM ("
            " SELECT MIN(due_at) AS at FROM invocations WHERE status IN ('queued', 'failed')"
            " UNION ALL SELECT MIN(lease_until) FROM invocations WHERE status = 'running')"
        ).fetchone()
        return float(row[0]) if row and row[0] is not None else None

    async def settle(self, invocation: AsyncInvocation, attempt: int) -> bool:
        final = invocation.final
        try:
            cursor = self.db.execute(
                "UPDATE invocations SET status = ?, due_at = ?, lease_until = NULL,"
                " finished_at = ?, result = ?, error = ?, history = ?"
                " WHERE id = ? AND status = 'running' AND attempts = ?",
                (
                    invocation.status,
                    None if final else invocation.due_at,
                    invocation.finished_at if final else None,
                    invocation.result,
                    json.dumps(invocation.error) if invocation.error is not None else None,
                    invocation.history_json(),
                    invocation.invocation_id,
                    attempt,
                ),
            )
        except sqlite3.Error as exc:
            raise QueueUnavailable(f"the async queue failed: {exc}") from exc
        return cursor.rowcount == 1

    async def release(self, invocation_id: str, attempt: int) -> None:
        self.db.execute(
            "UPDATE invocations SET attempts = attempts - 1, lease_until = NULL,"
            " status = CASE WHEN attempts = 1 THEN 'queued' ELSE 'failed' END"
            " WHERE id = ? AND status = 'running' AND attempts = ?",
            (invocation_id, attempt),
        )

    async def dead_letters(self, function: str, limit: int) -> list[AsyncInvocation]:
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM invocations WHERE status = 'dead' AND function = ?"
            " ORDER BY finished_at DESC LIMIT ?",
            (function, limit),
        ).fetchall()
        return [_row(r) for r in rows]

    async def redrive(self, invocation_id: str, now: float) -> AsyncInvocation | None:
        self.db.execute(
            "UPDATE invocations SET status = 'queued', attempts = 0, due_at = ?, age_from = ?,"
            " finished_at = NULL, redrives = redrives + 1 WHERE id = ? AND status = 'dead'",
            (now, now, invocation_id),
        )
        self._signal.set()
        return await self.get(invocation_id)

    async def depth(self, now: float) -> list[tuple[str, str, int, float]]:
        rows = self.db.execute(
            "SELECT function, status, COUNT(*), MIN(age_from) FROM invocations"
            " WHERE finished_at IS NULL GROUP BY function, status"
        ).fetchall()
        return [(f, s, int(n), max(0.0, now - oldest)) for f, s, n, oldest in rows]

    async def purge(self, before: float) -> int:
        cursor = self.db.execute("DELETE FROM invocations WHERE finished_at < ?", (before,))
        return cursor.rowcount

    async def wait(self, seconds: float) -> None:
        await self._signal.wait(seconds)
