"""The endpoint table: which runtimes can serve a group, and least-in-flight choice among them.

A group is "local" for the local workers (any worker serves any function by key), the pool's
group for the Kubernetes shared pool, or a function id for Kubernetes warm pods. The local
supervisor and the EndpointSlice watcher write the table; the invoker picks from it on every
execution, so picking is a scan over a short list with no I/O. Ties go to the endpoint the
function's affinity points at first, which keeps a quiet function on the same runtime (its isolate
stays warm) while different functions spread out. In the pool, where a pod holds the isolates of
the functions it serves, a function goes to one pod by rendezvous hashing (`sticky`): the pod with
the highest weight for it, the same in every API replica, and only a few functions move when a
pod comes or goes.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Collection, Iterable


def weight(key: bytes, url: str) -> int:
    """The rendezvous weight of an endpoint for a key (stable across processes)."""
    return int.from_bytes(hashlib.blake2b(key + url.encode(), digest_size=8).digest())


class Endpoint:
    """One runtime: its base URL and how many invocations the API has in flight on it."""

    __slots__ = ("inflight", "url")

    def __init__(self, url: str) -> None:
        self.url = url
        self.inflight = 0

    def __repr__(self) -> str:
        return f"Endpoint({self.url!r}, inflight={self.inflight})"


class EndpointTable:
    """Ready endpoints per group, with waiting for a group to get its first one."""

    def __init__(self, on_remove: Callable[[str], None] | None = None) -> None:
        """`on_remove(url)` is called for every endpoint that leaves the table."""
        self._groups: dict[str, list[Endpoint]] = {}
        self._changed: dict[str, asyncio.Event] = {}
        self._on_remove = on_remove

    def endpoints(self, group: str) -> list[Endpoint]:
        return list(self._groups.get(group, ()))

    def has_endpoints(self, group: str) -> bool:
        """Whether the group has a ready endpoint (without copying the list)."""
        return bool(self._groups.get(group))

    def groups(self) -> list[str]:
        return [g for g, eps in self._groups.items() if eps]

    def replace(self, group: str, urls: Iterable[str]) -> None:
        """Set a group's endpoints, keeping the in-flight counts of those that stay."""
        old = {ep.url: ep for ep in self._groups.get(group, ())}
        new = [old.get(url) or Endpoint(url) for url in dict.fromkeys(urls)]
        if new:
            self._groups[group] = new
        else:
            self._groups.pop(group, None)
        self._notify(group)
        if self._on_remove is not None:
            kept = {ep.url for ep in new}
            for url in old:
                if url not in kept:
                    self._on_remove(url)

    def add(self, group: str, url: str) -> Endpoint:
        endpoints = self._groups.setdefault(group, [])
        for ep in endpoints:
            if ep.url == url:
                return ep
        ep = Endpoint(url)
        endpoints.append(ep)
        self._notify(group)
        return ep

    def remove(self, group: str, url: str) -> None:
        endpoints = self._groups.get(group)
        if endpoints is None:
            return
        before = len(endpoints)
        endpoints[:] = [ep for ep in endpoints if ep.url != url]
        if not endpoints:
            del self._groups[group]
        self._notify(group)
        if self._on_remove is not None and len(endpoints) != before:
            self._on_remove(url)

    def pick(
        self,
        group: str,
        affinity: int = 0,
        exclude: Collection[Endpoint] = (),
        sticky: bytes | None = None,
    ) -> Endpoint | None:
        """The endpoint with the fewest in-flight invocations (or, given a `sticky` key, the
        highest rendezvous weight for it), or None if the group is empty."""
        endpoints = self._groups.get(group)
        if not endpoints:
            return None
        if sticky is not None:
            return max(
                (ep for ep in endpoints if not (exclude and ep in exclude)),
                key=lambda ep: weight(sticky, ep.url),
                default=None,
            )
        n = len(endpoints)
        best: Endpoint | None = None
        start = affinity % n
        for i in range(n):
            ep = endpoints[(start + i) % n]
            if exclude and ep in exclude:
                continue
            if best is None or ep.inflight < best.inflight:
                best = ep
                if not ep.inflight:
                    break
        return best

    async def wait(
        self,
        group: str,
        timeout_s: float,
        affinity: int = 0,
        exclude: Collection[Endpoint] = (),
        sticky: bytes | None = None,
    ) -> Endpoint | None:
        """Wait up to `timeout_s` for an endpoint of the group outside `exclude`, and pick it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while (endpoint := self.pick(group, affinity, exclude, sticky)) is None:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            event = self._changed.setdefault(group, asyncio.Event())
            try:
                async with asyncio.timeout(remaining):
                    await event.wait()
            except TimeoutError:
                return self.pick(group, affinity, exclude, sticky)
        return endpoint

    def _notify(self, group: str) -> None:
        event = self._changed.pop(group, None)
        if event is not None:
            event.set()
