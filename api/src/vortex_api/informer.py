"""List-then-watch of one kind of object, with re-list on expiry and back-off on errors.

The Kubernetes backend runs two: VortexFunctions (the function cache) and EndpointSlices (the
routing table, only the slices of functions' Services). `on_reset` gets the full list after every
(re)list, `on_event` each change after.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from vortex_kube.client import KubeApi
from vortex_kube.errors import Expired, KubeError

log = logging.getLogger("vortex_api.kubernetes")

_MAX_BACKOFF_S = 10.0


class Informer:
    """Keeps callbacks fed with the state of one kind of object in the namespace."""

    def __init__(
        self,
        kube: KubeApi,
        kind: str,
        namespace: str,
        on_reset: Callable[[list[dict[str, Any]]], None],
        on_event: Callable[[str, dict[str, Any]], None],
        label_selector: str | None = None,
    ) -> None:
        self.kube = kube
        self.kind = kind
        self.namespace = namespace
        self.on_reset = on_reset
        self.on_event = on_event
        self.label_selector = label_selector
        self.synced = asyncio.Event()

    async def run(self) -> None:
        """Run until cancelled."""
        backoff = 0.0
        while True:
            try:
                items, version = await self.kube.list(
                    self.kind, self.namespace, self.label_selector
                )
                self.on_reset(items)
                self.synced.set()
                backoff = 0.0
                while True:
                    async for event_type, obj in self.kube.watch(
                        self.kind, self.namespace, version, self.label_selector
                    ):
                        version = (obj.get("metadata") or {}).get("resourceVersion") or version
                        self.on_event(event_type, obj)
                    # The server closed the watch (timeout): resume from the last version.
            except Expired:  # the version expired: re-list at once
                continue
            except KubeError as exc:
                backoff = min(_MAX_BACKOFF_S, max(0.2, backoff * 2))
                log.warning("%s watch failed (%s); re-listing in %.1fs", self.kind, exc, backoff)
                await asyncio.sleep(backoff)
            except Exception:
                backoff = min(_MAX_BACKOFF_S, max(0.2, backoff * 2))
                log.exception("%s watch broke; re-listing in %.1fs", self.kind, backoff)
                await asyncio.sleep(backoff)
