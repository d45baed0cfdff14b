"""Kubernetes Events about a VortexFunction (`kubectl describe vf` shows them).

`KopfEvents` queues them on kopf's poster (it must be called inside kopf's handlers, whose
context holds the poster); `ApiEvents` creates them through the Kubernetes API, for work that
runs outside that context (the autoscaler's loop); `RecordedEvents` keeps them in a list for unit
tests. The controller posts through the first, the autoscaler through the second.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, cast

import kopf

from vortex_operator.model import FunctionRef

log = logging.getLogger("vortex_operator.events")


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


class EventCreator(Protocol):
    async def create(self, obj: dict[str, Any]) -> dict[str, Any]: ...


class ApiEvents:
    """Events created with `POST .../events`, in the background: a failure is logged, never
    raised into the caller."""

    def __init__(self, kube: EventCreator, component: str = "vortex-operator") -> None:
        self.kube = kube
        self.component = component
        self._tasks: set[asyncio.Task[None]] = set()

    def normal(self, ref: FunctionRef, reason: str, message: str) -> None:
        self._post(ref, "Normal", reason, message)

    def warning(self, ref: FunctionRef, reason: str, message: str) -> None:
        self._post(ref, "Warning", reason, message)

    def _post(self, ref: FunctionRef, type_: str, reason: str, message: str) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = ref.owner_body()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{ref.name}.", "namespace": ref.namespace},
            "involvedObject": {
                "apiVersion": body["apiVersion"],
                "kind": body["kind"],
                **body["metadata"],
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": self.component},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        task = asyncio.ensure_future(self._create(event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _create(self, event: dict[str, Any]) -> None:
        try:
            await self.kube.create(event)
        except Exception as exc:  # an Event is best effort
            log.warning("could not post the event %s: %s", event["reason"], exc)


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
