"""The API's log lines: the text and JSON formats, and `setup`."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from vortex_api import logs
from vortex_api.settings import Settings


def _record(name: str = "vortex_api", level: int = logging.INFO, **extra: Any) -> logging.LogRecord:
    record = logging.LogRecord(name, level, __file__, 1, "hello %s", ("there",), None)
    record.__dict__.update(extra)
    return record


def test_text_line_is_clock_level_tag_and_message() -> None:
    line = logs.TextFormatter().format(_record())

    assert re.fullmatch(r"\d\d:\d\d:\d\d INFO  api: hello there", line), line


def test_text_tags_worker_lines() -> None:
    worker = logs.TextFormatter().format(_record("vortex_runtime.pool", logging.WARNING, worker=1))

    assert worker.endswith(" WARNING worker-1: hello there")


def test_text_shows_a_traceback_under_its_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = _record(level=logging.ERROR, exc_info=sys.exc_info())

    first, *rest = logs.TextFormatter().format(record).splitlines()

    assert first.endswith("ERROR api: hello there")
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "ValueError: boom"


def test_text_shows_a_relayed_traceback() -> None:
    record = _record(worker=0, exc_text="Traceback (most recent call last):\nKeyError: 'x'")

    assert logs.TextFormatter().format(record).splitlines()[1:] == [
        "Traceback (most recent call last):",
        "KeyError: 'x'",
    ]


def test_text_writes_a_banner_as_it_is() -> None:
    assert logs.TextFormatter().format(_record(banner="\nready\n")) == "\nready\n"


def test_json_line_has_the_runtime_shape_and_the_api_fields() -> None:
    record = _record(
        "vortex_runtime.pool",
        function="hello",
        invocation_id="ab12",
        worker=0,
        workers=2,
        banner="not a field",
    )

    entry = json.loads(logs.JsonFormatter().format(record))

    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry.pop("time"))
    assert entry == {
        "level": "info",
        "logger": "vortex_runtime.pool",
        "message": "hello there",
        "function": "hello",
        "invocation_id": "ab12",
        "worker": 0,
        "workers": 2,
    }


def test_json_keeps_a_relayed_traceback_and_the_worker() -> None:
    record = _record("vortex_runtime.server", logging.ERROR, worker=2, exc_text="Traceback ...")

    entry = json.loads(logs.JsonFormatter().format(record))

    assert (entry["worker"], entry["exception"], entry["level"]) == (2, "Traceback ...", "error")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    names = ("uvicorn.error", "httpx")
    saved = root.handlers[:], root.level, [logging.getLogger(n).level for n in names]
    yield
    root.handlers[:], root.level = saved[0], saved[1]
    for name, level in zip(names, saved[2], strict=True):
        logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize(
    ("log_format", "formatter"), [("text", logs.TextFormatter), ("json", logs.JsonFormatter)]
)
def test_setup_sends_every_logger_through_one_handler(
    log_format: str, formatter: type[logging.Formatter]
) -> None:
    logs.setup(Settings(log_format=log_format))  # type: ignore[arg-type]

    [handler] = logging.getLogger().handlers
    assert isinstance(handler, logging.StreamHandler)
    assert isinstance(handler.formatter, formatter)
    assert logging.getLogger("uvicorn.error").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("vortex_api.worker").isEnabledFor(logging.INFO)
