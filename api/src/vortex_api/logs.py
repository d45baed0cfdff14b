"""The API's log lines: one format for every line the API process writes on stderr.

`VORTEX_LOG_FORMAT=text` (local mode's default) writes `21:42:37 INFO  api: message`, tagged
`access` for the access lines (accesslog.py) and `worker-N` for the lines local mode's workers
write (relayed by backends/worker_output.py), and the banner (banner.py) as it is. `json` (the
default with the kubernetes backend) writes one object a line in the runtime's shape
(`vortex_runtime.logs.JsonFormatter`) with the API's fields added. uvicorn's loggers go through
the same handler, which writes lines in batches (`BufferedHandler`), and access lines reach it
as plain entries (`access_sink`). `__main__` calls `setup` before it starts uvicorn.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable
from typing import TextIO

from vortex_api.settings import Settings
from vortex_runtime.logs import JsonFormatter as RuntimeJsonFormatter

ACCESS_LOGGER = "vortex_api.access"
# How long a line may wait to be written with others (BufferedHandler).
FLUSH_DELAY_S = 0.1


# An execution's access line before it is a record: (time.time(), method, path, status,
# duration in ms, invocation id, function). accesslog.py makes them, `AccessRecord` reads them.
AccessEntry = tuple[float, str, str, int, float, str, str]

_ACCESS_MESSAGE = "%s %s %d %.1f ms invocation=%s function=%s"

# What `LogRecord.__init__` would find out (the thread, the process, the caller's file), none of
# which an access line shows, as blanks; formatters read records' `__dict__`, so they are there.
_ACCESS_BLANKS: dict[str, object] = {
    "name": ACCESS_LOGGER,
    "msg": _ACCESS_MESSAGE,
    "levelno": logging.INFO,
    "levelname": "INFO",
    "pathname": "",
    "filename": "",
    "module": "",
    "lineno": 0,
    "funcName": "",
    "exc_info": None,
    "exc_text": None,
    "stack_info": None,
    "thread": None,
    "threadName": None,
    "process": None,
    "processName": None,
    "relativeCreated": 0.0,
}


class AccessRecord(logging.LogRecord):
    """The log record of one access line, made with one dict update and a few assignments, so
    that it serves any handler and formatter."""

    def __init__(self, entry: AccessEntry) -> None:
        self.__dict__.update(_ACCESS_BLANKS)
        created, _, _, status, duration_ms, invocation_id, function = entry
        self.created = created
        self.msecs = int((created - int(created)) * 1000) + 0.0
        self.args = entry[1:]
        self.function = function
        self.invocation_id = invocation_id
        self.status = status
        self.duration_ms = round(duration_ms, 3)


class TextFormatter(logging.Formatter):
    """`HH:MM:SS LEVEL tag: message`, the tag saying which process or part wrote the line."""

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._clock = ""

    def _time(self, created: float) -> str:
        # Many lines fall in the same second: the clock is formatted once per second.
        second = int(created)
        if second != self._second:
            self._second = second
            self._clock = time.strftime("%H:%M:%S", time.localtime(second))
        return self._clock

    def format(self, record: logging.LogRecord) -> str:
        banner: str | None = getattr(record, "banner", None)
        if banner is not None:
            return banner
        worker: int | None = getattr(record, "worker", None)
        if worker is not None:
            tag = f"worker-{worker}"
        elif record.name == ACCESS_LOGGER:
            tag = "access"
        else:
            tag = "api"
        line = f"{self._time(record.created)} {record.levelname:<5} {tag}: {record.getMessage()}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line = f"{line}\n{record.exc_text}"
        return line

    def format_access(self, entry: AccessEntry) -> str:
        """The line of `AccessRecord(entry)`, without making the record."""
        return f"{self._time(entry[0])} INFO  access: {_ACCESS_MESSAGE % entry[1:]}"


class JsonFormatter(RuntimeJsonFormatter):
    """The runtime's JSON line, with the worker that wrote a relayed line, an execution's
    status and duration, and the banner's facts."""

    fields = (
        *RuntimeJsonFormatter.fields,
        "worker",
        "status",
        "duration_ms",
        "url",
        "workers",
        "data_dir",
        "admin_key",
        "invoke_keys",
        "commands",
    )


def formatter(settings: Settings) -> logging.Formatter:
    """The formatter of `VORTEX_LOG_FORMAT`."""
    return JsonFormatter() if settings.log_format == "json" else TextFormatter()


class BufferedHandler(logging.Handler):
    """Writes the lines of many records at once, each record at most `delay_s` after it came.

    A line per write would cost the execute path a system call per execution; here the records
    wait in a list, formatted and written in one call when the event loop's timer fires.
    WARNING and above, and a record outside the event loop's thread, are written at once (with
    what waited before them, in order); `flush` writes the rest, and the logging module flushes
    every handler when the process exits, so no line is lost at shutdown. Access lines come in
    by `add_access`, as entries made into records only when they are written: the execute path
    then pays for a tuple, not for a record and the logging module's calls.
    """

    def __init__(self, stream: TextIO, delay_s: float = FLUSH_DELAY_S) -> None:
        super().__init__()
        self.stream = stream
        self.delay_s = delay_s
        self._pending: list[logging.LogRecord | AccessEntry] = []
        self._timer_loop: asyncio.AbstractEventLoop | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self._pending.append(record)
        if record.levelno >= logging.WARNING:
            self.flush()
        else:
            self._flush_soon()

    def add_access(self, entry: AccessEntry) -> None:
        """Take an access line (from the event loop's thread, as `emit` takes a record)."""
        self.acquire()
        try:
            self._pending.append(entry)
            self._flush_soon()
        finally:
            self.release()

    def _flush_soon(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        # One timer at a time; a timer of a loop that has ended never fires, so a new loop
        # gets one of its own.
        if self._timer_loop is not loop:
            self._timer_loop = loop
            loop.call_later(self.delay_s, self._flush_due)

    def _flush_due(self) -> None:
        self._timer_loop = None
        self.flush()

    def flush(self) -> None:
        self.acquire()
        try:
            pending, self._pending = self._pending, []
            if pending:
                self._write(pending)
        finally:
            self.release()

    def _line(self, item: logging.LogRecord | AccessEntry) -> str:
        if isinstance(item, logging.LogRecord):
            return self.format(item)
        if isinstance(self.formatter, TextFormatter):
            return self.formatter.format_access(item)
        return self.format(AccessRecord(item))

    def _write(self, pending: list[logging.LogRecord | AccessEntry]) -> None:
        lines = []
        for item in pending:
            try:
                lines.append(self._line(item) + "\n")
            except Exception:
                self.handleError(
                    item if isinstance(item, logging.LogRecord) else AccessRecord(item)
                )
        try:
            self.stream.write("".join(lines))
            self.stream.flush()
        except Exception:
            self.handleError(logging.makeLogRecord({"msg": "writing log lines failed"}))


# Where accesslog.py hands access lines when `setup` has made the process's handler (and
# access lines are on); None: through the access logger, if it is enabled.
access_sink: Callable[[AccessEntry], None] | None = None


def setup(settings: Settings) -> None:
    """Send every logger of the process, uvicorn's too, through one stderr handler."""
    handler = BufferedHandler(sys.stderr)
    handler.setFormatter(formatter(settings))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    # The banner (or the ready line) says where the API listens and `__main__` when it stops,
    # so uvicorn's own announcements would only repeat them; its warnings and errors stay.
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    # One line per runtime request would cost more than the request itself.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    access = logging.INFO if settings.access_log else logging.WARNING
    logging.getLogger(ACCESS_LOGGER).setLevel(access)
    global access_sink
    access_sink = handler.add_access if settings.access_log else None
