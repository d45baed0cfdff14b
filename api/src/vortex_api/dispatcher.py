"""The dispatcher: runs what the async queue holds, and decides what follows each attempt.

`app.lifespan` starts one per API process when a queue is configured. It claims due
invocations while this process has room (its `async_workers`, and a bulkhead slot: async work
obeys the same caps as `/execute`, and waits in the queue where `/execute` would get a 503),
runs each attempt through `execution.run` with `context.attempt`, and settles it from the
function's `spec.retry`:

- success: `succeeded`, with the runtime's answer as the result;
- an error listed in `retryOn`, with attempts and age left: `failed`, the next attempt due
  after the backoff;
- anything else, or past `maxAgeSeconds`: `dead`, listed in the function's dead letters;
- an attempt that reached no runtime (`NotReady`: none ready yet, say while its pods restart),
  that no runtime had room for (`RuntimeBusy`), or that could not look its function up (the
  cluster's API unreachable) did not happen: it goes back to the queue after a pause,
  uncounted, until `maxAgeSeconds`.

A final invocation calls the function's `onSuccess` / `onFailure` target async, with the
invocation's record as the event and an id derived from it (so a repeat enqueues nothing). An
attempt whose process dies keeps its claim until the lease runs out; then it is claimed again
(delivery is at least once). Every few seconds the queue's depth is read for the metrics and
ended invocations past the retention are forgotten.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Collection
from typing import Any

from vortex_api import execution
from vortex_api.errors import ApiError, CapacityExceeded, NotReady, Unavailable
from vortex_api.functions import Function
from vortex_api.gateway import Gateway
from vortex_api.invoker import Invocation
from vortex_api.queues import AsyncInvocation, Attempt, Queue

log = logging.getLogger(__name__)

# How long an attempt holds its claim beyond the function's own deadline before another
# consumer may take it (the process running it is then taken to be gone).
LEASE_MARGIN_S = 30.0
IDLE_POLL_S = 1.0  # the longest sleep with nothing due (a redrive or enqueue wakes it sooner)
FULL_POLL_S = 0.02  # how often a full process looks for room again
HOUSEKEEPING_S = 2.0
STOP_GRACE_S = 5.0  # attempts in flight at shutdown may finish within this
CLAIM_BATCH = 16  # claims made together when invocations are due at once
# How long an attempt that could not start (no runtime ready, the cluster's API unreachable)
# waits before it is given back to the queue.
NOT_READY_PAUSE_S = 1.0
# Runtime answers that say the function did not start (every isolate of it busy, on every pod
# tried): like NotReady, the attempt did not happen.
DID_NOT_RUN = frozenset({"RuntimeBusy"})
OPEN_RETRY_S, OPEN_RETRY_MAX_S = 0.5, 10.0  # a queue not reachable at start: retried this often


def _error_of(status: int, body: bytes) -> dict[str, Any]:
    """{type, message} of a failed answer (the runtime's or the API's error body)."""
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        error = json.loads(body)["error"]
        return {"type": str(error["type"]), "message": str(error.get("message", ""))}
    return {"type": "RuntimeUnavailable", "message": f"the runtime answered {status}"}


class Dispatcher:
    """Consumes one queue for one API process."""

    def __init__(
        self, gw: Gateway, queue: Queue, *, workers: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.gw = gw
        self.queue = queue
        self.workers = workers
        self.clock = clock
        self.retention_s = gw.settings.async_retention_s
        self.lease_s = gw.settings.max_timeout_ms / 1000 + gw.settings.timeout_grace_ms / 1000
        self.lease_s += LEASE_MARGIN_S
        self.not_ready_pause_s = NOT_READY_PAUSE_S
        self._running: set[asyncio.Task[None]] = set()
        self._caps: dict[str, int] = {}  # per-function caps seen, for what to skip when full
        self._freed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Open the queue and consume it. A queue that cannot be reached yet (NATS starting
        beside the API) is opened in the background, retried: `/execute` serves meanwhile, and
        the async routes answer 503 QueueUnavailable until it opens."""
        try:
            await self.queue.open()
        except ApiError as exc:
            log.warning("async queue: %s; retrying in the background", exc.message)
            self._tasks = [asyncio.create_task(self._open_then_run(), name="vortex-queue-open")]
            return
        self._run_consumers()

    async def _open_then_run(self) -> None:
        delay = OPEN_RETRY_S
        while True:
            await asyncio.sleep(delay)
            try:
                await self.queue.open()
            except ApiError as exc:
                log.warning("async queue: %s", exc.message)
                delay = min(delay * 2, OPEN_RETRY_MAX_S)
                continue
            log.info("async queue opened")
            self._run_consumers()
            return

    def _run_consumers(self) -> None:
        self._tasks += [
            asyncio.create_task(self._consume(), name="vortex-dispatcher"),
            asyncio.create_task(self._housekeep(), name="vortex-dispatcher-housekeeping"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._running:
            # What does not finish keeps its claim: the next start takes it again.
            _, pending = await asyncio.wait(set(self._running), timeout=STOP_GRACE_S)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.queue.close()

    # ------------------------------------------------------------------ consuming
    def _full(self) -> bool:
        bulkhead = self.gw.bulkhead
        return len(self._running) >= self.workers or bulkhead.inflight >= bulkhead.max_inflight

    def _saturated(self) -> list[str]:
        """Functions at their cap in this process: their invocations wait in the queue."""
        bulkhead = self.gw.bulkhead
        return [f for f, cap in self._caps.items() if bulkhead.inflight_of(f) >= cap]

    async def _consume(self) -> None:
        while True:
            try:
                await self._consume_once()
            except asyncio.CancelledError:
                raise
            except ApiError as exc:  # the queue failing: try again shortly
                log.warning("async queue: %s", exc.message)
                await asyncio.sleep(IDLE_POLL_S)
            except Exception:
                log.exception("the dispatcher failed; it carries on")
                await asyncio.sleep(IDLE_POLL_S)

    async def _consume_once(self) -> None:
        if self._full():
            await self._room()
            return
        now = self.clock()
        exclude = self._saturated()
        claimed = await self.queue.claim(now, self.lease_s, exclude=exclude)
        if claimed is not None:
            self._run(claimed, now)
            # More may be due at once (retries after one backoff): claim for the room left
            # together, as a queue across the network answers each claim in round trips.
            # Each one starts as soon as its own claim returns: a queue across the network may
            # wait out a short fetch for the next, and what one fetch found must not wait on it.
            room = min(CLAIM_BATCH, self.workers - len(self._running))
            if room > 0:
                await asyncio.gather(*(self._claim_and_run(now, exclude) for _ in range(room)))
            return
        due = await self.queue.next_due()
        if due is not None and due <= now:  # due, but only for functions at their cap
            await self._room()
            return
        wait = IDLE_POLL_S if due is None else min(IDLE_POLL_S, due - now)
        await self.queue.wait(wait)

    async def _claim_and_run(self, now: float, exclude: Collection[str]) -> None:
        claimed = await self.queue.claim(now, self.lease_s, exclude=exclude)
        if claimed is not None:
            self._run(claimed, now)

    def _run(self, invocation: AsyncInvocation, claimed_at: float) -> None:
        task = asyncio.create_task(self._attempt(invocation, claimed_at))
        self._running.add(task)
        task.add_done_callback(self._done)

    async def _room(self) -> None:
        """Until one of our attempts ends, or briefly (a slot `/execute` held may free)."""
        self._freed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._freed.wait(), FULL_POLL_S)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._freed.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("an async attempt failed unexpectedly", exc_info=task.exception())

    # ------------------------------------------------------------------ one attempt
    async def _attempt(self, invocation: AsyncInvocation, claimed_at: float) -> None:
        attempt = invocation.attempts
        gw = self.gw
        try:
            function = await gw.backend.resolve(invocation.function)
        except Unavailable:  # the cluster's API is unreachable for now: this did not happen
            await self._give_back(invocation, attempt)
            return
        except ApiError as exc:
            await self._settle(
                invocation, attempt, None, {"type": exc.error_type, "message": exc.message}
            )
            return
        policy = function.retry
        if claimed_at - invocation.age_from > policy.max_age_s:
            message = f"the invocation is older than its maxAgeSeconds of {policy.max_age_s}"
            await self._settle(
                invocation, attempt, function, {"type": "MaxAgeExceeded", "message": message}
            )
            return
        cap = function.inflight_cap or gw.settings.max_inflight_per_function
        if cap is not None:
            self._caps[function.function_id] = cap
        try:
            gw.bulkhead.enter(function.function_id, cap)
        except CapacityExceeded:  # it waits in the queue; this attempt did not happen
            await self.queue.release(invocation.invocation_id, attempt)
            return
        started = self.clock()
        due_at = invocation.due_at if invocation.due_at is not None else invocation.age_from
        gw.metrics.async_start_delay.labels(function.function_id).observe(
            max(0.0, started - due_at)
        )
        invocation.history.append(Attempt(attempt, started))
        request = invocation.request
        run = Invocation(
            body=invocation.event,
            method=str(request.get("method", "POST")),
            path=str(request.get("path", f"/async/{function.function_id}")),
            query=str(request.get("query", "")),
            invocation_id=invocation.invocation_id,
            headers=[(str(k), str(v)) for k, v in request.get("headers", [])],
            attempt=attempt,
            pin=str(request["version"]) if request.get("version") is not None else None,
        )
        error: dict[str, Any] | None = None
        try:
            try:
                result = await execution.run(gw, function, run)
            finally:
                gw.bulkhead.leave(function.function_id, cap)
        except NotReady:  # it reached no runtime (none ready yet): it waits in the queue
            invocation.history.pop()
            await self._give_back(invocation, attempt)
            return
        except ApiError as exc:
            error = {"type": exc.error_type, "message": exc.message}
        else:
            if result.status == 200:
                invocation.result = result.body
            else:
                error = _error_of(result.status, result.body)
                if error["type"] in DID_NOT_RUN:  # every isolate busy: it waits in the queue
                    invocation.history.pop()
                    await self._give_back(invocation, attempt)
                    return
        await self._settle(invocation, attempt, function, error)

    async def _give_back(self, invocation: AsyncInvocation, attempt: int) -> None:
        """Release an attempt that could not start, after a pause (its slot here held), so that
        what keeps it from starting has a moment to heal before it is claimed again."""
        await asyncio.sleep(self.not_ready_pause_s)
        await self.queue.release(invocation.invocation_id, attempt)

    async def _settle(
        self,
        invocation: AsyncInvocation,
        attempt: int,
        function: Function | None,
        error: dict[str, Any] | None,
    ) -> None:
        now = self.clock()
        if invocation.history and invocation.history[-1].number == attempt:
            invocation.history[-1].finished_at = now
            invocation.history[-1].error = error
        else:  # it never started (no such function, too old)
            invocation.history.append(Attempt(attempt, now, now, error))
        invocation.error = error
        function_id = invocation.function
        if error is None:
            invocation.status, invocation.finished_at = "succeeded", now
            outcome = "succeeded"
        else:
            policy = function.retry if function is not None else None
            delay = policy.delay_s(attempt) if policy is not None else 0.0
            if (
                policy is not None
                and policy.retries(str(error["type"]), attempt)
                and now + delay - invocation.age_from <= policy.max_age_s
            ):
                invocation.status, invocation.due_at = "failed", now + delay
                outcome = "retried"
            else:
                invocation.status, invocation.finished_at = "dead", now
                outcome = "dead"
        if not await self.queue.settle(invocation, attempt):
            return  # claimed again meanwhile: that attempt's outcome counts
        self.gw.metrics.async_attempts.labels(function_id, outcome).inc()
        if outcome == "dead":
            self.gw.metrics.async_dead_letters.labels(function_id).inc()
        if outcome != "retried" and function is not None:
            hook = function.on_success if outcome == "succeeded" else function.on_failure
            if hook:
                await self._call_hook(invocation, hook)

    async def _call_hook(self, invocation: AsyncInvocation, target: str) -> None:
        event = json.dumps(invocation.doc(), separators=(",", ":")).encode()
        new = AsyncInvocation(
            invocation_id=invocation.hook_id(target),
            function=target,
            event=event,
            request={"method": "POST", "path": f"/async/{target}", "query": "", "headers": []},
            created_at=self.clock(),
        )
        try:
            await self.gw.backend.resolve(target)
            await self.queue.enqueue(new)
        except ApiError as exc:
            log.warning(
                "the %s call after invocation %s was not queued: %s",
                target,
                invocation.invocation_id,
                exc.message,
            )

    # ------------------------------------------------------------------ housekeeping
    async def _housekeep(self) -> None:
        while True:
            try:
                now = self.clock()
                self.gw.metrics.queue_depth = await self.queue.depth(now)
                await self.queue.purge(now - self.retention_s)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("async queue housekeeping failed")
            await asyncio.sleep(HOUSEKEEPING_S)
