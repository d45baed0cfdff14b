"""The async-invocation queue on NATS JetStream (the cluster's queue, as OpenFaaS uses NATS).

Two JetStream parts per scope (an install's namespace):
- the stream `VORTEX_ASYNC_<scope>` (work-queue retention), one message per invocation on
  `vortex.async.<scope>.<function>`, consumed by every API process through one durable pull
  consumer: JetStream hands each message to one consumer at a time, and hands it out again when
  its holder stops acknowledging (the holder dies); a retry is held by the process that settled
  it until it is due, then `nak`ed for any process to take (a held message is kept in progress
  like a running one, so it comes back after `ack_wait_s` if its holder dies). JetStream's own
  nak delay is not used for this: its redelivery timer is pushed back by every nak, so under a
  steady stream of retries they came hundreds of milliseconds late;
- the KV bucket `vortex_async_<scope>`: `inv.<id>`, each invocation's record, written only with
  compare-and-set on its revision (so an attempt that lost its claim cannot write back);
  `idem.<function>.<hash>`, Idempotency-Keys; `dead.<function>.<id>`, the dead letters; and
  `open.<function>.<id>`, the status of what has not ended, which each process watches to
  report the queue's depth without reading records.

A claim holds its message: while an attempt runs the queue tells JetStream it is in progress
every third of `ack_wait_s`, and a message whose holder is gone comes back after it. A record
and its message are written in that order, so a crash between them leaves a record whose message
is published again on the next enqueue of the same id (or found by its consumer). Built by
`queues.make_queue`; nats-py is imported here only.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Collection
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api
from nats.js.kv import KeyValue

from vortex_api.errors import PayloadTooLarge, QueueUnavailable
from vortex_api.queues import FINAL, IDEMPOTENCY_WINDOW_S, AsyncInvocation, Attempt, QueueSignal

log = logging.getLogger(__name__)

ACK_WAIT_S = 30.0  # a message whose holder said nothing for this long is handed out again
FETCH_BATCH = 16
CONNECT_TIMEOUT_S = 5.0
FIRST_CONNECT_S = 5.0  # the first connect at open: then QueueUnavailable, and the caller retries
_RECORD_OVERHEAD = 16 * 1024  # room in a message for a record's fields beside its event


def _doc(inv: AsyncInvocation) -> bytes:
    return json.dumps(
        {
            "id": inv.invocation_id,
            "function": inv.function,
            "event": base64.b64encode(inv.event).decode(),
            "request": inv.request,
            "created_at": inv.created_at,
            "status": inv.status,
            "attempts": inv.attempts,
            "due_at": inv.due_at,
            "finished_at": inv.finished_at,
            "result": base64.b64encode(inv.result).decode() if inv.result is not None else None,
            "error": inv.error,
            "history": [a.doc() for a in inv.history],
            "idempotency_key": inv.idempotency_key,
            "redrives": inv.redrives,
            "age_from": inv.age_from,
        },
        separators=(",", ":"),
    ).encode()


def _invocation(raw: bytes) -> AsyncInvocation:
    d = json.loads(raw)
    return AsyncInvocation(
        invocation_id=d["id"],
        function=d["function"],
        event=base64.b64decode(d["event"]),
        request=d["request"],
        created_at=d["created_at"],
        status=d["status"],
        attempts=d["attempts"],
        due_at=d["due_at"],
        finished_at=d["finished_at"],
        result=base64.b64decode(d["result"]) if d["result"] is not None else None,
        error=d["error"],
        history=[Attempt.from_doc(a) for a in d["history"]],
        idempotency_key=d["idempotency_key"],
        redrives=d["redrives"],
        age_from=d["age_from"],
    )


class NatsQueue:
    """`queues.Queue` on one NATS server (or cluster) with JetStream."""

    def __init__(
        self,
        url: str,
        scope: str = "default",
        *,
        retention_s: float = 7 * 86400,
        ack_wait_s: float = ACK_WAIT_S,
    ) -> None:
        self.url = url
        self.ack_wait_s = ack_wait_s
        self.scope = "".join(c if c.isalnum() else "_" for c in scope)
        self.stream = f"VORTEX_ASYNC_{self.scope}"
        self.subjects = f"vortex.async.{self.scope}"
        self.retention_s = retention_s
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._kv: KeyValue | None = None
        self._sub: JetStreamContext.PullSubscription | None = None
        self._held: dict[str, Msg] = {}  # invocation id -> the message its claim holds
        self._claimed: dict[str, tuple[int, int]] = {}  # id -> (attempt, revision it wrote)
        # id -> a message held until its retry is due, and the timer that hands it back then
        self._waiting: dict[str, tuple[Msg, asyncio.TimerHandle]] = {}
        self._naks: set[asyncio.Task[None]] = set()
        self._buffered: list[Msg] = []  # fetched by `wait`, for the next claim
        self._open: dict[str, tuple[str, str, float]] = {}  # key -> (function, status, age_from)
        self._watcher: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._signal = QueueSignal()
        self._closing = False
        self._fetching = asyncio.Lock()
        # (key, status, age_from) for `_write_index`
        self._index_writes: asyncio.Queue[tuple[str, str, float]] = asyncio.Queue()

    # ------------------------------------------------------------------ lifecycle
    async def open(self) -> None:
        self._closing = False
        try:
            # Reconnects never stop once connected; the first connect is bounded, as nats-py
            # would otherwise retry it forever (and the API would not start without NATS).
            nc = self._nc = Client()
            options: dict[str, Any] = {  # (nats-py types the seconds as int; they are float)
                "connect_timeout": CONNECT_TIMEOUT_S,
                "max_reconnect_attempts": -1,
                "reconnect_time_wait": 0.5,
                "name": "vortex-api",
            }
            await asyncio.wait_for(nc.connect(self.url, **options), FIRST_CONNECT_S)
            js = self._js = self._nc.jetstream()
            await self._ensure_stream(js)
            self._kv = await self._ensure_bucket(js)
            self._sub = await js.pull_subscribe(
                f"{self.subjects}.>",
                durable="dispatch",
                stream=self.stream,
                config=api.ConsumerConfig(
                    ack_policy=api.AckPolicy.EXPLICIT,
                    ack_wait=self.ack_wait_s,
                    max_deliver=-1,
                    max_ack_pending=100_000,
                ),
            )
            self._watcher = await self._kv.watch("open.>")
        except (TimeoutError, OSError, nats.errors.Error) as exc:
            await self.close()
            why = str(exc) or f"no answer within {FIRST_CONNECT_S:g} s"
            raise QueueUnavailable(f"NATS at {self.url} cannot be reached: {why}") from exc
        self._tasks = [
            asyncio.create_task(self._heartbeat(), name="vortex-nats-heartbeat"),
            asyncio.create_task(self._watch_open(), name="vortex-nats-open"),
            asyncio.create_task(self._write_index(), name="vortex-nats-index"),
        ]

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        config = api.StreamConfig(
            name=self.stream,
            subjects=[f"{self.subjects}.>"],
            retention=api.RetentionPolicy.WORK_QUEUE,
            storage=api.StorageType.FILE,
            duplicate_window=120.0,
        )
        try:
            await js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            await js.add_stream(config)

    async def _ensure_bucket(self, js: JetStreamContext) -> KeyValue:
        name = f"vortex_async_{self.scope}"
        try:
            return await js.key_value(name)
        except nats.js.errors.BucketNotFoundError:
            return await js.create_key_value(
                api.KeyValueConfig(bucket=name, history=1, ttl=self.retention_s)
            )

    async def close(self) -> None:
        if self._tasks:  # the open index's last writes first
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._index_writes.join(), 5)
        self._closing = True
        if self._watcher is not None:
            with contextlib.suppress(Exception):
                await self._watcher.stop()
            self._watcher = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for msg, timer in self._waiting.values():  # handed back, due when they were
            timer.cancel()
            with contextlib.suppress(Exception):
                await msg.nak(delay=max(0.0, timer.when() - asyncio.get_running_loop().time()))
        self._waiting.clear()
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()
        self._nc = self._js = self._kv = self._sub = None
        self._held.clear()
        self._claimed.clear()
        self._buffered.clear()

    @property
    def kv(self) -> KeyValue:
        if self._kv is None:
            raise QueueUnavailable("the async queue is not open")
        return self._kv

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise QueueUnavailable("the async queue is not open")
        return self._js

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.ack_wait_s / 3)
            waiting = [msg for msg, _ in self._waiting.values()]
            for msg in [*self._held.values(), *self._buffered, *waiting]:
                with contextlib.suppress(Exception):
                    await msg.in_progress()

    async def _watch_open(self) -> None:
        watcher = self._watcher
        assert watcher is not None
        # Ends when the watcher stops (close): a cancel alone can be lost in the watcher's
        # wait_for when an update arrives at the same moment (Python 3.11).
        while not self._closing:
            try:
                entry = await watcher.updates(timeout=5)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            if entry is None:
                continue
            if not isinstance(entry, KeyValue.Entry):  # the watcher stopped
                return
            if entry.operation in ("DEL", "PURGE") or not entry.value:
                self._open.pop(entry.key, None)
                continue
            with contextlib.suppress(ValueError, KeyError):
                status, age_from = json.loads(entry.value)
                function = entry.key.split(".", 2)[1]
                self._open[entry.key] = (function, str(status), float(age_from))

    # ------------------------------------------------------------------ records
    async def _read(self, invocation_id: str) -> tuple[AsyncInvocation, int] | None:
        try:
            entry = await self.kv.get(f"inv.{invocation_id}")
        except nats.js.errors.KeyNotFoundError:
            return None
        if entry.value is None:
            return None
        return _invocation(entry.value), int(entry.revision or 0)

    async def _write(self, inv: AsyncInvocation, revision: int) -> int | None:
        """Compare-and-set the record, then index it; its new revision, or None if it had
        changed since `revision`."""
        try:
            written = await self.kv.update(f"inv.{inv.invocation_id}", _doc(inv), last=revision)
        except nats.js.errors.KeyWrongLastSequenceError:
            return None
        await self._index(inv)
        return written

    async def _index(self, inv: AsyncInvocation) -> None:
        """Index `inv`'s new state: its dead letter now; its entry in the open index by one
        writer, in order and off the path of claims and settles (it only feeds the metrics)."""
        dead = f"dead.{inv.function}.{inv.invocation_id}"
        if inv.status == "dead":
            await self.kv.put(dead, str(inv.finished_at).encode())
        elif inv.redrives and inv.status == "queued":
            with contextlib.suppress(nats.js.errors.KeyNotFoundError):
                await self.kv.delete(dead)
        self._index_writes.put_nowait(
            (f"open.{inv.function}.{inv.invocation_id}", inv.status, inv.age_from)
        )

    async def _write_index(self) -> None:
        while True:
            key, status, age_from = await self._index_writes.get()
            try:
                if status in FINAL:
                    with contextlib.suppress(nats.js.errors.KeyNotFoundError):
                        await self.kv.delete(key)
                else:
                    await self.kv.put(key, json.dumps([status, age_from]).encode())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("async queue index (NATS): %s", exc)
            finally:
                self._index_writes.task_done()

    async def _publish(self, inv: AsyncInvocation, generation: str) -> None:
        await self.js.publish(
            f"{self.subjects}.{inv.function}",
            inv.invocation_id.encode(),
            stream=self.stream,
            headers={"Nats-Msg-Id": f"{inv.invocation_id}:{generation}"},
        )

    # ------------------------------------------------------------------ Queue
    async def enqueue(self, new: AsyncInvocation) -> tuple[AsyncInvocation, bool]:
        try:
            return await self._enqueue(new)
        except (TimeoutError, nats.errors.Error) as exc:
            raise QueueUnavailable(f"the async queue (NATS) failed: {exc}") from exc

    async def _enqueue(self, new: AsyncInvocation) -> tuple[AsyncInvocation, bool]:
        if (
            self._nc is not None
            and len(new.event) * 4 // 3 + _RECORD_OVERHEAD > self._nc.max_payload
        ):
            most = (self._nc.max_payload - _RECORD_OVERHEAD) * 3 // 4
            raise PayloadTooLarge(
                f"an async event may be at most {most} bytes (the NATS server's max_payload)"
            )
        if new.idempotency_key is not None:
            digest = hashlib.sha256(new.idempotency_key.encode()).hexdigest()[:40]
            idem = f"idem.{new.function}.{digest}"
            mapping = json.dumps([new.invocation_id, new.created_at]).encode()
            try:
                await self.kv.create(idem, mapping)
            except nats.js.errors.KeyWrongLastSequenceError:
                entry = await self.kv.get(idem)
                first_id, first_at = json.loads(entry.value or b'["", 0]')
                found = await self._read(first_id)
                if found is not None and first_at >= new.created_at - IDEMPOTENCY_WINDOW_S:
                    return found[0], False
                await self.kv.put(idem, mapping)  # past the window, or its record is gone
        new.age_from = new.age_from or new.created_at
        if new.due_at is None:
            new.due_at = new.created_at
        try:
            await self.kv.create(f"inv.{new.invocation_id}", _doc(new))
        except nats.js.errors.KeyWrongLastSequenceError:
            found = await self._read(new.invocation_id)
            if found is not None:
                return found[0], False
            raise QueueUnavailable("the async queue changed meanwhile; try again") from None
        await self._index(new)
        await self._publish(new, "0")
        self._signal.set()
        return new, True

    async def get(self, invocation_id: str) -> AsyncInvocation | None:
        try:
            found = await self._read(invocation_id)
        except (TimeoutError, nats.errors.Error) as exc:
            raise QueueUnavailable(f"the async queue (NATS) failed: {exc}") from exc
        return found[0] if found is not None else None

    async def _next_message(self, wait_s: float, batch: int = FETCH_BATCH) -> Msg | None:
        """The next message: a buffered one, or a batch fetched in one request (what is not
        claimed at once stays buffered, and in progress, for the next claims). A long wait
        asks for one: a fetch of more that lingers returns only at its deadline."""
        async with self._fetching:  # one fetch at a time; claims made together share it
            if not self._buffered:
                if self._sub is None:
                    raise QueueUnavailable("the async queue is not open")
                try:
                    fetched = await self._sub.fetch(batch, timeout=max(0.01, wait_s))
                except (nats.errors.TimeoutError, TimeoutError):
                    return None
                self._buffered.extend(fetched)
            return self._buffered.pop(0) if self._buffered else None

    async def claim(
        self, now: float, lease_s: float, exclude: Collection[str] = ()
    ) -> AsyncInvocation | None:
        """`lease_s` is not used: a claim lasts while this process says it is in progress."""
        try:
            for _ in range(16):  # skip what is not this consumer's to run now
                msg = await self._next_message(0.01)
                if msg is None:
                    return None
                claimed = await self._claim_message(msg, now, exclude)
                if claimed is not None:
                    return claimed
            return None
        except (TimeoutError, nats.errors.Error) as exc:
            raise QueueUnavailable(f"the async queue (NATS) failed: {exc}") from exc

    async def _claim_message(
        self, msg: Msg, now: float, exclude: Collection[str]
    ) -> AsyncInvocation | None:
        invocation_id = msg.data.decode()
        found = await self._read(invocation_id)
        if found is None or found[0].final:
            await msg.ack()  # nothing (left) to run
            return None
        inv, revision = found
        if inv.function in exclude:
            await msg.nak(delay=0.05)
            return None
        # (`now` is when the claim began, and the fetch may have waited since: the clock's now
        # decides, or an on-time retry is held back for as long as the fetch took.)
        current = max(now, time.time())
        if inv.due_at is not None and inv.due_at > current:
            self._hold(invocation_id, msg, inv.due_at - current)
            return None
        inv.status = "running"
        inv.attempts += 1
        written = await self._write(inv, revision)
        if written is None:
            await msg.nak()
            return None
        self._held[invocation_id] = msg
        self._claimed[invocation_id] = (inv.attempts, written)
        return inv

    async def next_due(self) -> float | None:
        return None  # JetStream hands messages out when due; `wait` waits for one

    async def settle(self, invocation: AsyncInvocation, attempt: int) -> bool:
        try:
            # The revision this process's claim wrote: if the record changed since, another
            # claim took it over (no read needed to tell).
            held = self._claimed.pop(invocation.invocation_id, None)
            if held is not None and held[0] == attempt:
                revision = held[1]
            else:
                found = await self._read(invocation.invocation_id)
                if found is None:
                    return False
                stored, revision = found
                if stored.status != "running" or stored.attempts != attempt:
                    return False
            if invocation.final:
                invocation.due_at = None
            if await self._write(invocation, revision) is None:
                return False
            msg = self._held.pop(invocation.invocation_id, None)
            if invocation.final:
                if msg is not None:
                    await msg.ack()
            elif msg is not None:
                self._hold(invocation.invocation_id, msg, (invocation.due_at or 0.0) - time.time())
            else:
                await self._publish(invocation, str(attempt))
            return True
        except (TimeoutError, nats.errors.Error) as exc:
            raise QueueUnavailable(f"the async queue (NATS) failed: {exc}") from exc

    def _hold(self, invocation_id: str, msg: Msg, delay_s: float) -> None:
        """Keep `msg` (in progress) for `delay_s`, then hand it back for any process to take."""
        loop = asyncio.get_running_loop()
        before = self._waiting.pop(invocation_id, None)
        if before is not None:  # delivered again meanwhile: this delivery is the one to hold
            before[1].cancel()
        timer = loop.call_later(max(0.0, delay_s), self._hand_back, invocation_id)
        self._waiting[invocation_id] = (msg, timer)

    def _hand_back(self, invocation_id: str) -> None:
        held = self._waiting.pop(invocation_id, None)
        if held is not None:
            task = asyncio.create_task(self._nak(held[0]))
            self._naks.add(task)
            task.add_done_callback(self._naks.discard)

    async def _nak(self, msg: Msg) -> None:
        with contextlib.suppress(Exception):  # lost: it comes back after ack_wait_s
            await msg.nak()

    async def release(self, invocation_id: str, attempt: int) -> None:
        found = await self._read(invocation_id)
        if found is not None and found[0].status == "running" and found[0].attempts == attempt:
            inv, revision = found
            inv.attempts -= 1
            inv.status = "queued" if inv.attempts == 0 else "failed"
            await self._write(inv, revision)
        self._claimed.pop(invocation_id, None)
        msg = self._held.pop(invocation_id, None)
        if msg is not None:
            await msg.nak(delay=0.05)

    async def _keys(self, pattern: str) -> list[str]:
        """The keys matching `pattern` (a subject filter: the server selects them)."""
        watcher: Any = await self.kv.watch(pattern, meta_only=True, ignore_deletes=True)
        keys = []
        try:
            while (entry := await watcher.updates(timeout=5)) is not None:
                keys.append(entry.key)
        finally:
            await watcher.stop()
        return keys

    async def dead_letters(self, function: str, limit: int) -> list[AsyncInvocation]:
        keys = await self._keys(f"dead.{function}.>")
        found = []
        for key in keys:
            read = await self._read(key.split(".", 2)[2])
            if read is not None and read[0].status == "dead":
                found.append(read[0])
        found.sort(key=lambda inv: inv.finished_at or 0.0, reverse=True)
        return found[:limit]

    async def redrive(self, invocation_id: str, now: float) -> AsyncInvocation | None:
        found = await self._read(invocation_id)
        if found is None:
            return None
        inv, revision = found
        if inv.status != "dead":
            return inv
        inv.status, inv.attempts, inv.due_at, inv.age_from = "queued", 0, now, now
        inv.finished_at = None
        inv.redrives += 1
        if await self._write(inv, revision) is None:
            return await self.get(invocation_id)
        await self._publish(inv, f"r{inv.redrives}")
        self._signal.set()
        return inv

    async def depth(self, now: float) -> list[tuple[str, str, int, float]]:
        groups: dict[tuple[str, str], tuple[int, float]] = {}
        for function, status, age_from in self._open.values():
            count, oldest = groups.get((function, status), (0, now))
            groups[(function, status)] = (count + 1, min(oldest, age_from))
        return [(f, s, n, max(0.0, now - oldest)) for (f, s), (n, oldest) in groups.items()]

    async def purge(self, before: float) -> int:
        return 0  # the bucket's TTL forgets records `retention_s` after their last change

    async def wait(self, seconds: float) -> None:
        if self._buffered:
            return
        msg = await self._next_message(seconds, batch=1)
        if msg is not None:
            self._buffered.insert(0, msg)
