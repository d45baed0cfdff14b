"""The API's log lines: the text and JSON formats, the batching handler, and `setup`."""

from __future__ import annotations

import asyncio
import io
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


def test_text_tags_access_lines_and_worker_lines() -> None:
    formatter = logs.TextFormatter()

    access = formatter.format(_record(logs.ACCESS_LOGGER))
    worker = formatter.format(_record("vortex_runtime.pool", logging.WARNING, worker=1))

    assert access.endswith(" INFO  access: hello there")
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
        logs.ACCESS_LOGGER,
        function="hello",
        invocation_id="ab12",
        status=200,
        duration_ms=1.25,
        banner="not a field",
    )

    entry = json.loads(logs.JsonFormatter().format(record))

    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry.pop("time"))
    assert entry == {
        "level": "info",
        "logger": "vortex_api.access",
        "message": "hello there",
        "function": "hello",
        "invocation_id": "ab12",
        "status": 200,
        "duration_ms": 1.25,
    }


def test_json_keeps_a_relayed_traceback_and_the_worker() -> None:
    record = _record("vortex_runtime.server", logging.ERROR, worker=2, exc_text="Traceback ...")

    entry = json.loads(logs.JsonFormatter().format(record))

    assert (entry["worker"], entry["exception"], entry["level"]) == (2, "Traceback ...", "error")


def _handler(delay_s: float = 0.05) -> tuple[logs.BufferedHandler, io.StringIO]:
    stream = io.StringIO()
    handler = logs.BufferedHandler(stream, delay_s)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    return handler, stream


async def test_lines_wait_for_the_timer_and_go_out_in_one_write() -> None:
    handler, stream = _handler()

    handler.handle(_record())
    handler.handle(_record())
    assert stream.getvalue() == ""
    await asyncio.sleep(0.1)

    assert stream.getvalue() == "INFO hello there\nINFO hello there\n"


async def test_a_warning_goes_out_at_once_after_what_waited() -> None:
    handler, stream = _handler(delay_s=10)

    handler.handle(_record())
    handler.handle(_record(level=logging.WARNING))

    assert stream.getvalue() == "INFO hello there\nWARNING hello there\n"


def test_outside_an_event_loop_lines_go_out_at_once() -> None:
    handler, stream = _handler(delay_s=10)

    handler.handle(_record())

    assert stream.getvalue() == "INFO hello there\n"


async def test_flush_writes_what_waits() -> None:
    handler, stream = _handler(delay_s=10)
    handler.handle(_record())

    handler.flush()  # what logging.shutdown does for every handler at exit

    assert stream.getvalue() == "INFO hello there\n"


def test_a_timer_of_an_ended_loop_does_not_hold_lines_back() -> None:
    handler, stream = _handler(delay_s=0.02)

    async def log_and_leave() -> None:
        handler.handle(_record())

    asyncio.run(log_and_leave())  # the loop ends before its timer fires
    handler.flush()
    stream.truncate(0)

    async def log_and_wait() -> None:
        handler.handle(_record())
        await asyncio.sleep(0.1)

    asyncio.run(log_and_wait())
    assert stream.getvalue().endswith("INFO hello there\n")


async def test_access_entries_wait_with_the_records_and_keep_their_order() -> None:
    handler, stream = _handler(delay_s=10)
    handler.setFormatter(logs.TextFormatter())

    handler.add_access((0.0, "GET", "/execute/f", 200, 0.25, "i1", "f"))
    handler.handle(_record())
    handler.add_access((0.0, "POST", "/execute/f", 504, 1000.0, "i2", "f"))
    assert stream.getvalue() == ""
    handler.flush()

    assert [line[9:] for line in stream.getvalue().splitlines()] == [
        "INFO  access: GET /execute/f 200 0.2 ms invocation=i1 function=f",
        "INFO  api: hello there",
        "INFO  access: POST /execute/f 504 1000.0 ms invocation=i2 function=f",
    ]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    names = ("uvicorn.error", "httpx", logs.ACCESS_LOGGER)
    saved = root.handlers[:], root.level, [logging.getLogger(n).level for n in names]
    sink = logs.access_sink
    yield
    logs.access_sink = sink
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
    assert isinstance(handler, logs.BufferedHandler)
    assert isinstance(handler.formatter, formatter)
    assert logging.getLogger("uvicorn.error").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger(logs.ACCESS_LOGGER).isEnabledFor(logging.INFO)
    assert logs.access_sink == handler.add_access
    assert logging.getLogger("vortex_api.worker").isEnabledFor(logging.INFO)


@pytest.mark.usefixtures("restore_logging")
def test_setup_turns_the_access_lines_off() -> None:
    logs.setup(Settings(access_log=False))

    assert not logging.getLogger(logs.ACCESS_LOGGER).isEnabledFor(logging.INFO)
    assert logs.access_sink is None
    assert logging.getLogger(logs.ACCESS_LOGGER).isEnabledFor(logging.WARNING)
