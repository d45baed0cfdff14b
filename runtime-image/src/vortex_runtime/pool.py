"""Warm isolates: a pool per function, and a registry of pools for many-function mode.

`FunctionPool` hands each invocation an idle isolate of its function (or starts one, up to
`size`), so invocations of one function run side by side, each in its own isolate, and one that
awaits a timer never blocks the others. Broken isolates (timeout, memory limit) are closed
through `watchdog.close` and replaced on demand. `FunctionRegistry` keeps one pool per
`PoolKey` (the code key and the function's identity and effective spec: name, env, timeout,
memory), so two functions deployed with the same code never share an isolate, its globals or
its env. It keeps them in least-recently-used order, closes idle isolates of the coldest
functions when the estimated memory goes over the budget, and retires a function's older pool
once it is invoked with another code or spec. Used by service.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from vortex_runtime import metrics, watchdog
from vortex_runtime.errors import RuntimeBusy
from vortex_runtime.isolate import HostCalls, Isolate, Limits, Outcome
from vortex_runtime.prewarm import Prewarmer

log = logging.getLogger("vortex_runtime.pool")

# What an isolate costs beyond the heap V8 has committed for it (thread stack, bookkeeping). The
# committed heap already overstates what a small isolate touches: about 1.3 MB committed, of
# which the process grows by about 1 MB per warm function (`python -m bench density` measures
# it), so the estimate errs on the safe side with little more.
_ISOLATE_OVERHEAD_BYTES = 64 * 1024
_MB = 1024 * 1024
# An idle isolate that has not run since its last probe is probed again only this often.
REPROBE_S = 10.0
PROBES_IN_FLIGHT = 32
# A function whose isolate was demoted (it hogged a CPU: isolate.py) or broken by its timeout or
# memory limit gets its new isolates demoted from the start, for NOISY_S after the last time:
# made for it on the demoted maker, not taken from the prewarmed stock.
NOISY_S = 60.0
NOISY_BREAKS = ("timeout", "cpu", "memory", "terminated")


@dataclass
class Invocation:
    outcome: Outcome
    # how the isolate was started for this invocation: "prewarmed" (a blank isolate from the
    # stock), "isolate" (a new one), or None when a warm isolate of the function served it
    cold_kind: str | None = None

    @property
    def cold_start(self) -> bool:
        return self.cold_kind is not None


class FunctionPool:
    """Isolates of one function. All methods run on the server's event loop."""

    def __init__(
        self,
        name: str,
        code: str,
        limits: Limits,
        size: int,
        prewarmed: Prewarmer | None = None,
    ) -> None:
        self.name = name
        self.code = code
        self.limits = limits
        self.size = size
        self._prewarmed = prewarmed
        self._idle: list[Isolate] = []
        self._count = 0  # isolates alive or being started
        self._waiters: deque[asyncio.Future[Isolate | None]] = deque()
        self.last_used = time.monotonic()
        self.inflight = 0
        self._closed: str | None = None  # why no isolate is kept any more: shutdown, retired
        # Until when new isolates start demoted: the function hogged a CPU or broke a limit.
        self._noisy_until = 0.0

    @property
    def isolates(self) -> int:
        return self._count

    @property
    def idle(self) -> int:
        return len(self._idle)

    async def warm(self) -> None:
        """Start one isolate and keep it idle (readiness: the code compiles and loads)."""
        isolate, _kind = await self._start()
        self._release(isolate)

    async def _start(self) -> tuple[Isolate, str]:
        """A new isolate of this function, and how it was started (see `Invocation`)."""
        self._count += 1
        try:
            noisy = time.monotonic() < self._noisy_until
            # A noisy function never draws on the stock its neighbours' cold starts use.
            stock = None if noisy else self._prewarmed
            blank = stock.take() if stock is not None else None
            isolate = await Isolate.create(self.code, self.limits, blank, demoted=noisy)
            return isolate, "prewarmed" if blank is not None else "isolate"
        except BaseException:
            self._count -= 1
            self._wake_one()
            raise

    async def _acquire(self, wait_s: float) -> tuple[Isolate, str | None]:
        if self._idle:
            return self._idle.pop(), None
        if self._count < self.size:
            return await self._start()
        waiter: asyncio.Future[Isolate | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            isolate = await asyncio.wait_for(waiter, wait_s)
        except TimeoutError as exc:
            metrics.BUSY_REJECTIONS.inc()
            raise RuntimeBusy(
                f"All {self.size} isolates of this function are busy; try again shortly"
            ) from exc
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
        if isolate is None:  # a slot was freed: start a fresh isolate in it
            return await self._start()
        return isolate, None

    def _wake_one(self) -> bool:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return True
        return False

    def _release(self, isolate: Isolate) -> None:
        if isolate.demoted or isolate.broken in NOISY_BREAKS:
            self._noisy_until = time.monotonic() + NOISY_S
        if isolate.broken or self._closed:
            self._count -= 1
            reason = isolate.broken or self._closed or "shutdown"
            metrics.RECYCLES.labels(reason=reason).inc()
            watchdog.close(isolate, what=f"isolate of {self.name} ({reason})")
            self._wake_one()
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(isolate)
                return
        self._idle.append(isolate)

    async def invoke(
        self,
        event_json: str,
        context: dict[str, Any],
        timeout_s: float,
        wait_s: float,
        cpu_limit_ms: int | None = None,
        host: HostCalls | None = None,
    ) -> Invocation:
        self.last_used = time.monotonic()
        self.inflight += 1
        try:
            started = time.monotonic()
            isolate, cold = await self._acquire(min(wait_s, timeout_s))
            remaining = max(0.001, timeout_s - (time.monotonic() - started))
            try:
                outcome = await isolate.invoke(event_json, context, remaining, cpu_limit_ms, host)
            finally:
                self._release(isolate)
            return Invocation(outcome, cold)
        finally:
            self.inflight -= 1
            self.last_used = time.monotonic()

    def trim(self, keep: int, reason: str = "evicted") -> int:
        """Close idle isolates beyond `keep`; returns how many were closed."""
        closed = 0
        while len(self._idle) > keep:
            isolate = self._idle.pop(0)
            self._count -= 1
            metrics.RECYCLES.labels(reason=reason).inc()
            watchdog.close(isolate, what=f"idle isolate of {self.name}")
            closed += 1
        return closed

    def heap_bytes(self) -> int:
        return sum(isolate.heap_used for isolate in self._idle)

    def outside_bytes(self) -> int:
        return sum(isolate.outside_used for isolate in self._idle)

    def memory_bytes(self) -> int:
        return sum(isolate.memory_bytes() for isolate in self._idle)

    async def sweep(self, timeout_s: float, slots: asyncio.Semaphore | None = None) -> int:
        """Probe the idle isolates (see `Isolate.probe`) that ran since their last probe, or
        were last probed REPROBE_S ago; recycle those that do not answer twice in a row (busy
        while idle: an earlier invocation's work still runs) or hold more than the function's
        memory limit. They stay in the idle list meanwhile, so an invocation may take one and
        simply queue behind the probe. `slots` bounds the probes in flight across pools.
        Returns how many were recycled."""
        now = time.monotonic()
        isolates = [i for i in self._idle if i.needs_probe(now, REPROBE_S)]
        if not isolates:
            return 0
        slots = slots or asyncio.Semaphore(PROBES_IN_FLIGHT)

        async def probe(isolate: Isolate) -> bool:
            async with slots:
                return await isolate.probe(timeout_s)

        answers = await asyncio.gather(*(probe(isolate) for isolate in isolates))
        recycled = 0
        for isolate, answered in zip(isolates, answers, strict=True):
            if not answered and isolate.unanswered >= 2:
                isolate.broken = "busy"
                log.warning(
                    "an idle isolate of %s was busy (work left by an earlier invocation)",
                    self.name,
                )
            elif isolate.memory_bytes() > self.limits.memory_mb * _MB:
                isolate.broken = "memory"
            if isolate.broken and isolate in self._idle:
                self._idle.remove(isolate)
                self._release(isolate)  # closes it, and counts it out
                recycled += 1
            # a busy one taken by an invocation meanwhile is closed when that one releases it
        return recycled

    def retire(self) -> None:
        """Keep no isolate any more, but let invocations already here finish: idle isolates
        close now, busy ones when released, and a waiter gets a fresh isolate for its turn."""
        self._closed = "retired"
        self.trim(0, reason="retired")

    def close(self) -> None:
        self._closed = self._closed or "shutdown"
        self.trim(0, reason=self._closed)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.cancel()


def _pool_bytes(pool: FunctionPool) -> int:
    """What the budget counts for a pool: every isolate's overhead, and its idle isolates'
    memory at their last probe."""
    return pool.isolates * _ISOLATE_OVERHEAD_BYTES + pool.memory_bytes()


CodeSource = Callable[[str], Awaitable[str]]


@dataclass(frozen=True)
class PoolKey:
    """What a pool's isolates are for: the code, and the function with its effective spec.

    Everything that makes one function's isolate differ from another's is here, so that an
    isolate (its globals, the env it was handed) is only ever reused by the same function.
    """

    code_key: str
    function: str | None  # the X-Vortex-Function name; None for a caller that sends none
    env: str  # context.env as canonical JSON
    timeout_ms: int
    memory_mb: int

    @property
    def name(self) -> str:
        return self.function or self.code_key


class FunctionRegistry:
    """Pools by `PoolKey` for many-function mode, evicting the least recently used."""

    def __init__(
        self,
        load: CodeSource,
        default_limits: Limits,
        pool_size: int,
        budget_bytes: int,
        prewarmed: Prewarmer | None = None,
    ) -> None:
        self._load = load
        self._prewarmed = prewarmed
        self._default_limits = default_limits
        self._pool_size = pool_size
        self._budget = budget_bytes
        self._pools: OrderedDict[PoolKey, FunctionPool] = OrderedDict()
        self._loading: dict[PoolKey, asyncio.Task[FunctionPool]] = {}
        self._current: dict[str, PoolKey] = {}  # function name -> the key of its newest pool

    @property
    def pools(self) -> list[FunctionPool]:
        return list(self._pools.values())

    def pool_key(
        self,
        code_key: str,
        memory_mb: int | None = None,
        *,
        function: str | None = None,
        env: dict[str, str] | None = None,
        timeout_ms: int | None = None,
    ) -> PoolKey:
        """The pool key of an invocation; limits it does not set take the defaults."""
        return PoolKey(
            code_key=code_key,
            function=function,
            env=json.dumps(env or {}, sort_keys=True, separators=(",", ":")),
            timeout_ms=timeout_ms or self._default_limits.timeout_ms,
            memory_mb=memory_mb or self._default_limits.memory_mb,
        )

    async def pool(
        self,
        code_key: str,
        memory_mb: int | None = None,
        *,
        function: str | None = None,
        env: dict[str, str] | None = None,
        timeout_ms: int | None = None,
    ) -> FunctionPool:
        key = self.pool_key(code_key, memory_mb, function=function, env=env, timeout_ms=timeout_ms)
        pool = self._pools.get(key)
        if pool is not None:
            self._pools.move_to_end(key)
            return pool
        task = self._loading.get(key)
        if task is None:
            task = asyncio.ensure_future(self._new_pool(key))
            self._loading[key] = task
            task.add_done_callback(lambda _t: self._loading.pop(key, None))
        return await asyncio.shield(task)

    async def _new_pool(self, key: PoolKey) -> FunctionPool:
        # Each pool loads its code (the loader checks it against the caller's checksum); what
        # is shared between pools of the same code is at most the text, never an isolate.
        code = await self._load(key.code_key)
        limits = dataclasses.replace(
            self._default_limits, timeout_ms=key.timeout_ms, memory_mb=key.memory_mb
        )
        pool = FunctionPool(key.name, code, limits, self._pool_size, self._prewarmed)
        self._pools[key] = pool
        if key.function is not None:
            # The function now runs other code or another spec (a redeploy): its older pool's
            # isolates, and the env they hold, go now rather than when the budget needs room.
            older = self._current.get(key.function)
            self._current[key.function] = key
            if older is not None and older != key:
                self._retire(older)
        self.enforce_budget(protect=pool)
        return pool

    def _retire(self, key: PoolKey) -> None:
        pool = self._pools.pop(key, None)
        if pool is not None:
            pool.retire()
            log.info("retired an older pool of function %s (code %s)", key.name, key.code_key)

    def _forget(self, key: PoolKey) -> None:
        del self._pools[key]
        if key.function is not None and self._current.get(key.function) == key:
            del self._current[key.function]

    def estimated_bytes(self) -> int:
        return sum(_pool_bytes(p) for p in self._pools.values())

    async def sweep(self, timeout_s: float) -> None:
        """Probe every pool's idle isolates, PROBES_IN_FLIGHT at a time (a timeout measures
        the isolate, not a queue on the event loop), then hold the budget with the answers."""
        slots = asyncio.Semaphore(PROBES_IN_FLIGHT)
        await asyncio.gather(*(p.sweep(timeout_s, slots) for p in list(self._pools.values())))
        self.enforce_budget()

    def enforce_budget(self, protect: FunctionPool | None = None) -> None:
        """Close idle isolates of the coldest functions until the estimate fits the budget.
        Called after every invocation: one pass over the pools, whatever their number."""
        total = self.estimated_bytes()
        if total <= self._budget:
            return
        for key, pool in list(self._pools.items()):
            if total <= self._budget:
                return
            if pool is protect:
                continue
            before = _pool_bytes(pool)
            pool.trim(0)
            total -= before - _pool_bytes(pool)
            if pool.isolates == 0 and pool.inflight == 0:
                self._forget(key)
                log.info("evicted function %s (code %s)", key.name, key.code_key)

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
        self._current.clear()
