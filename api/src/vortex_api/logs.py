"""The API's log lines: one format for every line the API process writes on stderr.

`VORTEX_LOG_FORMAT=text` (local mode's default) writes `21:42:37 INFO  api: message`, tagged
`worker-N` for the lines local mode's workers write (relayed by backends/worker_output.py), and
the banner (banner.py) as it is. `json` (the
default with the kubernetes backend) writes one object a line in the runtime's shape
(`vortex_runtime.logs.JsonFormatter`) with the API's fields added. uvicorn's loggers go through
the same handler. `__main__` calls `setup` before it starts uvicorn.
"""

from __future__ import annotations

import logging
import sys
import time

from vortex_api.settings import Settings
from vortex_runtime.logs import JsonFormatter as RuntimeJsonFormatter


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
        tag = f"worker-{worker}" if worker is not None else "api"
        line = f"{self._time(record.created)} {record.levelname:<5} {tag}: {record.getMessage()}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line = f"{line}\n{record.exc_text}"
        return line


class JsonFormatter(RuntimeJsonFormatter):
    """The runtime's JSON line, with the worker that wrote a relayed line and the banner's
    facts."""

    fields = (
        *RuntimeJsonFormatter.fields,
        "worker",
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


def setup(settings: Settings) -> None:
    """Send every logger of the process, uvicorn's too, through one stderr handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(settings))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    # The banner (or the ready line) says where the API listens and `__main__` when it stops,
    # so uvicorn's own announcements would only repeat them; its warnings and errors stay.
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    # One line per runtime request would cost more than the request itself.
    logging.getLogger("httpx").setLevel(logging.WARNING)
