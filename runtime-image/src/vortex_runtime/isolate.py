"""One V8 isolate running one function: the only module that imports py_mini_racer.

An `Isolate` is created by `pool.FunctionPool` on the server's event loop. It evaluates the
bootstrap (js/bootstrap.js, js/url.js), installs the function's code as a handler, and then
serves one invocation at a time: `invoke()` starts the handler with one eval and gets the
result back through a one-way notification from JavaScript. A timeout, a memory-limit hit or a
termination marks the isolate `broken`; the pool then closes it (through `watchdog.close`) and
starts a fresh one.

`check(code)` compiles code in a private isolate without running it; the API calls it on every
deploy. Both forms of a function (a body, or a module with `export default`) become a function
body in time linear in the code's size, and compile errors name the line and column in the
user's code.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from typing import Any

from py_mini_racer import (
    JSEvalException,
    JSOOMException,
    JSTimeoutException,
    LibAlreadyInitializedError,
    MiniRacer,
    init_mini_racer,
)
from py_mini_racer._mini_racer import _make_context  # a context for a given loop (0.14)

from vortex_runtime import randomness, sched
from vortex_runtime.errors import (
    MAX_ERROR_MESSAGE_BYTES,
    MAX_ERROR_NAME_BYTES,
    MAX_ERROR_STACK_BYTES,
    CompileError,
    CpuLimitExceeded,
    FunctionError,
    HostCallError,
    InvocationTimeout,
    MemoryLimitExceeded,
    OutputTooLarge,
    RuntimeFailure,
)

_MB = 1024 * 1024
log = logging.getLogger("vortex_runtime.isolate")
# What a function's host calls reach (`context.kv`: kv.KVCalls): an operation and its arguments,
# answered with (kind, text) or a HostCallError.
HostCalls = Callable[[str, dict[str, Any]], Awaitable[tuple[str, str]]]
# take() answers with queued host calls, rather than a report, after this mark.
_CALLS_MARK = "\x01"
# V8 is started once per process with these flags: bootstrap.js takes `gc` and
# `getV8Statistics` for its memory accounting and removes them before any function code runs.
_V8_FLAGS = ("--single-threaded", "--expose-gc", "--expose-statistics")
_v8_started = False
# The Function constructor puts two lines ahead of the body: "(async function anonymous(a,b\n) {\n".
_LINE_OFFSET = 2
_SOURCE_URL = "function.js"
_SOURCE_SUFFIX = f"\n//# sourceURL={_SOURCE_URL}"
_AWAIT = re.compile(r"\bawait\b")
_LOCATION = re.compile(re.escape(_SOURCE_URL) + r":(\d+)(?::(\d+))?")


@dataclass(frozen=True)
class Limits:
    """Per-function limits; defaults come from settings, overrides from the function spec.

    Byte limits count what goes on the wire: UTF-8, and for log messages the JSON escapes too.
    A result nested deeper than `max_result_depth` is refused, so that a client's JSON parser
    (Python's stops near 1,000 levels) can always read it.
    """

    timeout_ms: int = 5000
    memory_mb: int = 128
    max_output_bytes: int = 1024 * 1024
    max_log_entries: int = 1000
    max_log_bytes: int = 256 * 1024
    max_timers: int = 1000
    io_bytes: int = 64 * 1024
    max_result_depth: int = 512

    def js(self) -> str:
        return json.dumps(
            {
                "ioBytes": self.io_bytes,
                "maxOutputBytes": self.max_output_bytes,
                "maxLogEntries": self.max_log_entries,
                "maxLogBytes": self.max_log_bytes,
                "maxTimers": self.max_timers,
                "maxResultDepth": self.max_result_depth,
                "maxErrorNameBytes": MAX_ERROR_NAME_BYTES,
                "maxErrorMessageBytes": MAX_ERROR_MESSAGE_BYTES,
                "maxErrorStackBytes": MAX_ERROR_STACK_BYTES,
                "memoryMb": self.memory_mb,
                "memoryBytes": self.memory_mb * _MB,
            }
        )


@dataclass
class Outcome:
    """A finished invocation: `output_json` is the result as JSON text, exactly as it goes on
    the wire (non-ASCII characters as themselves, so its UTF-8 size is what the limit counted).
    """

    output_json: str
    logs: list[dict[str, Any]]
    cpu_time_ms: float | None = None  # on the isolate's thread; None where it is unknown


def _start_v8() -> None:
    """Start V8 with our flags (once per process; it cannot be started twice)."""
    global _v8_started
    if not _v8_started:
        with contextlib.suppress(LibAlreadyInitializedError):  # started earlier, by us
            init_mini_racer(flags=_V8_FLAGS)
        _v8_started = True


def _racer() -> MiniRacer:
    """A new MiniRacer with its own event-loop thread (for the compile checker)."""
    _start_v8()
    return MiniRacer()


# Isolate threads run at the event loop's own priority, with a longer slice than its (sched.py):
# the loop, which serves every function's HTTP, still preempts a busy isolate the moment it
# wakes up, and JavaScript that keeps a CPU busy is demoted below (DEMOTED_NICE). Not lower:
# every answer wakes the loop while the isolate's thread still holds the GIL, and a loop of
# higher priority then preempts it at once, only to wait for the GIL it holds: 6 context
# switches per invocation instead of 2, and 15% more time per warm invocation (measured).
# They inherit it from the loop: 0, unless the worker itself was started under `nice`.
ISOLATE_NICE = 0
# An isolate whose invocation keeps its thread busy (at least DEMOTE_CPU_S of CPU within a window
# of DEMOTE_WINDOW_S; the first window starts DEMOTE_WINDOW_S into the invocation, so only
# invocations longer than two windows are ever measured) drops to DEMOTED_NICE for the rest of its
# life, with the longest slice, so CPU-bound code yields the cores to short invocations of its
# neighbours, which preempt it as soon as they wake up. An unprivileged
# process cannot raise a thread's priority again, so the demotion is for good (until recycled).
DEMOTE_WINDOW_S = 0.01
DEMOTE_CPU_S = 0.006
DEMOTED_NICE = sched.DEMOTED_NICE
# A CPU budget is checked when it could first have run out, and again no sooner than this.
CPU_CHECK_MIN_S = 0.001


def _maker_thread() -> None:
    """Once, on the helper thread: a helper's slice, and off the serving CPU; its priority
    stays the event loop's, which started it (ISOLATE_NICE). The threads V8 starts from it
    inherit all three (an isolate's own thread then gets an isolate's shorter slice), so
    making an isolate yields to serving."""
    sched.set_thread(0, slice_ns=sched.HELPER_SLICE_NS)
    sched.to_spare(0)


# Isolates are made on one helper thread, off the event loop: V8 takes milliseconds to make one,
# which would stall the loop; the threads it starts inherit its priority and CPUs.
_maker = ThreadPoolExecutor(
    max_workers=1, thread_name_prefix="vortex-isolates", initializer=_maker_thread
)
# A noisy function's isolates (pool.py) are made on another, demoted for good: a function that
# keeps breaking its isolates pays for new ones from what the CPU has left, never from the
# prewarmed stock that its neighbours' cold starts draw on.
_noisy_maker = ThreadPoolExecutor(
    max_workers=1,
    thread_name_prefix="vortex-noisy-isolates",
    initializer=lambda: sched.demote(threading.get_native_id()),
)


def _threads() -> set[int]:
    try:
        return {int(t) for t in os.listdir("/proc/self/task")}
    except OSError:  # not Linux: priorities stay as they are
        return set()


def _make_racer(
    loop: asyncio.AbstractEventLoop, slice_ns: int = sched.SHORT_SLICE_NS
) -> tuple[MiniRacer, list[int]]:
    """On a maker thread: a MiniRacer serving `loop`, and the threads V8 started for it (with
    a time slice of `slice_ns`; the maker's nice value and CPUs they inherit).

    mini-racer's own constructor would also install its timer on the calling loop with a
    blocking eval; the bootstrap replaces that timer with its own, so it is not installed."""
    _start_v8()
    before = _threads()
    maker = _make_context(loop)
    context = maker.__enter__()
    started = sorted(_threads() - before - {threading.get_native_id()})
    for tid in started:  # V8 makes the isolate and runs its scripts on these
        sched.set_thread(tid, slice_ns=slice_ns)
    mr = MiniRacer.__new__(MiniRacer)
    mr._own_context_maker = maker  # so that close() frees the context, as its own would
    mr._ctx = context
    return mr, started


def thread_cpu_ns(tid: int) -> int | None:
    """CPU time a thread of this process has used, in nanoseconds (None once it is gone, or
    where the kernel has no per-thread clocks). One clock_gettime of the thread's CPU clock,
    whose id Linux derives from the thread id (`MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED)`):
    about a microsecond, cheap enough for every invocation."""
    try:
        return time.clock_gettime_ns((~tid << 3) | 6)
    except (OSError, AttributeError):
        return None


def thread_cpu_s(tid: int) -> float | None:
    """`thread_cpu_ns` in seconds."""
    ns = thread_cpu_ns(tid)
    return None if ns is None else ns / 1e9


def _busiest(tids: list[int]) -> int | None:
    """Of the threads V8 started for an isolate, the one that ran its scripts so far."""
    used = [(cpu, tid) for tid in tids if (cpu := thread_cpu_s(tid)) is not None]
    return max(used)[1] if used else None


def _js_asset(name: str) -> str:
    return resources.files("vortex_runtime").joinpath("js", name).read_text(encoding="utf-8")


_BOOTSTRAP = _js_asset("bootstrap.js")
_URL = _js_asset("url.js")
# The bootstrap runs with the default limits; install() gives the function's own.
_DEFAULT_LIMITS_JS = Limits().js()
_BOOTSTRAP_SOURCE = _BOOTSTRAP.replace("__VORTEX_LIMITS__", _DEFAULT_LIMITS_JS)


# ---------------------------------------------------------------------- code forms
# All of this runs on code straight from a deploy, in the API process too (`check`), so each
# step is linear in the size of the code: no pattern can retry across lines, and the scanner
# looks at each character a bounded number of times.

# V8 names the script of a compile error after its sourceURL comment only once its scanner has
# got that far; an error found earlier is reported against "undefined".
_COMPILE_LOCATION = re.compile(r"(?:" + re.escape(_SOURCE_URL) + r"|undefined):(\d+): (.*)")
_ANY_LOCATION = re.compile(r"\S+:\d+: ")
# JavaScript's line terminators: lines and columns are counted the way V8 counts them.
_JS_NEWLINE = re.compile(r"\r\n?|[\n\u2028\u2029]")
_LINE_CHAR = r"[^\n\r\u2028\u2029]"
_BOM = "\ufeff"
# The module's exports object: four characters, so that `export` becomes `__vx.d` in place
# and every column of the rewritten module is the user's own.
_EXPORTS = "__vx"
_ASYNC_FUNCTION = "(async function () {}).constructor"

# After these words a `/` starts a regular expression; after any other word it divides.
_BEFORE_EXPRESSION = frozenset(
    {"return", "typeof", "instanceof", "in", "of", "new", "delete", "void", "throw", "case"}
    | {"do", "else", "yield", "await"}
)
# What the scanner steps over whole, or acts on; between two matches there is only code. Every
# branch starts with a literal character and none captures, so that the engine skips plain code
# at full speed; the scanner tells the branches apart by their first characters. A `/` right
# after a name, a number, `)` or `]` divides (unless the name is one of the words above), so the
# pattern passes over it without a stop.
_COMMENT = rf"//{_LINE_CHAR}*+|<!--{_LINE_CHAR}*+|/\*(?:[^*]++|\*(?!/))*+(?:\*/)?"
_STRING = (
    r"'(?:[^'\\\n\r]++|\\(?:\r\n|[\s\S]))*+'?"
    r"|\"(?:[^\"\\\n\r]++|\\(?:\r\n|[\s\S]))*+\"?"
)
# Code between two strings that changes nothing the scanner tracks (no brace, slash, quote,
# backtick, backslash or `export`): strings with only such code and comments between them are
# one token, which ends with a string.
_BETWEEN = r"(?:[^{}/`'\"\\<e]++|<(?!!--)|e(?!xport))*+"
_STRINGS = rf"(?:{_STRING})(?:(?:{_BETWEEN}(?:{_COMMENT}))*+{_BETWEEN}(?:{_STRING}))*+"
_NOT_SLASH = rf"{_COMMENT}|{_STRINGS}|`|export(?<![\w$.\\]export)(?![\w$\\])"
_SLASH = (
    r"|/(?:(?<![\w$)\]]/)" + "".join(f"|(?<={word}/)" for word in sorted(_BEFORE_EXPRESSION)) + ")"
)
# Inside a template's `${...}` braces are tokens too, to find the `}` that closes it.
_BRACES = r"|\{|\}"
# [inside a template][a `/` may start a regex]; where it cannot (see `no_regex_before`), the
# slashes of a line are plain code, not one stop each.
_TOKENS = (
    (re.compile(_NOT_SLASH), re.compile(_NOT_SLASH + _SLASH)),
    (re.compile(_NOT_SLASH + _BRACES), re.compile(_NOT_SLASH + _SLASH + _BRACES)),
)
_TEMPLATE_REST = re.compile(r"(?:[^`\\$]++|\\[\s\S]|\$(?!\{))*+(`|\$\{)?")
_REGEX_REST = re.compile(
    rf"(?:[^/\\\[\n\r\u2028\u2029]++|\\{_LINE_CHAR}"
    rf"|\[(?:[^\]\\\n\r\u2028\u2029]++|\\{_LINE_CHAR})*+\]?)*+(/[\w$]*+)?"
)
_LAST_WORD = re.compile(r"[\w$]{1,11}\Z")
_AFTER_EXPORT = re.compile(
    r"\s*+(?:(default)(?![\w$])"
    r"|(?=(?:async[^\S\n\r\u2028\u2029]++function|function|class|const|let|var)(?![\w$])))"
)
# `export default function name` (or `class name`) declares `name` in the module's scope too.
_NAMED_DECLARATION = re.compile(
    r"\s*+(?:async[^\S\n\r\u2028\u2029]++)?(?:function\s*+\*?\s*+|class\s++)"
    r"(?!extends(?![\w$]))((?:[^\W\d]|\$)[\w$]*+)"
)


@dataclass(frozen=True)
class _Module:
    """Handler-form code rewritten as a function body, character for character in place."""

    body: str
    default_name: str | None  # a declared default export, read once the body has run
    # where a second `export default` starts: left as it is, for V8 to refuse in source order
    duplicate_at: int | None


def _user_code(code: str) -> str:
    # A leading byte-order mark is not part of the code an editor shows: columns on line 1
    # count from after it.
    return code[1:] if code.startswith(_BOM) else code


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _position(code: str, offset: int) -> tuple[int, int]:
    """1-based line and column of `offset`, as V8 counts them (columns in UTF-16 units)."""
    start = 0
    line = 1
    for newline in _JS_NEWLINE.finditer(code, 0, offset):
        start = newline.end()
        line += 1
    return line, _utf16_length(code[start:offset]) + 1


def _regex_may_follow(prev: str) -> bool:
    """Whether a `/` after the code `prev` starts a regular expression rather than dividing."""
    if not prev:
        return True
    last = prev[-1]
    if last.isalnum() or last in "_$":
        return prev in _BEFORE_EXPRESSION
    return prev not in ("++", "--") and last not in ")]'"


def _scan_module(code: str) -> _Module | None:
    """Rewrite a module's `export`s in one pass; None when it has no `export default`.

    A small lexer: it steps over comments, strings, templates and regular expressions, so an
    `export` inside any of them is left alone, and rewrites only an `export` outside every
    brace. Where a `/` is ambiguous it guesses; V8, which compiles the result, has the last
    word. `export {...}` and `export *` stay as they are, for V8 to refuse where they stand.
    """
    last_export = code.rfind("export")
    if last_export < 0:
        return None
    edits: list[tuple[int, str]] = []
    default_at: int | None = None
    default_name: str | None = None
    duplicate_at: int | None = None
    depth = 0  # braces open at the top level, counted in the code between tokens
    stack: list[str] = []  # inside templates: "`" for each `${`, "{" for each brace in one
    # The end of the last significant code ("" at the start): set by each token, and read from
    # the code before a comment or a `/`, the only tokens that need it.
    prev = ""
    no_regex_before = 0  # a `/` before this offset divides: a regex guess there ran off the line
    pos = 0
    stop = last_export + 7  # nothing after the last `export` can change the rewrite
    while pos < stop:
        tokens = _TOKENS[bool(stack)]
        match = None
        if pos < no_regex_before:
            found = tokens[0].search(code, pos, min(no_regex_before, stop))
            # the whole token, which may run on past the line (a comment, say)
            match = tokens[1].match(code, found.start(), stop) if found else None
        if match is None:
            match = tokens[1].search(code, max(pos, no_regex_before), stop)
        if match is None:
            break
        start = match.start()
        kind = code[start]
        if kind in "/<" and start > pos:
            if not stack:
                depth += code.count("{", pos, start) - code.count("}", pos, start)
            tail = code[pos:start].rstrip()
            if tail:
                word = _LAST_WORD.search(tail, max(0, len(tail) - 11))
                prev = word.group() if word else tail[-2:]
        elif not stack and start > pos:
            depth += code.count("{", pos, start) - code.count("}", pos, start)
        pos = match.end()
        if kind in "/<" and pos - start > 1:  # a comment
            continue
        if kind == "/":
            if start >= no_regex_before and _regex_may_follow(prev):
                rest = _REGEX_REST.match(code, pos)
                assert rest is not None  # the pattern matches the empty string
                if rest.group(1) is not None:
                    pos = rest.end()
                    prev = "'"
                    continue
                no_regex_before = rest.end()
            prev = "/"
        elif kind == "{":
            stack.append("{")
            prev = "{"
        elif kind == "}" and stack.pop() == "{":
            prev = "}"
        elif kind in "`}":  # a template starts, or goes on after a `${...}`
            rest = _TEMPLATE_REST.match(code, pos)  # up to its end or its next `${`
            assert rest is not None
            pos = rest.end()
            if rest.group(1) == "${":
                stack.append("`")
                prev = "{"
            else:
                prev = "'"
        elif kind in "'\"":
            prev = "'"
        else:  # export
            prev = "export"
            after = None if stack or depth else _AFTER_EXPORT.match(code, pos)
            if after is None:
                continue
            if after.group(1) is None:  # export const, let, var, function, class
                edits.append((start, " " * 6))
                continue
            if default_at is not None:
                # V8 refuses this `export` (or something before it): the rest cannot matter.
                duplicate_at = start
                break
            default_at = start
            named = _NAMED_DECLARATION.match(code, after.end())
            if named is not None:
                default_name = named.group(1)
                edits.append((start, " " * 6))
                edits.append((after.start(1), " " * 7))
            else:
                edits.append((start, f"{_EXPORTS}.d"))
                edits.append((after.start(1), "=" + " " * 6))
            pos = after.end()
            prev = "="
    if default_at is None:
        return None
    parts: list[str] = []
    last = 0
    for offset, text in edits:
        parts += (code[last:offset], text)
        last = offset + len(text)
    parts.append(code[last:])
    return _Module("".join(parts), default_name, duplicate_at)


def is_handler_form(code: str) -> bool:
    """Whether `code` is a module with a default export, rather than a function body."""
    return _scan_module(_user_code(code)) is not None


def _compiled(params: str, literal: str, may_await: bool) -> str:
    """An expression for the function with this body: plain if it compiles so, else async.

    A plain function hands a synchronous result back with the call that started it.
    """
    if not may_await:
        return f"new Function({params}, {literal})"
    return (
        f"(function () {{ try {{ return new Function({params}, {literal}); }}"
        " catch (e) { if (!(e instanceof SyntaxError)) throw e; }"
        f" return new ({_ASYNC_FUNCTION})({params}, {literal}); }})()"
    )


def _handler_source(code: str, run_module: bool = True) -> str:
    """JavaScript that builds the handler from user code without letting it escape its wrapper.

    The body form becomes the body of a function built by the Function constructor (or the
    AsyncFunction one), which parses it as a function body only. The handler form (`export
    default`) becomes the body of a function too, its `export`s rewritten in place, and its
    default export is read back once the body has run. A module with top-level `await` needs an
    async body: its handler then waits for the body to settle before its first call (it has,
    unless the top level awaits more than promises already resolved). With `run_module=False`
    the function is only built, never called (for `check`).
    """
    code = _user_code(code)
    module = _scan_module(code)
    if module is None:
        literal = json.dumps(code + _SOURCE_SUFFIX)
        if _AWAIT.search(code) is None:
            # No await anywhere: a plain function, so that a synchronous result comes back with
            # the call that started it. A syntax error here (say, `for await`) falls back to
            # async.
            return (
                f"(function () {{ try {{ return new Function('event', 'context', {literal}); }}"
                f" catch (e) {{ if (!(e instanceof SyntaxError)) throw e; }}"
                f" return new ({_ASYNC_FUNCTION})('event', 'context', {literal});"
                " })()"
            )
        return f"new ({_ASYNC_FUNCTION})('event', 'context', {literal})"
    body = module.body
    if module.default_name is not None:
        # After the user's last line, so that no line or column of theirs moves.
        body += f"\n;{_EXPORTS}.d = {module.default_name};"
    literal = json.dumps(body + _SOURCE_SUFFIX)
    params = f"'{_EXPORTS}'"
    may_await = _AWAIT.search(code) is not None
    if not run_module:
        return _compiled(params, literal, may_await)
    if not may_await:
        return (
            f"(function () {{ const e = {{}}; new Function({params}, {literal})(e);"
            " return e.d; })()"
        )
    # The same contract as a plain module: a function for `__vortex_set_handler`. Until the
    # async body settles, a call waits for it; afterwards a failure of the body is every call's.
    return (
        "(function () { const e = {}; let m;"
        f" try {{ m = new Function({params}, {literal}); }}"
        " catch (x) { if (!(x instanceof SyntaxError)) throw x; }"
        " if (m !== undefined) { m(e); return e.d; }"
        " let state = 0, failure;"
        f" const ready = new ({_ASYNC_FUNCTION})({params}, {literal})(e)"
        ".then(() => { state = 1; }, (x) => { state = 2; failure = x; });"
        " const run = (event, context) => { if (state === 2) throw failure; const h = e.d;"
        " if (typeof h !== 'function')"
        " throw new TypeError('The default export must be a function');"
        " return h(event, context); };"
        " return function (event, context) {"
        " return state === 0 ? ready.then(() => run(event, context)) : run(event, context); };"
        " })()"
    )


def _compile_error(exc: JSEvalException, code: str) -> CompileError:
    """Turn V8's report ("function.js:5: SyntaxError: ...\\n<line>\\n   ^") into the line and
    column in the user's code: V8's line less the wrapper's two, and the caret's column."""
    first, *rest = str(exc).split("\n", 3)
    match = _COMPILE_LOCATION.match(first)
    if match is None:
        where = _ANY_LOCATION.match(first)  # anchored: the line may be as long as the code
        message = first[where.end() if where else 0 :].strip()
        if "Maximum call stack size exceeded" in message:
            # V8's parser recurses per nesting level; the location is the wrapper's.
            message = "RangeError: The code is nested too deeply to compile"
        return CompileError(message or "The code does not compile")
    code = _user_code(code)
    lines = _JS_NEWLINE.split(code)
    line = max(1, int(match.group(1)) - _LINE_OFFSET)
    message = match.group(2).strip()
    if line > len(lines):
        # The parser ran on into the wrapper's closing lines: the code ended too soon.
        return CompileError(
            "SyntaxError: Unexpected end of input",
            line=len(lines),
            column=_utf16_length(lines[-1]) + 1,
        )
    column = None
    if len(rest) > 1 and "^" in rest[1]:
        column = rest[1].index("^") + 1
    if message == "SyntaxError: Unexpected token 'export'":
        # One more pass on this error only: is that `export` a second default export?
        module = _scan_module(code)
        duplicate = module.duplicate_at if module else None
        if duplicate is not None and _position(code, duplicate) == (line, column):
            message = "SyntaxError: Duplicate export of 'default'"
    return CompileError(message, line=line, column=column)


class Blank:
    """A started isolate with the bootstrap evaluated and the host's hooks installed (its token,
    the notification, the I/O buffer), not yet any function's: what prewarm.py keeps ready, so
    that a new function pays only for its limits and for compiling its own code."""

    def __init__(self, mr: MiniRacer) -> None:
        self.mr = mr
        self.threads: list[int] = []  # the threads V8 started for it
        self.tid: int | None = None  # of those, the one that runs its scripts
        self.token = os.urandom(16).hex()
        self.notification: Any = None
        self.reply: Any = None  # the bootstrap's reply(), which answers host calls
        self.io: memoryview | None = None
        # the isolate this becomes, which gets the notifications from JavaScript
        self.on_notify: Callable[[Any], None] | None = None

    @classmethod
    async def start(cls, demoted: bool = False) -> Blank:
        # Making the isolate and evaluating the bootstrap take milliseconds; neither blocks
        # the event loop, which keeps serving other functions meanwhile. `demoted`: on the
        # noisy maker, so that the isolate's threads are demoted from their start.
        loop = asyncio.get_running_loop()
        maker, slice_ns = (
            (_noisy_maker, sched.LONG_SLICE_NS) if demoted else (_maker, sched.SHORT_SLICE_NS)
        )
        mr, threads = await loop.run_in_executor(maker, _make_racer, loop, slice_ns)
        blank = cls(mr)
        blank.threads = threads
        try:
            install = await blank.mr.eval_cancelable(_BOOTSTRAP_SOURCE)
            await blank.mr.eval_cancelable(_URL)
            blank.tid = _busiest(threads)
            ctx: Any = blank.mr._ctx  # the notification API is internal to mini-racer 0.14
            blank.notification = ctx._register_js_notification(blank._notify)
            notify_fn = blank.notification.__enter__()
            # A view straight onto the isolate's I/O buffer; the isolate keeps it alive.
            buffer = await ctx.call_function_cancelable(
                install, notify_fn, blank.token, _DEFAULT_LIMITS_JS
            )
            blank.io = memoryview(buffer)
            blank.reply = await blank.mr.eval_cancelable("__vortex_reply")
        except BaseException:
            blank.close_now()
            raise
        return blank

    def _notify(self, args: Any) -> None:
        if self.on_notify is not None:
            self.on_notify(args)

    def close_now(self) -> None:
        # Tearing V8 down is never urgent: its threads yield to the ones serving.
        for tid in self.threads:
            sched.demote(tid)
        self.io = None
        if self.notification is not None:
            self.notification.__exit__(None, None, None)
            self.notification = None
        self.mr.close()


class Isolate:
    """A warm V8 isolate holding one function's handler. Not thread-safe: one event loop.

    The host's scripts call the driver's entry points with a random token of this isolate,
    which function code never sees, so a function can call none of them itself; the `install`
    function that hands over the token and the I/O buffer is held only here.
    """

    # How long to wait for the logs of an invocation the heap limit stopped.
    _SALVAGE_TIMEOUT_S = 0.25

    def __init__(self, blank: Blank, limits: Limits) -> None:
        self._blank = blank
        self._mr = blank.mr
        self.limits = limits
        self.broken: str | None = None  # why it must be recycled, once it must
        self.invocations = 0
        self._wakeup: asyncio.Future[None] | None = None
        self._closed = False
        self._io: memoryview | None = blank.io
        self._io_busy = False  # it holds what a script has yet to take
        # memory at the last probe: V8 heap, and outside it (buffers, WebAssembly memory)
        self.heap_used = 0
        self.outside_used = 0
        self.unanswered = 0  # probes in a row that got no answer
        self.demoted = False  # its thread runs at DEMOTED_NICE
        self._cpu_watch: asyncio.TimerHandle | None = None
        self._cpu_limit: asyncio.TimerHandle | None = None  # the CPU budget's next check
        self._cpu_exceeded = False
        self._host: HostCalls | None = None  # the running invocation's host calls
        self._calls: dict[asyncio.Task[None], bool] = {}  # its calls -> answering yet
        self._probed: tuple[int, float] | None = None  # (invocations, when) at the last probe
        self._token = blank.token
        self._token_js = json.dumps(self._token)
        blank.on_notify = self._on_notify
        # Constant per isolate, so V8 compiles each once.
        self._run_io = f"__vortex_run_io({self._token_js})"
        self._run_io_handle: Any = None  # its source in the isolate, made at the first use
        self._reply_io = f"__vortex_reply_io({self._token_js})"
        self._take_source = f"__vortex_take({self._token_js})"
        self._logs_source = f"__vortex_logs({self._token_js})"
        self._probe_source = f"__vortex_probe({self._token_js})"

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    async def create(
        cls, code: str, limits: Limits, blank: Blank | None = None, demoted: bool = False
    ) -> Isolate:
        """Make an isolate this function's: from a pre-warmed `blank` if given (then only the
        function's own code is compiled here), else from a new one. Installs the limits and the
        handler (runs a module's top level); `demoted` first demotes it."""
        if blank is None:
            blank = await Blank.start(demoted=demoted)
        mr = blank.mr
        isolate = cls(blank, limits)
        if demoted:
            isolate.demote()
        try:
            mr.set_hard_memory_limit(limits.memory_mb * _MB)
            mr.set_soft_memory_limit(limits.memory_mb * _MB * 3 // 4)
            # One script: the function's limits, then its code (which may use them at once).
            source = (
                f"__vortex_limits({isolate._token_js},{json.dumps(limits.js())});"
                f" __vortex_set_handler({_handler_source(code)}); 0"
            )
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
        if not demoted:
            for tid in blank.threads:  # made on the other CPUs; it serves beside the event loop
                sched.to_serving(tid)
        return isolate

    def close_now(self) -> None:
        """Free the isolate. Blocks until V8 lets go; `watchdog.close` bounds that time."""
        if self._closed:
            return
        self._closed = True
        self._io = None
        self._run_io_handle = None  # freed while the isolate still exists
        self._blank.close_now()

    def memory_bytes(self) -> int:
        """Heap and outside memory at the last probe; never a round trip to the isolate."""
        return 0 if self._closed else self.heap_used + self.outside_used

    def needs_probe(self, now: float, every_s: float) -> bool:
        """Whether to probe: it ran since its last probe, its last one got no answer, or that
        was `every_s` ago."""
        if self._probed is None or self.unanswered:
            return True
        invocations, at = self._probed
        return invocations != self.invocations or now - at >= every_s

    async def probe(self, timeout_s: float) -> bool:
        """Ask an idle isolate for its memory; False if it does not answer within `timeout_s`
        (something of an earlier invocation is running in it). Never blocks the event loop:
        the question is queued on the isolate's thread like an invocation, and given up on
        time."""
        self._probed = (self.invocations, time.monotonic())
        try:
            text = await asyncio.wait_for(self._mr.eval_cancelable(self._probe_source), timeout_s)
        except TimeoutError:
            self.unanswered += 1
            return False
        except JSEvalException:
            self.broken = "terminated"
            return True
        self.unanswered = 0
        heap, _, outside = str(text).partition(" ")
        self.heap_used = int(heap) if heap.isdigit() else 0
        self.outside_used = int(outside) if outside.isdigit() else 0
        return True

    # ------------------------------------------------------------------ invocation
    def _on_notify(self, _args: Any) -> None:
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    async def _take(self) -> str:
        """Collect the finished invocation's report, waiting for JavaScript if needed."""
        loop = asyncio.get_running_loop()
        while True:
            # Arm the wake-up before asking, so a notification cannot slip in between.
            self._wakeup = loop.create_future()
            text = await self._mr.eval_cancelable(self._take_source)
            if isinstance(text, str):
                if text.startswith(_CALLS_MARK):
                    self._start_calls(text[1:])
                    continue
                return text
            if text is not None:
                raise FunctionError("Error", "The function produced an unreadable result")
            while not self._wakeup.done():
                await asyncio.wait((self._wakeup,), timeout=0.1)
                if not self._wakeup.done() and self._mr.was_hard_memory_limit_reached():
                    raise JSOOMException("JavaScript memory limit reached")

    async def invoke(
        self,
        event_json: str,
        context: dict[str, Any],
        timeout_s: float,
        cpu_limit_ms: int | None = None,
        host: HostCalls | None = None,
    ) -> Outcome:
        """Run the handler once. Raises a RuntimeFailure carrying the logs on failure.

        `host` answers the function's host calls (`context.kv`); without it they reject. Calls
        still open when the invocation ends are cancelled, and their answers never delivered.

        The CPU time the isolate's thread used meanwhile (time waiting on timers or the host
        is not counted: the thread sleeps) is the outcome's or the failure's `cpu_time_ms`;
        past `cpu_limit_ms` of it the invocation stops with CpuLimitExceeded."""
        tid = self._blank.tid
        cpu_start = None if tid is None else thread_cpu_ns(tid)
        self._host = host
        try:
            outcome = await self._invoke(event_json, context, timeout_s, cpu_limit_ms, cpu_start)
        except RuntimeFailure as failure:
            failure.cpu_time_ms = self._cpu_ms_since(cpu_start)
            raise
        finally:
            self._host = None
            if self._calls:  # calls left open; an answer already on its way the isolate drops
                for task, answering in list(self._calls.items()):
                    if not answering:
                        task.cancel()
        outcome.cpu_time_ms = self._cpu_ms_since(cpu_start)
        return outcome

    def _start_calls(self, text: str) -> None:
        """Start the host calls the function queued: `[[id, op, args], ...]`."""
        try:
            calls = json.loads(text)
        except ValueError:
            return
        for item in calls if isinstance(calls, list) else []:
            if isinstance(item, list) and len(item) == 3 and isinstance(item[0], int):
                task = asyncio.ensure_future(self._host_call(self._host, *item))
                self._calls[task] = False
                task.add_done_callback(self._calls.pop)

    async def _host_call(self, host: HostCalls | None, call_id: int, op: Any, args: Any) -> None:
        ok, kind, text = False, "Error", "Host calls are not available in this runtime"
        if host is not None:
            try:
                kind, text = await host(str(op), args if isinstance(args, dict) else {})
                ok = True
            except HostCallError as exc:
                kind, text = exc.name, exc.message
            except Exception:
                log.exception("a host call (%s) failed unexpectedly", op)
                kind, text = "Error", "The runtime failed to answer this call; see its log"
        task = asyncio.current_task()
        if task in self._calls:
            self._calls[task] = True
        if self._closed or self.broken:
            return
        with contextlib.suppress(JSEvalException):
            if self._reply_in_buffer(call_id, ok, kind, text):
                try:
                    await self._mr.eval_cancelable(self._reply_io)
                finally:
                    self._io_busy = False
                return
            # Too long for the buffer, not latin-1, or the buffer is taken: the answer goes
            # as the arguments of a call (a round trip to the isolate's thread for each).
            ctx: Any = self._mr._ctx
            await ctx.call_function_cancelable(
                self._blank.reply, self._token, call_id, ok, kind, text
            )

    def _reply_in_buffer(self, call_id: int, ok: bool, kind: str, text: str) -> bool:
        """Write a host call's answer to the I/O buffer if it is free and the answer fits:
        then one script takes it (`__vortex_reply_io`), the answer's one trip to the isolate."""
        io = self._io
        if io is None or self._io_busy:
            return False
        try:
            payload = f"{call_id} {int(ok)} {kind}\n{text}".encode("latin-1")
        except UnicodeEncodeError:
            return False
        if len(payload) + 4 > len(io):
            return False
        io[:4] = len(payload).to_bytes(4, "little")
        io[4 : 4 + len(payload)] = payload
        self._io_busy = True
        return True

    def _cpu_ms_since(self, start: int | None) -> float | None:
        tid = self._blank.tid
        end = None if tid is None or start is None else thread_cpu_ns(tid)
        return None if end is None or start is None else (end - start) / 1e6

    def _check_cpu(self, start: int, limit_ns: int, deadline: asyncio.Timeout) -> None:
        """Runs while an invocation with a CPU limit lasts: stop it once its thread has used
        `limit_ns` since `start`. The thread cannot use more CPU than the time that passes,
        so the next check is due no sooner than the budget left."""
        tid = self._blank.tid
        now = None if tid is None else thread_cpu_ns(tid)
        if now is None:
            return
        left = limit_ns - (now - start)
        loop = asyncio.get_running_loop()
        if left <= 0:
            self._cpu_limit = None
            self._cpu_exceeded = True
            deadline.reschedule(loop.time())  # ends the invocation as a timeout would
            return
        self._cpu_limit = loop.call_later(
            max(left / 1e9, CPU_CHECK_MIN_S), self._check_cpu, start, limit_ns, deadline
        )

    async def _invoke(
        self,
        event_json: str,
        context: dict[str, Any],
        timeout_s: float,
        cpu_limit_ms: int | None,
        cpu_start: int | None,
    ) -> Outcome:
        """`invoke`, within its timeout and CPU limit."""
        self.invocations += 1
        inv_id = self.invocations
        context_json = json.dumps(context)
        seed = randomness.token_hex(32)
        source = None
        io = self._io
        if io is not None and not self._io_busy and event_json.isascii():
            payload = f"{inv_id} {seed} {len(context_json)}\n{context_json}{event_json}".encode()
            if len(payload) + 4 <= len(io):
                io[:4] = len(payload).to_bytes(4, "little")
                io[4 : 4 + len(payload)] = payload
                source = self._run_io
                self._io_busy = True  # until the script that takes it returns
        if source is None:  # large or non-ASCII: pass the data in the script itself
            source = (
                f"__vortex_run({self._token_js},{inv_id},{json.dumps(event_json)},"
                f'{json.dumps(context_json)},"{seed}")'
            )
        if not self.demoted and self._blank.tid is not None:
            # No reading yet (it costs a file read): the first window starts at the first tick.
            self._cpu_watch = asyncio.get_running_loop().call_later(
                DEMOTE_WINDOW_S, self._watch_cpu, None
            )
        self._cpu_exceeded = False
        try:
            async with asyncio.timeout(timeout_s) as deadline:
                if cpu_limit_ms and cpu_start is not None:
                    self._cpu_limit = asyncio.get_running_loop().call_later(
                        cpu_limit_ms / 1000,
                        self._check_cpu,
                        cpu_start,
                        cpu_limit_ms * 1_000_000,
                        deadline,
                    )
                try:
                    if source is self._run_io:
                        text = await self._eval_run_io()
                    else:
                        text = await self._mr.eval_cancelable(source)
                finally:
                    if source is self._run_io:
                        self._io_busy = False
                if not isinstance(text, str):
                    text = await self._take()
        except TimeoutError as exc:
            if self._mr.was_hard_memory_limit_reached():
                raise await self._memory_failure() from exc
            if self._cpu_exceeded:
                self.broken = "cpu"
                raise CpuLimitExceeded(
                    f"The function used more than its CPU time limit of {cpu_limit_ms} ms"
                ) from exc
            self.broken = "timeout"
            raise InvocationTimeout(
                f"The function ran past its timeout of {round(timeout_s * 1000)} ms"
            ) from exc
        except JSOOMException as exc:
            raise await self._memory_failure() from exc
        except JSTimeoutException as exc:
            self.broken = "timeout"
            raise InvocationTimeout("The function was terminated") from exc
        except JSEvalException as exc:
            self.broken = "terminated"
            raise FunctionError("Error", str(exc).strip()) from exc
        finally:
            self._wakeup = None
            for watch in (self._cpu_watch, self._cpu_limit):
                if watch is not None:
                    watch.cancel()
            self._cpu_watch = self._cpu_limit = None
        return self._outcome(text, inv_id)

    async def _eval_run_io(self) -> Any:
        """Evaluate `_run_io`, whose source V8 is handed once per isolate and then by its handle
        (mini-racer's eval copies a script's text into the isolate and frees it again on every
        call: a round trip to the isolate's thread each way)."""
        ctx: Any = self._mr._ctx
        if self._run_io_handle is None:
            self._run_io_handle = ctx._python_to_value_handle(self._run_io)
        return await ctx._run_cancelable_mr_task(ctx._dll.mr_eval, self._run_io_handle.raw)

    def demote(self) -> None:
        """Run this isolate's threads at DEMOTED_NICE from now on (for good)."""
        self.demoted = True
        for tid in self._blank.threads:
            sched.demote(tid)

    def _watch_cpu(self, started: float | None) -> None:
        """Runs every DEMOTE_WINDOW_S while an invocation lasts: demote the isolate's thread if
        it used DEMOTE_CPU_S since the last tick's reading `started`."""
        tid = self._blank.tid
        now = None if tid is None else thread_cpu_s(tid)
        if tid is None or now is None:
            return
        if started is not None and now - started >= DEMOTE_CPU_S:
            self._cpu_watch = None
            self.demote()
            return
        self._cpu_watch = asyncio.get_running_loop().call_later(
            DEMOTE_WINDOW_S, self._watch_cpu, now
        )

    def _outcome(self, text: str, inv_id: int) -> Outcome:
        """Read a report: a line of JSON, then for a success the output's JSON text, which is
        passed on as it is (never parsed here, so no depth or size of it can trip Python)."""
        head, newline, output = text.partition("\n")
        try:
            report = json.loads(head)
        except ValueError:
            report = None
        if not isinstance(report, dict) or (report.get("ok") is True and not newline):
            raise FunctionError("Error", "The function produced an unreadable result")
        if report.get("id") != inv_id:
            raise FunctionError("Error", "The function produced a result out of turn")
        raw_logs = report.get("logs")
        logs: list[dict[str, Any]] = raw_logs if isinstance(raw_logs, list) else []
        failure: RuntimeFailure
        if report.get("ok") is True:
            limit = self.limits.max_output_bytes
            # bootstrap.js has counted the bytes already; this only guards that count.
            size = len(output.encode()) if len(output) * 3 > limit else 0
            if size <= limit:
                return Outcome(output, logs)
            failure = OutputTooLarge(
                f"The result is {size} bytes of JSON, over the limit of {limit} bytes"
            )
        elif report.get("kind") == "MemoryLimitExceeded":
            if report.get("reusable") is True:  # nothing of it stays: the isolate serves on,
                self.demote()  # at the lowest priority, as a noisy function's isolates do
            else:
                self.broken = "memory"
            failure = MemoryLimitExceeded(
                f"The function exceeded its memory limit of {self.limits.memory_mb} MB"
                " (heap, buffers and WebAssembly memory)"
            )
        elif report.get("kind") == "OutputTooLarge":
            raw_error = report.get("error")
            message = raw_error.get("message") if isinstance(raw_error, dict) else None
            failure = OutputTooLarge(str(message or "The result is too large"))
        else:
            raw_error = report.get("error")
            error: dict[str, Any] = raw_error if isinstance(raw_error, dict) else {}
            failure = FunctionError(
                str(error.get("name", "Error")),
                str(error.get("message", "")),
                _fix_stack(str(error.get("stack", ""))),
            )
        failure.logs = logs
        raise failure

    async def _memory_failure(self) -> MemoryLimitExceeded:
        """The failure of an invocation that hit the heap limit, with the logs it wrote first.

        V8 stops the script at the limit, but the isolate still answers a small script until
        it is closed, so the logs are read back from it; if even that fails, they are lost.
        (A V8 collection would hit the limit again: none is asked for before reading.)
        """
        self.broken = "memory"
        failure = MemoryLimitExceeded(
            f"The function exceeded its heap limit of {self.limits.memory_mb} MB"
        )
        try:
            text = await asyncio.wait_for(
                self._mr.eval_cancelable(self._logs_source), self._SALVAGE_TIMEOUT_S
            )
            logs = json.loads(text) if isinstance(text, str) else []
        except (TimeoutError, JSEvalException, ValueError):
            logs = []
        if isinstance(logs, list):
            failure.logs = [entry for entry in logs if isinstance(entry, dict)]
        return failure


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
            self._mr = _racer()
            self._mr.set_hard_memory_limit(256 * _MB)
        source = f"{_handler_source(code, run_module=False)}; 0"
        try:
            self._mr.eval(source, timeout_sec=5)
        except JSEvalException as exc:
            raise _compile_error(exc, code) from exc

    def check(self, code: str) -> None:
        self._executor.submit(self._check, code).result()

    def close(self) -> None:
        """Free the isolate (at exit: left to the garbage collector, its close would join
        mini-racer's event-loop thread after the interpreter stopped it, and hang forever)."""
        mr, self._mr = self._mr, None
        if mr is not None:
            mr.close()


_checker: _Checker | None = None
_checker_lock = threading.Lock()


def check(code: str) -> None:
    """Compile `code` (either form) without running it; raise CompileError if it doesn't."""
    global _checker
    with _checker_lock:
        if _checker is None:
            _checker = _Checker()
            atexit.register(_checker.close)
    _checker.check(code)


async def prestart() -> None:
    """Initialise V8 and start and close one isolate, so the first function pays neither."""
    isolate = await Isolate.create("return null", Limits())
    isolate.close_now()
