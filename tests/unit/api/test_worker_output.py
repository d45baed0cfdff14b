"""Local mode relays its workers' output through the API's logging, tagged with the worker."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from vortex_api.backends import worker_output
from vortex_api.backends.supervisor import worker_env


@pytest.fixture
def relayed(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, "vortex_api.worker")
    return caplog


def _line(**entry: object) -> bytes:
    return json.dumps({"time": "2026-01-01T00:00:00.000Z", **entry}).encode() + b"\n"


def test_a_json_line_keeps_its_logger_level_and_fields(relayed: pytest.LogCaptureFixture) -> None:
    worker_output.relay_line(
        _line(
            level="warning",
            logger="vortex_runtime.pool",
            message="evicted",
            function="f",
            invocation_id="i1",
            exception="Traceback ...",
        ),
        3,
    )

    [record] = relayed.records
    assert (record.name, record.levelno, record.getMessage()) == (
        "vortex_runtime.pool",
        logging.WARNING,
        "evicted",
    )
    assert (record.worker, record.function, record.invocation_id) == (3, "f", "i1")  # type: ignore[attr-defined]
    assert record.exc_text == "Traceback ..."


def test_uvicorn_announcements_are_dropped_and_its_warnings_kept(
    relayed: pytest.LogCaptureFixture,
) -> None:
    running = "Uvicorn running on http://127.0.0.1:41234 (Press CTRL+C to quit)"
    worker_output.relay_line(_line(level="info", logger="uvicorn.error", message=running), 0)
    worker_output.relay_line(_line(level="warning", logger="uvicorn.error", message="odd"), 0)

    assert [r.getMessage() for r in relayed.records] == ["odd"]


def test_other_lines_are_relayed_as_warnings(relayed: pytest.LogCaptureFixture) -> None:
    for line in (b"Traceback (most recent call last):\n", b"{not json\n", b"[1, 2]\n", b"  \n"):
        worker_output.relay_line(line, 1)

    assert [(r.levelno, r.getMessage()) for r in relayed.records] == [
        (logging.WARNING, "Traceback (most recent call last):"),
        (logging.WARNING, "{not json"),
        (logging.WARNING, "[1, 2]"),
    ]
    assert all(r.name == "vortex_api.worker" and r.worker == 1 for r in relayed.records)  # type: ignore[attr-defined]


def test_lines_below_the_relay_level_are_not_made(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "vortex_api.worker")

    worker_output.relay_line(_line(level="info", logger="vortex_runtime", message="x"), 0)

    assert caplog.records == []


async def test_relay_reads_to_the_end_and_notes_an_overlong_line(
    relayed: pytest.LogCaptureFixture,
) -> None:
    stream = asyncio.StreamReader(limit=100)
    stream.feed_data(_line(level="info", logger="vortex_runtime", message="one"))
    stream.feed_data(b"x" * 200 + b"\n")
    stream.feed_data(b"last words")
    stream.feed_eof()

    await worker_output.relay(stream, 0)

    messages = [r.getMessage() for r in relayed.records]
    assert messages[0] == "one"
    assert messages[-1] == "last words"
    assert f"(a line over {worker_output.LINE_LIMIT} bytes was left out)" in messages


def test_workers_log_json_for_the_relay() -> None:
    assert worker_env(4)["VORTEX_LOG_FORMAT"] == "json"
