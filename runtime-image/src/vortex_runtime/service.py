"""What the HTTP layer calls: runs invocations in single- or many-function mode.

`SingleFunctionService` loads one code object (file or S3) at start-up, retrying with backoff
while it is missing or fails its checksum, and reports ready once an isolate has compiled it.
`ManyFunctionService` loads code by key on first use through a `FunctionRegistry`, or ahead of
it through `warm()`; its pools are per function (the X-Vortex-Function name, env, timeout and
memory sent with each request), never shared by two functions with the same code.
Built by `build_service()` from settings; used by server.py and __main__.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from vortex_runtime import egress, fetch, kv, metrics
from vortex_runtime.errors import CompileError, NotReady, RuntimeFailure
from vortex_runtime.isolate import HostCalls, Limits, prestart
from vortex_runtime.loader import CodeLoader, FileLoader, S3Loader, StoreLoader
from vortex_runtime.pool import FunctionPool, FunctionRegistry, Invocation
from vortex_runtime.prewarm import Prewarmer
from vortex_runtime.settings import RuntimeSettings, get_minio_settings

log = logging.getLogger("vortex_runtime.service")


@dataclass
class InvokeRequest:
    event_json: str
    context: dict[str, Any]
    timeout_ms: int | None = None
    memory_mb: int | None = None
    cpu_limit_ms: int | None = None
    kv_namespace: str | None = None
    egress: egress.Egress | None = None  # spec.egress; None: the runtime's own (VORTEX_EGRESS)
    sha256: str | None = None
    env: dict[str, str] | None = None
    function_name: str | None = None
    function_version: int | None = None  # the API's version number of the function, if kept
    # Set by the service: the invocation's fetch calls, whose log goes in its record.
    fetch: fetch.FetchCalls | None = None


class Service(Protocol):
    single: bool
    settings: RuntimeSettings
    kv: kv.Store | None
    fetcher: fetch.Fetcher

    @property
    def ready(self) -> bool: ...

    @property
    def not_ready_reason(self) -> str: ...

    async def start(self) -> None: ...

    async def invoke(self, key: str | None, request: InvokeRequest) -> Invocation: ...

    def close(self) -> None: ...

    def heap_bytes(self) -> int: ...

    def outside_bytes(self) -> int: ...

    def isolates(self) -> int: ...


async def _probe_forever(
    settings: RuntimeSettings, sweep: Callable[[float], Awaitable[object]]
) -> None:
    """Probe idle isolates every `probe_interval_ms` (see `FunctionPool.sweep`)."""
    while True:
        await asyncio.sleep(settings.probe_interval_ms / 1000)
        try:
            await sweep(settings.probe_timeout_ms / 1000)
        except Exception:
            log.exception("probing idle isolates failed")


def default_limits(settings: RuntimeSettings) -> Limits:
    return Limits(
        timeout_ms=settings.timeout_ms,
        memory_mb=settings.memory_mb,
        max_output_bytes=settings.max_output_bytes,
        max_log_entries=settings.max_log_entries,
        max_log_bytes=settings.max_log_bytes,
        max_timers=settings.max_timers,
    )


def kv_store(settings: RuntimeSettings) -> kv.Store | None:
    """Where `context.kv` keeps its data: the data dir's files, else MinIO if configured."""
    minio = get_minio_settings()
    return kv.store_for(settings.kv_dir, minio if minio.configured else None)


def fetcher(settings: RuntimeSettings) -> fetch.Fetcher:
    """Where `fetch` requests go out: the node's address denied, names resolved by the system
    or by one DNS server."""
    return fetch.Fetcher(
        fetch.node_networks(settings.node_ip),
        fetch.Resolver(fetch.dns_server(settings.fetch_dns_server)),
    )


def host_calls(service: Service, request: InvokeRequest, space: str, timeout_ms: int) -> HostCalls:
    """What one invocation's host calls reach: `fetch` (with the request's egress, else the
    runtime's, within the invocation's time), else `context.kv` in `space`. Each part is made
    at its first call: most invocations make none."""
    deadline = asyncio.get_running_loop().time() + timeout_ms / 1000
    kv_calls: kv.KVCalls | None = None

    async def call(op: str, args: dict[str, Any]) -> tuple[str, str]:
        nonlocal kv_calls
        if op == "fetch":
            fetch_calls = request.fetch
            if fetch_calls is None:
                rules = request.egress
                if rules is None:
                    rules = _runtime_egress(service.settings)
                fetch_calls = request.fetch = fetch.FetchCalls(service.fetcher, rules, deadline)
            return await fetch_calls(args)
        if kv_calls is None:
            kv_calls = kv.KVCalls(service.kv, space)
        return await kv_calls(op, args)

    return call


def _runtime_egress(settings: RuntimeSettings) -> egress.Egress:
    return egress.from_json(settings.egress) if settings.egress else NO_EGRESS


NO_EGRESS = egress.Egress()


def _context(request: InvokeRequest, name: str, timeout_ms: int, env: dict[str, str]) -> None:
    request.context["functionName"] = request.function_name or name
    request.context["timeoutMs"] = timeout_ms
    request.context["env"] = request.env if request.env is not None else env


class SingleFunctionService:
    single = True

    def __init__(self, settings: RuntimeSettings, loader: CodeLoader, key: str) -> None:
        self.settings = settings
        self._loader = loader
        self._key = key
        self._pool: FunctionPool | None = None
        self._reason = "loading code"
        self._task: asyncio.Task[None] | None = None
        self._prober: asyncio.Task[None] | None = None
        self._env = settings.function_env()
        self.kv = kv_store(settings)
        self.fetcher = fetcher(settings)

    @property
    def ready(self) -> bool:
        return self._pool is not None

    @property
    def not_ready_reason(self) -> str:
        return self._reason

    async def start(self) -> None:
        self._task = asyncio.ensure_future(self._load_until_ready())
        self._prober = asyncio.ensure_future(_probe_forever(self.settings, self._sweep))

    async def _sweep(self, timeout_s: float) -> None:
        if self._pool is not None:
            await self._pool.sweep(timeout_s)

    async def _load_until_ready(self) -> None:
        delay = 0.5
        while True:
            try:
                code = await self._loader.load(self._key, self.settings.code_sha256)
                pool = FunctionPool(
                    self.settings.function_name,
                    code,
                    default_limits(self.settings),
                    self.settings.pool_size,
                )
                await pool.warm()
                self._pool = pool
                log.info("function %s is ready", self.settings.function_name)
                return
            except CompileError as exc:
                self._reason = f"the code does not compile: {exc.message}"
                log.error("function %s: %s", self.settings.function_name, self._reason)
                return
            except RuntimeFailure as exc:
                self._reason = exc.message
                log.error(
                    "function %s not ready: %s (retrying)", self.settings.function_name, exc.message
                )
            except Exception as exc:
                self._reason = f"unexpected failure while loading: {exc}"
                log.exception("function %s not ready (retrying)", self.settings.function_name)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def invoke(self, key: str | None, request: InvokeRequest) -> Invocation:
        pool = self._pool
        if pool is None:
            raise NotReady(f"The function is not ready: {self._reason}")
        timeout_ms = request.timeout_ms or self.settings.timeout_ms
        name = self.settings.function_name
        _context(request, name, timeout_ms, self._env)
        space = kv.space_of(
            request.function_name or name, request.kv_namespace or self.settings.kv_namespace
        )
        return await pool.invoke(
            request.event_json,
            request.context,
            timeout_ms / 1000,
            self.settings.queue_timeout_ms / 1000,
            request.cpu_limit_ms or self.settings.cpu_limit_ms,
            host_calls(self, request, space, timeout_ms),
        )

    def close(self) -> None:
        for task in (self._task, self._prober):
            if task is not None:
                task.cancel()
        self.fetcher.close()
        if self._pool is not None:
            self._pool.close()

    def heap_bytes(self) -> int:
        return self._pool.heap_bytes() if self._pool else 0

    def outside_bytes(self) -> int:
        return self._pool.outside_bytes() if self._pool else 0

    def isolates(self) -> int:
        return self._pool.isolates if self._pool else 0


class ManyFunctionService:
    single = False

    def __init__(self, settings: RuntimeSettings, loader: CodeLoader) -> None:
        self.settings = settings
        self._loader = loader
        # Many functions, most of them new to this process at some point: keep blank isolates
        # ready, so that a function's first invocation pays only for its own code.
        self.prewarmed = Prewarmer(settings.prewarm_isolates)
        self._registry = FunctionRegistry(
            self._load,
            default_limits(settings),
            settings.pool_size,
            settings.memory_budget_mb * 1024 * 1024,
            self.prewarmed,
        )
        self._expected_sha: dict[str, str | None] = {}
        self.kv = kv_store(settings)
        self.fetcher = fetcher(settings)
        self._prober: asyncio.Task[None] | None = None

    async def _load(self, key: str) -> str:
        return await self._loader.load(key, self._expected_sha.get(key))

    @property
    def ready(self) -> bool:
        return True

    @property
    def not_ready_reason(self) -> str:
        return ""

    async def start(self) -> None:
        await prestart()
        await self.prewarmed.fill()
        metrics.PREWARMED.set_function(lambda: float(self.prewarmed.ready))
        metrics.FUNCTIONS_LOADED.set_function(lambda: float(len(self._registry.pools)))
        self._prober = asyncio.ensure_future(_probe_forever(self.settings, self._registry.sweep))

    async def _pool_for(self, key: str, request: InvokeRequest) -> FunctionPool:
        self._expected_sha[key] = request.sha256  # checked when the code is loaded
        # The function's identity and spec pick the pool, not only its code: two functions
        # deployed with the same code get isolates of their own (globals, env, limits).
        return await self._registry.pool(
            key,
            request.memory_mb,
            function=request.function_name,
            env=request.env,
            timeout_ms=request.timeout_ms,
        )

    async def invoke(self, key: str | None, request: InvokeRequest) -> Invocation:
        if not key:
            raise NotReady("This runtime serves many functions: POST /invoke/{key}")
        pool = await self._pool_for(key, request)
        timeout_ms = request.timeout_ms or self.settings.timeout_ms
        _context(request, key, timeout_ms, {})
        started_isolate = True  # unknown when it fails: assume it did
        try:
            space = kv.space_of(request.function_name or key, request.kv_namespace)
            invocation = await pool.invoke(
                request.event_json,
                request.context,
                timeout_ms / 1000,
                self.settings.queue_timeout_ms / 1000,
                request.cpu_limit_ms or self.settings.cpu_limit_ms,
                host_calls(self, request, space, timeout_ms),
            )
            started_isolate = invocation.cold_start
            return invocation
        finally:
            # Only a new isolate changes the estimate between probes (each probe round holds
            # the budget itself): a warm invocation does not walk every pool.
            if started_isolate:
                self._registry.enforce_budget(protect=pool)

    async def warm(self, key: str, request: InvokeRequest) -> bool:
        """Load `key` and keep one idle isolate ready; True if one had to be started."""
        pool = await self._pool_for(key, request)
        if pool.isolates:
            return False
        await pool.warm()
        self._registry.enforce_budget(protect=pool)
        return True

    def close(self) -> None:
        if self._prober is not None:
            self._prober.cancel()
        self.fetcher.close()
        self.prewarmed.close()
        self._registry.close()

    def heap_bytes(self) -> int:
        return sum(p.heap_bytes() for p in self._registry.pools)

    def outside_bytes(self) -> int:
        return sum(p.outside_bytes() for p in self._registry.pools)

    def isolates(self) -> int:
        return sum(p.isolates for p in self._registry.pools)


def build_service(settings: RuntimeSettings) -> Service:
    """Pick the mode from settings: a code file, a store dir, or S3 (with or without a key)."""
    service: Service
    if settings.code_file is not None:
        service = SingleFunctionService(settings, FileLoader(settings.code_file), "")
    elif settings.store_dir is not None:
        service = ManyFunctionService(settings, StoreLoader(settings.store_dir))
    elif settings.code_key:
        service = SingleFunctionService(settings, S3Loader(get_minio_settings()), settings.code_key)
    elif settings.use_minio or get_minio_settings().configured:
        service = ManyFunctionService(settings, S3Loader(get_minio_settings()))
    else:
        raise SystemExit(
            "vortex_runtime: no code source; give --code-file, --store, or MINIO_* with "
            "VORTEX_CODE_KEY (or VORTEX_USE_MINIO=true for many functions)"
        )
    metrics.bind_gauges(
        lambda: float(service.heap_bytes()),
        lambda: float(service.outside_bytes()),
        lambda: float(service.isolates()),
    )
    return service
