"""One V8 isolate running one function: the only module that imports py_mini_racer.

An `Isolate` is created by `pool.FunctionPool` on the server's event loop. It evaluates the
bootstrap (js/bootstrap.js, js/url.js), installs the function's code as a handler, and then
serves one invocation at a time: `invoke()` starts the handler with one eval and gets the
result back through a one-way notification from JavaScript. A timeout, a memory-limit hit or a
termination marks the isolate `broken`; the pool then closes it (through `watchdog.close`) and
starts a fresh one.

`check(code)` compiles code in a private isolate without running it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from typing import Any

from py_mini_racer import JSEvalException, JSOOMException, JSTimeoutException, MiniRacer

from vortex_runtime.errors import (
    CompileError,
    FunctionError,
    InvocationTimeout,
    MemoryLimitExceeded,
    OutputTooLarge,
    RuntimeFailure,
)

_MB = 1024 * 1024
# how old a heap measurement may be before the budget and metrics measure again
HEAP_STATS_MAX_AGE_S = 1.0
# The Function constructor puts two lines ahead of the body: "(async function anonymous(a,b\n) {\n".
_LINE_OFFSET = 2
_SOURCE_URL = "function.js"
_EXPORT_DEFAULT = re.compile(r"^(\s*)export\s+default\s+", re.MULTILINE)
_EXPORT_DECL = re.compile(
    r"^(\s*)export\s+(?=(?:async\s+function|function|class|const|let|var)\b)", re.MULTILINE
)
_SOURCE_SUFFIX = f"\n//# sourceURL={_SOURCE_URL}"
_RUN_IO = "__vortex_run_io()"
_AWAIT = re.compile(r"\bawait\b")
_LOCATION = re.compile(re.escape(_SOURCE_URL) + r":(\d+)(?::(\d+))?")


@dataclass(frozen=True)
class Limits:
    """Per-function limits; defaults come from settings, overrides from the function spec."""

    timeout_ms: int = 5000
    memory_mb: int = 128
    max_output_bytes: int = 1024 * 1024
    max_log_entries: int = 1000
    max_log_bytes: int = 256 * 1024
    max_timers: int = 1000
    io_bytes: int = 64 * 1024

    def js(self) -> str:
        return json.dumps(
            {
                "ioBytes": self.io_bytes,
                "maxOutputBytes": self.max_output_bytes,
                "maxLogEntries": self.max_log_entries,
                "maxLogBytes": self.max_log_bytes,
                "maxTimers": self.max_timers,
            }
        )


@dataclass
class Outcome:
    """A finished invocation: `output_json` is the result as JSON text."""

    output_json: str
    logs: list[dict[str, Any]]


def _js_asset(name: str) -> str:
    return resources.files("vortex_runtime").joinpath("js", name).read_text(encoding="utf-8")


_BOOTSTRAP = _js_asset("bootstrap.js")
_URL = _js_asset("url.js")


def is_handler_form(code: str) -> bool:
    return _EXPORT_DEFAULT.search(code) is not None


def _handler_source(code: str, run_module: bool = True) -> str:
    """JavaScript that builds the handler from user code without letting it escape its wrapper.

    The body form becomes the body of an async function built by the AsyncFunction
    constructor, which parses it as a function body only. The handler form (`export default`)
    becomes the body of a plain function whose default export is read back; with
    `run_module=False` that function is only built, never called (for `check`).
    """
    if is_handler_form(code):
        body = _EXPORT_DECL.sub(r"\1", _EXPORT_DEFAULT.sub(r"\1__vortex_exports.default = ", code))
        module = f"new Function('__vortex_exports', {json.dumps(body + _SOURCE_SUFFIX)})"
        if not run_module:
            return module
        return f"(function () {{ const e = {{}}; ({module})(e); return e.default; }})()"
    literal = json.dumps(code + _SOURCE_SUFFIX)
    if _AWAIT.search(code) is None:
        # No await anywhere: a plain function, so that a synchronous result comes back with the
        # call that started it. A syntax error here (say, `for await`) falls back to async.
        return (
            f"(function () {{ try {{ return new Function('event', 'context', {literal}); }}"
            f" catch (e) {{ if (!(e instanceof SyntaxError)) throw e; }}"
            f" return new ((async function () {{}}).constructor)('event', 'context', {literal});"
            " })()"
        )
    return f"new ((async function () {{}}).constructor)('event', 'context', {literal})"


def _compile_error(exc: JSEvalException, code: str) -> CompileError:
    """Turn V8's report ("function.js:5: SyntaxError: ...\\n<line>\\n   ^") into line/column."""
    text = str(exc)
    lines = text.split("\n")
    match = _LOCATION.search(lines[0])
    message = lines[0]
    if ": " in message and match:
        message = message.split(": ", 1)[1]
    if not match:
        return CompileError(message.strip() or "The code does not compile")
    line = min(max(1, int(match.group(1)) - _LINE_OFFSET), code.count("\n") + 1)
    column = None
    if len(lines) > 2 and "^" in lines[2]:
        column = lines[2].index("^") + 1
    return CompileError(message.strip(), line=line, column=column)


class Isolate:
    """A warm V8 isolate holding one function's handler. Not thread-safe: one event loop."""

    def __init__(self, mr: MiniRacer, limits: Limits) -> None:
        self._mr = mr
        self.limits = limits
        self.broken: str | None = None  # why it must be recycled, once it must
        self.invocations = 0
        self._wakeup: asyncio.Future[None] | None = None
        self._notification: Any = None
        self._closed = False
        self._io: memoryview | None = None
        self._heap_used = 0
        self._heap_measured_at: float | None = None

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    async def create(cls, code: str, limits: Limits) -> Isolate:
        """Start an isolate, bootstrap it and install the handler (runs a module's top level)."""
        mr = MiniRacer()
        isolate = cls(mr, limits)
        try:
            mr.set_hard_memory_limit(limits.memory_mb * _MB)
            mr.set_soft_memory_limit(limits.memory_mb * _MB * 3 // 4)
            mr.eval(_BOOTSTRAP.replace("__VORTEX_LIMITS__", limits.js()))
            mr.eval(_URL)
            ctx: Any = mr._ctx  # the notification API is internal to mini-racer 0.14
            isolate._notification = ctx._register_js_notification(isolate._on_notify)
            notify_fn = isolate._notification.__enter__()
            ctx.call_function(mr.eval("__vortex_install"), notify_fn)
            # A view straight onto the isolate's I/O buffer; the isolate keeps it alive.
            isolate._io = memoryview(mr.eval("const io = __vortex_io(); delete __vortex_io; io"))  # type: ignore[arg-type]
            source = f"__vortex_set_handler({_handler_source(code)}); 0"
            try:
                await asyncio.wait_for(mr.eval_cancelable(source), limits.timeout_ms / 1000)
            except TimeoutError as exc:
                raise InvocationTimeout(
                    f"The function's top-level code ran past {limits.timeout_ms} ms"
                ) from exc
            except JSOOMException as exc:
                raise MemoryLimitExceeded(
                    "The function's top-level code hit the heap limit"
                ) from exc
            except JSEvalException as exc:
                text = str(exc)
                if "SyntaxError" in text.split("\n", 1)[0]:
                    raise _compile_error(exc, code) from exc
                raise FunctionError(
                    "Error", f"The function failed while loading: {text.strip()}", text
                ) from exc
        except BaseException:
            isolate.broken = "load"
            isolate.close_now()
            raise
        return isolate

    def close_now(self) -> None:
        """Free the isolate. Blocks until V8 lets go; `watchdog.close` bounds that time."""
        if self._closed:
            return
        self._closed = True
        self._io = None
        if self._notification is not None:
            self._notification.__exit__(None, None, None)
            self._notification = None
        self._mr.close()

    def heap_bytes(self, max_age_s: float = HEAP_STATS_MAX_AGE_S) -> int:
        """Used V8 heap, measured at most every `max_age_s`: each measurement is a round trip
        to the isolate's thread, too dear to pay on every invocation of a busy pod."""
        if self._closed:
            return 0
        now = time.monotonic()
        if self._heap_measured_at is None or now - self._heap_measured_at >= max_age_s:
            stats = self._mr.heap_stats()
            self._heap_used = int(stats.get("used_heap_size", 0))
            self._heap_measured_at = now
        return self._heap_used

    # ------------------------------------------------------------------ invocation
    def _on_notify(self, _args: Any) -> None:
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    async def _take(self) -> dict[str, Any]:
        """Collect the finished invocation's report, waiting for JavaScript if needed."""
        loop = asyncio.get_running_loop()
        while True:
            # Arm the wake-up before asking, so a notification cannot slip in between.
            self._wakeup = loop.create_future()
            text = await self._mr.eval_cancelable("__vortex_take()")
            if isinstance(text, str):
                report = json.loads(text)
                if isinstance(report, dict):
                    return report
                raise FunctionError("Error", "The function produced an unreadable result")
            while not self._wakeup.done():
                await asyncio.wait((self._wakeup,), timeout=0.1)
                if not self._wakeup.done() and self._mr.was_hard_memory_limit_reached():
                    raise JSOOMException("JavaScript memory limit reached")

    async def invoke(self, event_json: str, context: dict[str, Any], timeout_s: float) -> Outcome:
        """Run the handler once. Raises a RuntimeFailure carrying the logs on failure."""
        self.invocations += 1
        inv_id = self.invocations
        context_json = json.dumps(context)
        seed = os.urandom(32).hex()
        source = None
        io = self._io
        if io is not None and event_json.isascii():
            payload = f"{inv_id} {seed} {len(context_json)}\n{context_json}{event_json}".encode()
            if len(payload) + 4 <= len(io):
                io[:4] = len(payload).to_bytes(4, "little")
                io[4 : 4 + len(payload)] = payload
                source = _RUN_IO
        if source is None:  # large or non-ASCII: pass the data in the script itself
            source = (
                f"__vortex_run({inv_id},{json.dumps(event_json)},"
                f'{json.dumps(context_json)},"{seed}")'
            )
        try:
            async with asyncio.timeout(timeout_s):
                text = await self._mr.eval_cancelable(source)
                report = json.loads(text) if isinstance(text, str) else await self._take()
                if report.get("id") != inv_id:
                    raise FunctionError("Error", "The function produced a result out of turn")
        except TimeoutError as exc:
            self.broken = "memory" if self._mr.was_hard_memory_limit_reached() else "timeout"
            if self.broken == "memory":
                raise MemoryLimitExceeded(
                    f"The function exceeded its heap limit of {self.limits.memory_mb} MB"
                ) from exc
            raise InvocationTimeout(
                f"The function ran past its timeout of {round(timeout_s * 1000)} ms"
            ) from exc
        except JSOOMException as exc:
            self.broken = "memory"
            raise MemoryLimitExceeded(
                f"The function exceeded its heap limit of {self.limits.memory_mb} MB"
            ) from exc
        except JSTimeoutException as exc:
            self.broken = "timeout"
            raise InvocationTimeout("The function was terminated") from exc
        except JSEvalException as exc:
            self.broken = "terminated"
            raise FunctionError("Error", str(exc).strip()) from exc
        finally:
            self._wakeup = None
        raw_logs = report.get("logs")
        logs: list[dict[str, Any]] = raw_logs if isinstance(raw_logs, list) else []
        if report.get("ok") is True:
            return Outcome(json.dumps(report.get("output")), logs)
        raw_error = report.get("error")
        error: dict[str, Any] = raw_error if isinstance(raw_error, dict) else {}
        failure: RuntimeFailure
        if report.get("kind") == "OutputTooLarge":
            failure = OutputTooLarge(str(error.get("message", "The result is too large")))
        else:
            failure = FunctionError(
                str(error.get("name", "Error")),
                str(error.get("message", "")),
                _fix_stack(str(error.get("stack", ""))),
            )
        failure.logs = logs
        raise failure


def _fix_stack(stack: str) -> str:
    """Map stack locations back to the user's own line numbers."""
    return _LOCATION.sub(
        lambda m: (
            f"{_SOURCE_URL}:{max(1, int(m.group(1)) - _LINE_OFFSET)}"
            + (f":{m.group(2)}" if m.group(2) else "")
        ),
        stack,
    )


# ---------------------------------------------------------------------- check()
class _Checker:
    """A private isolate on its own thread, used only to parse code."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vortex-check")
        self._mr: MiniRacer | None = None

    def _check(self, code: str) -> None:
        if self._mr is None or self._mr.was_hard_memory_limit_reached():
            if self._mr is not None:
                self._mr.close()
            self._mr = MiniRacer()
            self._mr.set_hard_memory_limit(256 * _MB)
        source = f"{_handler_source(code, run_module=False)}; 0"
        try:
            self._mr.eval(source, timeout_sec=5)
        except JSEvalException as exc:
            raise _compile_error(exc, code) from exc

    def check(self, code: str) -> None:
        self._executor.submit(self._check, code).result()


_checker: _Checker | None = None
_checker_lock = threading.Lock()


def check(code: str) -> None:
    """Compile `code` (either form) without running it; raise CompileError if it doesn't."""
    global _checker
    with _checker_lock:
        if _checker is None:
            _checker = _Checker()
    _checker.check(code)


async def prestart() -> None:
    """Initialise V8 and start and close one isolate, so the first function pays neither."""
    isolate = await Isolate.create("return null", Limits())
    isolate.close_now()
