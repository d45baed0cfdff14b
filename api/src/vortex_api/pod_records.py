"""Invocation records read back from runtime pods' logs, for the Kubernetes backend.

A runtime pod writes each record as one JSON line on its stdout (vortex_runtime/records.py), so
the kubelet keeps them in the runtime container's log and `pods/log` reads them. The pods of a
function are always both its own (the warm pods, and one-shot pods while they exist) and, where
the install runs a pool, every pool pod: a function that moved between shared and warm left the
records of its past in the others. One-shot pods are deleted after their invocation, so the API
replica that ran one writes its record again on its own stdout (pod_runner.py); with
`VORTEX_API_PODS` set (the chart does) the API's pods are read as well.

`PodRecords.newest` reads every such pod's log (and its previous container's after a restart)
a few pods at a time, each within `READ_TIMEOUT_S`; a pod that fails is left out with a warning,
and only when every pod fails is the answer an error (502 through `from_kube`). Each line is
tested for `query.needle` before it is parsed. `PodRecords.follow` streams the logs of those
pods from a moment before the call, re-lists the pods every `RELIST_S` (new pods of a rollout
or a pool scale-up are followed, gone ones dropped, broken streams reopened) and yields each
record once. Called by backends/kubernetes.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from vortex_api.errors import from_kube
from vortex_api.invocation_logs import LogQuery, Record, Records, newest, parse_line
from vortex_kube.client import KubeApi
from vortex_kube.contract import FUNCTION_LABEL, POOL_PODS
from vortex_kube.errors import KubeError, NotFound, Unavailable
from vortex_kube.podspec import CONTAINER

log = logging.getLogger("vortex_api.kubernetes")

READ_CONCURRENCY = 4
READ_TIMEOUT_S = 5.0
RELIST_S = 2.0
# A followed log starts this long before the follow did (sinceTime counts whole seconds).
FOLLOW_BACK_S = 2
# Followed logs open at once in one API process: each holds a connection of the Kubernetes
# client's pool (100), which the informers and every other call share.
MAX_STREAMS = 48
_SEEN = 4096
# The container of the chart's API pods (tests/e2e/test_chart.py holds the two equal).
API_CONTAINER = "api"


def since_time(epoch_s: float) -> str:
    """RFC 3339 to the second, rounded down: the kubelet compares whole seconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch_s)))


def _key(record: Record) -> tuple[str, str]:
    return str(record["invocation_id"]), str(record["started_at"])


@dataclass(frozen=True, slots=True)
class Source:
    """A pod and its container that holds records."""

    pod: dict[str, Any]
    container: str

    @property
    def name(self) -> str:
        return str(self.pod["metadata"]["name"])

    def status(self) -> dict[str, Any]:
        for status in (self.pod.get("status") or {}).get("containerStatuses") or []:
            if status.get("name") == self.container:
                return dict(status)
        return {}


@dataclass(frozen=True, slots=True)
class _Log:
    pod: str
    container: str
    previous: bool = False


def _logs_of(source: Source) -> list[_Log]:
    """The logs of a source's container: none before it started, its previous instance's too
    after a restart."""
    status = source.status()
    state = status.get("state") or {}
    logs = []
    if "running" in state or "terminated" in state:
        logs.append(_Log(source.name, source.container))
    if int(status.get("restartCount") or 0) > 0:
        logs.append(_Log(source.name, source.container, previous=True))
    return logs


# A followed log: pod, container, and the container's id (a restart starts a new log).
_Stream = tuple[str, str, str]


def _running(source: Source) -> _Stream | None:
    """The log to follow of a source whose container runs."""
    status = source.status()
    if "running" not in (status.get("state") or {}):
        return None
    return source.name, source.container, str(status.get("containerID") or "")


class _Matcher:
    """The lines of one query: a byte test, then the parse and the query's own test."""

    def __init__(self, function_id: str, query: LogQuery) -> None:
        self.function_id = function_id
        self.query = query
        self.needle = query.needle(function_id)

    def candidates(self, block: bytes) -> list[bytes]:
        if self.needle not in block:
            return []
        return [line for line in block.split(b"\n") if self.needle in line]

    def record(self, line: bytes) -> Record | None:
        record = parse_line(line)
        if record is None or not self.query.matches(record, self.function_id):
            return None
        return record


class PodRecords:
    """The records of one namespace's runtime pods."""

    def __init__(
        self, kube: KubeApi, namespace: str, pool: bool, api_pods: str | None = None
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.pool = pool
        self.api_pods = api_pods
        self._streams = asyncio.Semaphore(MAX_STREAMS)

    async def sources(self, function_id: str) -> list[Source]:
        """The function's own pods and the pool's (their runtime container), and the API's."""
        selectors = [(f"{FUNCTION_LABEL}={function_id}", CONTAINER)]
        if self.pool:
            selectors.append((POOL_PODS, CONTAINER))
        if self.api_pods:
            selectors.append((self.api_pods, API_CONTAINER))
        listed = await asyncio.gather(
            *(self.kube.list("Pod", self.namespace, selector) for selector, _ in selectors)
        )
        found: dict[str, Source] = {}
        for (items, _), (_, container) in zip(listed, selectors, strict=True):
            for pod in items:
                found.setdefault(str(pod["metadata"]["name"]), Source(pod, container))
        return [found[name] for name in sorted(found)]

    async def _sources(self, function_id: str) -> list[Source]:
        try:
            return await self.sources(function_id)
        except KubeError as exc:
            raise from_kube(exc) from exc

    # newest

    async def newest(self, function_id: str, query: LogQuery) -> Records:
        logs = [entry for src in await self._sources(function_id) for entry in _logs_of(src)]
        if not logs or not query.limit:
            return []
        matcher = _Matcher(function_id, query)
        gate = asyncio.Semaphore(READ_CONCURRENCY)
        since = query.since[:19] + "Z" if query.since else None
        results = await asyncio.gather(*(self._read(gate, entry, matcher, since) for entry in logs))
        found: Records = []
        failures: list[KubeError] = []
        for entry, result in zip(logs, results, strict=True):
            if isinstance(result, KubeError):
                if not entry.previous:
                    failures.append(result)
                    log.warning("invocation records of pod %s left out: %s", entry.pod, result)
                continue
            found.extend(result)
        if failures and len(failures) == sum(not entry.previous for entry in logs):
            raise from_kube(failures[0])
        return newest(found, query.limit)

    async def _read(
        self, gate: asyncio.Semaphore, entry: _Log, matcher: _Matcher, since: str | None
    ) -> Records | KubeError:
        """The newest `limit` matching records of one log, newest first, or why not."""
        lines: list[bytes] = []
        async with gate:
            try:
                async with asyncio.timeout(READ_TIMEOUT_S):
                    async for block in self.kube.pod_log(
                        self.namespace,
                        entry.pod,
                        entry.container,
                        since_time=since,
                        previous=entry.previous,
                    ):
                        lines.extend(matcher.candidates(block))
            except TimeoutError:
                return Unavailable(0, f"the log did not arrive within {READ_TIMEOUT_S:g} s")
            except NotFound:
                return []  # deleted since the list (a one-shot pod), and its log with it
            except KubeError as exc:
                if entry.previous:  # the kubelet keeps a previous container only for a while
                    log.debug("no previous log of pod %s: %s", entry.pod, exc)
                return exc
        # A log is in write order: parse from its end until enough records match.
        found: Records = []
        for line in reversed(lines):
            record = matcher.record(line)
            if record is not None:
                found.append(record)
                if len(found) >= matcher.query.limit:
                    break
        return found

    # follow

    def follow(self, function_id: str, query: LogQuery) -> AsyncIterator[Record]:
        """Matching records written from a moment before this call on, each once, as the pods
        write them, until the iterator is closed (every stream is then closed)."""
        return self._follow(_Matcher(function_id, query), time.time() - FOLLOW_BACK_S)

    async def _follow(self, matcher: _Matcher, start: float) -> AsyncIterator[Record]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Record] = asyncio.Queue(maxsize=1000)
        streams: dict[_Stream, asyncio.Task[float]] = {}
        seen: dict[tuple[str, str], None] = {}
        try:
            while True:
                self._restream(streams, await self._follow_sources(matcher), matcher, queue, start)
                deadline = loop.time() + RELIST_S
                while True:
                    try:
                        async with asyncio.timeout_at(deadline):
                            record = await queue.get()
                    except TimeoutError:
                        break
                    key = _key(record)
                    if key in seen:
                        continue
                    seen[key] = None
                    if len(seen) > _SEEN:
                        del seen[next(iter(seen))]
                    yield record
        finally:
            for task in streams.values():
                task.cancel()
            await asyncio.gather(*streams.values(), return_exceptions=True)

    async def _follow_sources(self, matcher: _Matcher) -> list[Source] | None:
        try:
            return await self.sources(matcher.function_id)
        except KubeError as exc:
            log.warning("listing the pods of %s failed, following the known ones: %s",
                        matcher.function_id, exc)  # fmt: skip
            return None

    def _restream(
        self,
        streams: dict[_Stream, asyncio.Task[float]],
        sources: list[Source] | None,
        matcher: _Matcher,
        queue: asyncio.Queue[Record],
        start: float,
    ) -> None:
        """Follow every running container: new ones from `start`, a broken stream again from a
        moment before it ended; drop the streams of pods that are gone."""
        if sources is None:
            return
        listed = {source.name for source in sources}
        running = {key for key in map(_running, sources) if key is not None}
        for key, task in list(streams.items()):
            if key[0] not in listed or (task.done() and key not in running):
                task.cancel()
                del streams[key]
        for key in running:
            old = streams.get(key)
            if old is None:
                since = start
            elif old.done():
                ended = old.result() if old.exception() is None else time.time()
                since = ended - FOLLOW_BACK_S
            else:
                continue
            streams[key] = asyncio.create_task(self._stream(key, since, matcher, queue))

    async def _stream(
        self, key: _Stream, since: float, matcher: _Matcher, queue: asyncio.Queue[Record]
    ) -> float:
        """Put one pod's matching records on `queue` as they are written; returns when the
        stream ended (the container stopped, or the connection broke)."""
        pod, container, _ = key
        if self._streams.locked():
            log.warning("%d pod logs are followed already: pod %s waits for one to end",
                        MAX_STREAMS, pod)  # fmt: skip
        async with self._streams:
            try:
                async for block in self.kube.pod_log(
                    self.namespace, pod, container, since_time=since_time(since), follow=True
                ):
                    for line in matcher.candidates(block):
                        record = matcher.record(line)
                        if record is not None:
                            await queue.put(record)
            except NotFound:
                pass
            except KubeError as exc:
                log.warning("following the log of pod %s: %s", pod, exc)
        return time.time()


__all__ = ["API_CONTAINER", "PodRecords", "Source", "since_time"]
