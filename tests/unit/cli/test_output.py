"""Output for people and for scripts: tables, fields, logs and the one-line error."""

from __future__ import annotations

import io
import json

from tests.unit.cli.conftest import function_info
from vortex_cli.errors import ApiError, ApiUnreachable
from vortex_cli.output import (
    FUNCTION_COLUMNS,
    Output,
    function_fields,
    function_row,
    log_line,
)


def streams(format: str = "text") -> tuple[Output, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    return Output(format, out, err), out, err  # type: ignore[arg-type]


def test_a_function_row() -> None:
    row = function_row(function_info("greet", isolation="warm", timeout_ms=1000))

    assert dict(zip(FUNCTION_COLUMNS, row, strict=True)) == {
        "NAME": "greet",
        "STATUS": "Ready",
        "ISOLATION": "warm",
        "TIMEOUT": "1000 ms",
        "MEMORY": "128 MB",
        "CODE": "ab" * 6,
        "CREATED": "2026-01-02T03:04:05+00:00",
    }


def test_function_fields_show_env_settings_and_conditions() -> None:
    info = function_info(env={"B": "2", "A": "1"}, concurrency=8)
    info["status"]["conditions"] = [{"type": "Ready", "reason": "Pooled", "message": "ok"}]

    fields = dict(function_fields(info))

    assert fields["env A"] == "1"
    assert fields["env B"] == "2"
    assert fields["concurrency"] == "8"
    assert "replicas" not in fields
    assert fields["condition Ready"] == "Pooled ok"
    assert fields["code sha256"] == "ab" * 32


def test_a_table_off_a_terminal_keeps_whole_lines_and_brackets() -> None:
    output, out, _ = streams()
    long_name = "f" * 150

    output.table(("NAME", "NOTE"), [[long_name, "[bold]x[/bold]"]])

    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["NAME", "NOTE"]
    assert lines[1].split() == [long_name, "[bold]x[/bold]"]
    assert "\x1b" not in out.getvalue()
    assert all(line == line.rstrip() for line in lines)


def test_log_lines() -> None:
    entry = {"timestamp": "2026-01-01T00:00:00.000Z", "level": "warn", "message": "careful"}

    assert log_line(entry) == "2026-01-01T00:00:00.000Z warn careful"


def test_an_error_in_text_shows_the_logs_then_one_line_on_stderr() -> None:
    output, out, err = streams()
    logs = [{"timestamp": "t", "level": "log", "message": "before"}]

    output.error(ApiError(500, "FunctionError", "boom", logs=logs, name="Error"))

    assert out.getvalue() == ""
    assert err.getvalue() == "t log before\nError: FunctionError: Error: boom\n"


def test_an_error_in_json_is_also_a_document_on_stdout() -> None:
    output, out, err = streams("json")

    output.error(ApiUnreachable("http://h:1", "refused"))

    assert json.loads(out.getvalue()) == {
        "error": {
            "type": "ApiUnreachable",
            "message": "cannot reach the Vortex API at http://h:1: refused",
        }
    }
    assert (
        err.getvalue()
        == "Error: ApiUnreachable: cannot reach the Vortex API at http://h:1: refused\n"
    )


def test_function_fields_of_an_autoscaled_function() -> None:
    info = function_info(
        isolation="warm",
        concurrency=8,
        replicas=6,
        scale={"min_replicas": 1, "max_replicas": 10, "target_concurrency": 5.0},
    )
    info["status"].update(ready_replicas=4, desired_replicas=6, observed_concurrency=27.5)

    fields = dict(function_fields(info))

    assert fields["replicas"] == "6"
    assert fields["ready replicas"] == "4"
    assert fields["desired replicas"] == "6"
    assert fields["in flight"] == "27.5"
    assert fields["autoscale"] == "1 to 10 pods, target 5 in flight per pod"
