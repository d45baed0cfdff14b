"""JSON log lines for the runtime (one object per line on stderr), set up by __main__.py.

`JsonFormatter` is the one shape of a JSON log line: the API's formatter (vortex_api.logs) adds
its own fields to it, and local mode's supervisor reads the lines its workers write in it.
"""

from __future__ import annotations

import json
import logging
import time


class JsonFormatter(logging.Formatter):
    # Record attributes (set with `extra=`) that become fields of the line when they are set.
    fields: tuple[str, ...] = ("function", "invocation_id")

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in self.fields:
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            # A traceback formatted elsewhere (a line relayed from another process).
            entry["exception"] = record.exc_text
        return json.dumps(entry)


def setup(level: str = "INFO", as_json: bool = True) -> None:
    handler = logging.StreamHandler()
    if as_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
