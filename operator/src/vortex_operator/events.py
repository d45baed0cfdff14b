"""Kubernetes Events about a VortexFunction (`kubectl describe vf` shows them).

`KopfEvents` queues them on kopf's poster (it must be called inside the running operator);
`RecordedEvents` keeps them in a list for unit tests. The controller posts through either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, cast

import kopf

from vortex_operator.model import FunctionRef


class EventSink(Protocol):
    def normal(self, ref: FunctionRef, reason: str, message: str) -> None: ...

    def warning(self, ref: FunctionRef, reason: str, message: str) -> None: ...


class KopfEvents:
    """Events through kopf's background poster."""

    def normal(self, ref: FunctionRef, reason: str, message: str) -> None:
        kopf.event(
            kopf.Body(cast(kopf.RawBody, ref.owner_body())),
            type="Normal",
            reason=reason,
            message=message,
        )

    def warning(self, ref: FunctionRef, reason: str, message: str) -> None:
        kopf.event(
            kopf.Body(cast(kopf.RawBody, ref.owner_body())),
            type="Warning",
            reason=reason,
            message=message,
        )


@dataclass
class RecordedEvents:
    """Events kept in memory: (type, namespace/name, reason, message)."""

    items: list[tuple[str, str, str, str]] = field(default_factory=list)

    def normal(self, ref: FunctionRef, reason: str, message: str) -> None:
        self.items.append(("Normal", f"{ref.namespace}/{ref.name}", reason, message))

    def warning(self, ref: FunctionRef, reason: str, message: str) -> None:
        self.items.append(("Warning", f"{ref.namespace}/{ref.name}", reason, message))

    def reasons(self) -> list[str]:
        return [reason for _, _, reason, _ in self.items]
