"""What `GET /functions/{id}/logs` asks for, and which invocation records answer it.

`LogQuery.parse` turns the query string into a query (or a 400 `InvalidRequest` naming the bad
parameter); `LogQuery.matches` says whether a record (vortex_runtime/records.py, the one
definition of its fields) belongs in the answer; `newest(records, limit)` orders the answer.
`check_invocation_id` is the one check of an invocation id a caller sends: the `invocation`
parameter here, and the execute route's X-Vortex-Invocation-Id header. Called by routes/logs.py;
the backends find the records (local files, or pod logs in the cluster) and use `matches` to keep
the right ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from vortex_api.errors import BadRequest
from vortex_runtime.records import INVOCATION_ID, parse_line, rfc3339

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "LogQuery",
    "Record",
    "Records",
    "check_invocation_id",
    "newest",
    "parse_line",
]

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_STATUSES = ("ok", "error")

Record = dict[str, Any]
Records = list[Record]  # (a name of its own: backends have a method called `list`)


def check_invocation_id(value: str, name: str) -> str:
    """A caller's invocation id, or a 400 naming the field it came in (`name`) and saying what
    one may be."""
    if not INVOCATION_ID.fullmatch(value):
        raise BadRequest(f"{name} must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', '-'")
    return value


def _since(raw: str) -> str:
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadRequest(
            f"since must be an RFC 3339 time such as 2026-01-31T12:00:00Z, not {raw!r}"
        ) from None
    if moment.tzinfo is None:
        raise BadRequest(f"since must name its time zone (Z or an offset): {raw!r}")
    return rfc3339(moment.astimezone(UTC).timestamp())


@dataclass(frozen=True, slots=True)
class LogQuery:
    """The filters of one logs request; `since` is normalized to the records' own format."""

    limit: int = DEFAULT_LIMIT
    since: str | None = None
    invocation: str | None = None
    status: str | None = None
    follow: bool = False

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> LogQuery:
        follow = params.get("follow", "false").lower()
        if follow not in ("true", "false", "1", "0"):
            raise BadRequest(f"follow must be true or false, not {params['follow']!r}")
        raw_limit = params.get("limit", str(DEFAULT_LIMIT))
        try:
            limit = int(raw_limit)
        except ValueError:
            limit = -1
        if not 0 <= limit <= MAX_LIMIT:
            raise BadRequest(f"limit must be an integer from 0 to {MAX_LIMIT}, not {raw_limit!r}")
        status = params.get("status")
        if status is not None and status not in _STATUSES:
            raise BadRequest(f"status must be ok or error, not {status!r}")
        invocation = params.get("invocation")
        if invocation is not None:
            check_invocation_id(invocation, "invocation")
        since = params.get("since")
        return cls(
            limit=limit,
            since=_since(since) if since is not None else None,
            invocation=invocation,
            status=status,
            follow=follow in ("true", "1"),
        )

    def matches(self, record: Record, function_id: str) -> bool:
        if record.get("function") != function_id:
            return False
        if self.invocation is not None and record.get("invocation_id") != self.invocation:
            return False
        if self.status is not None and record.get("status") != self.status:
            return False
        return self.since is None or str(record.get("started_at", "")) >= self.since

    def needle(self, function_id: str) -> bytes:
        """Bytes every matching record's line contains: a cheap test before parsing a line."""
        if self.invocation is not None:
            return b'{"invocation_id":"' + self.invocation.encode() + b'"'
        return b'"function":"' + function_id.encode() + b'"'


def newest(records: Iterable[Record], limit: int) -> list[Record]:
    """The `limit` most recent records, newest first, each one once (a record read twice, as
    a follow can, is the same invocation id started at the same time)."""
    seen: dict[tuple[str, str], Record] = {}
    for record in records:
        seen[(str(record["invocation_id"]), str(record["started_at"]))] = record
    ordered = sorted(seen.values(), key=lambda r: str(r["started_at"]), reverse=True)
    return ordered[:limit]
