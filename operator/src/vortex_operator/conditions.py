"""Status conditions, the way prometheus-operator and the kubebuilder book keep them (pure).

A condition is `{type, status, reason, message, lastTransitionTime, observedGeneration}`.
`lastTransitionTime` moves only when `status` flips; a new reason or message alone keeps it.
`reconcile.function_status` builds the desired conditions and calls `merge`; tests call these
directly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

CODE_STORED = "CodeStored"
AVAILABLE = "Available"
READY = "Ready"

TRUE = "True"
FALSE = "False"
UNKNOWN = "Unknown"


def utc_now() -> datetime:
    """The wall clock, in UTC: the default clock of the controller, autoscaler and ticker."""
    return datetime.now(UTC)


def timestamp(now: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, at second precision, as Kubernetes writes them."""
    return now.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> datetime | None:
    """A Kubernetes timestamp (RFC 3339), or None if absent or unreadable."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass(frozen=True)
class Condition:
    """One desired condition, before it gets its transition time."""

    type: str
    status: str
    reason: str
    message: str = ""

    @property
    def is_true(self) -> bool:
        return self.status == TRUE


def find(conditions: Iterable[dict[str, Any]] | None, kind: str) -> dict[str, Any] | None:
    """The condition of type `kind` in a status list, or None."""
    for cond in conditions or []:
        if cond.get("type") == kind:
            return cond
    return None


def merge(
    previous: Iterable[dict[str, Any]] | None,
    desired: Iterable[Condition],
    generation: int | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """The new condition list: desired values, previous transition times where status is same.

    Conditions of other types found in `previous` are kept as they are, after ours.
    """
    old = {c.get("type"): c for c in previous or [] if isinstance(c, dict)}
    result: list[dict[str, Any]] = []
    seen: set[str] = set()
    for cond in desired:
        seen.add(cond.type)
        before = old.get(cond.type)
        if before is not None and before.get("status") == cond.status:
            since = str(before.get("lastTransitionTime") or timestamp(now))
        else:
            since = timestamp(now)
        entry: dict[str, Any] = {
            "type": cond.type,
            "status": cond.status,
            "reason": cond.reason,
            "message": cond.message,
            "lastTransitionTime": since,
        }
        if generation is not None:
            entry["observedGeneration"] = generation
        result.append(entry)
    result.extend(c for t, c in old.items() if t not in seen)
    return result
