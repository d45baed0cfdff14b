"""One access line per execution, with its invocation id, function, status and duration."""

from __future__ import annotations

import io
import itertools
import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.unit.api.conftest import FakeRuntime
from vortex_api import accesslog, logs
from vortex_api.invoker import Invocation


@pytest.fixture
def access(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logs.ACCESS_LOGGER)
    return caplog


def _access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == logs.ACCESS_LOGGER]


async def test_an_execution_logs_one_line_with_its_invocation_id(
    client: httpx.AsyncClient, deploy: Callable[..., Any], access: pytest.LogCaptureFixture
) -> None:
    fn = await deploy(name="hello")

    response = await client.post("/execute/hello")

    [record] = _access_records(access)
    invocation_id = response.headers["x-vortex-invocation-id"]
    line = logs.TextFormatter().format(record)
    assert re.fullmatch(
        rf"\d\d:\d\d:\d\d INFO  access: POST /execute/hello 200 \d+\.\d ms"
        rf" invocation={invocation_id} function={fn.function_id}",
        line,
    ), line
    entry = json.loads(logs.JsonFormatter().format(record))
    assert entry["function"] == "hello"
    assert entry["invocation_id"] == invocation_id
    assert entry["status"] == 200
    assert isinstance(entry["duration_ms"], float)
    assert entry["duration_ms"] >= 0


async def test_the_line_has_the_runtime_status_of_a_failed_function(
    client: httpx.AsyncClient,
    runtime: FakeRuntime,
    deploy: Callable[..., Any],
    access: pytest.LogCaptureFixture,
) -> None:
    await deploy(name="thrower")
    error = {"error": {"type": "FunctionError", "message": "boom"}, "logs": []}
    runtime.handler = lambda request: httpx.Response(500, json=error)

    response = await client.get("/execute/thrower?x=1")

    [record] = _access_records(access)
    assert response.status_code == 500
    assert record.getMessage().startswith("GET /execute/thrower 500 ")
    assert record.status == 500


async def test_an_api_error_of_the_backend_is_logged_with_its_status(
    client: httpx.AsyncClient,
    runtime: FakeRuntime,
    deploy: Callable[..., Any],
    access: pytest.LogCaptureFixture,
) -> None:
    await deploy(name="away")

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    runtime.handler = refuse

    response = await client.post("/execute/away")

    [record] = _access_records(access)
    assert response.status_code == 502
    assert record.status == 502
    assert record.invocation_id == response.headers["x-vortex-invocation-id"]


@pytest.mark.parametrize("fails", [False, True], ids=["answered", "api-error"])
async def test_the_line_has_the_duration_the_metrics_observed(
    client: httpx.AsyncClient,
    app: FastAPI,
    runtime: FakeRuntime,
    deploy: Callable[..., Any],
    access: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    fails: bool,
) -> None:
    await deploy(name="timed")
    if fails:

        def refuse(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("refused", request=request)

        runtime.handler = refuse
    # A clock a quarter second further on at every reading: a second reading differs.
    ticks = itertools.count(1)
    monkeypatch.setattr(time, "perf_counter", lambda: next(ticks) / 4)

    await client.post("/execute/timed")

    monkeypatch.undo()
    [record] = _access_records(access)
    observed = app.state.gateway.metrics.registry.get_sample_value(
        "vortex_execution_duration_seconds_sum", {"function": "timed"}
    )
    assert observed is not None
    assert observed > 0
    assert record.duration_ms == round(observed * 1000, 3)


def test_record_logs_the_elapsed_time_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    entries: list[logs.AccessEntry] = []
    monkeypatch.setattr(logs, "access_sink", entries.append)
    invocation = Invocation(b"", "POST", "/execute/f", "", "ab12", [])

    accesslog.record(invocation, "f", 200, 0.0125)

    [entry] = entries
    assert entry[1:] == ("POST", "/execute/f", 200, 12.5, "ab12", "f")


async def test_no_line_while_the_access_logger_is_off(
    client: httpx.AsyncClient, deploy: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logs.ACCESS_LOGGER)
    await deploy(name="quiet")

    assert (await client.post("/execute/quiet")).status_code == 200

    assert _access_records(caplog) == []


def test_the_record_serves_any_formatter() -> None:
    record = logs.AccessRecord((0.5, "POST", "/execute/f", 201, 1.23456, "ab12", "f"))

    full = logging.Formatter(
        "%(asctime)s %(name)s %(levelname)s %(module)s %(lineno)d %(process)s %(message)s"
    ).format(record)

    assert full.endswith(
        " vortex_api.access INFO  0 None POST /execute/f 201 1.2 ms invocation=ab12 function=f"
    )
    assert (record.levelno, record.duration_ms, record.msecs) == (logging.INFO, 1.235, 500.0)


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch) -> logs.BufferedHandler:
    """The handler `python -m vortex_api` sets up, as the access lines' sink."""
    handler = logs.BufferedHandler(io.StringIO(), delay_s=10)
    handler.setFormatter(logs.TextFormatter())
    monkeypatch.setattr(logs, "access_sink", handler.add_access)
    return handler


async def test_under_the_api_process_lines_go_to_its_handler_in_order(
    client: httpx.AsyncClient, deploy: Callable[..., Any], handler: logs.BufferedHandler
) -> None:
    await deploy(name="hello")

    first = await client.post("/execute/hello")
    warning = {"name": "vortex_api", "levelno": logging.WARNING, "levelname": "WARNING"}
    # written at once, after the line that waited
    handler.handle(logging.makeLogRecord({**warning, "msg": "between"}))
    stream = handler.stream
    assert isinstance(stream, io.StringIO)
    written = stream.getvalue()
    second = await client.post("/execute/hello")
    handler.flush()

    lines = stream.getvalue().splitlines()
    assert len(lines) == 3, lines
    assert f"invocation={first.headers['x-vortex-invocation-id']} " in lines[0]
    assert lines[1].endswith(" WARNING api: between")
    assert f"invocation={second.headers['x-vortex-invocation-id']} " in lines[2]
    assert written == "\n".join(lines[:2]) + "\n"
