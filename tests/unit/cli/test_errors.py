"""The error tree: which API answer is which error, its exit code, its line and its JSON."""

from __future__ import annotations

import pytest

from vortex_cli.errors import (
    EXIT_AUTH,
    EXIT_ERROR,
    EXIT_UNREACHABLE,
    ApiError,
    ApiUnreachable,
    AuthError,
    api_error,
)


@pytest.mark.parametrize("status", [401, 403])
def test_refused_keys_are_auth_errors(status: int) -> None:
    error = api_error(status, {"error": {"type": "Unauthorized", "message": "unknown API key"}}, "")

    assert isinstance(error, AuthError)
    assert error.exit_code == EXIT_AUTH
    assert error.line() == "Unauthorized: unknown API key"


@pytest.mark.parametrize("status", [400, 404, 409, 413, 500, 502, 503, 504])
def test_other_answers_are_errors_about_the_function(status: int) -> None:
    error = api_error(status, {"error": {"type": "FunctionNotFound", "message": "no"}}, "")

    assert type(error) is ApiError
    assert error.exit_code == EXIT_ERROR
    assert error.status == status


def test_a_thrown_error_names_its_javascript_name() -> None:
    body = {
        "error": {"type": "FunctionError", "message": "boom", "name": "TypeError", "stack": "s"},
        "logs": [{"timestamp": "t", "level": "log", "message": "before"}],
        "execution_time_ms": 1.5,
    }
    error = api_error(500, body, "Internal Server Error")

    assert error.line() == "FunctionError: TypeError: boom"
    assert error.logs == body["logs"]
    assert error.document() == {
        "error": {"type": "FunctionError", "message": "boom", "name": "TypeError", "stack": "s"},
        "logs": body["logs"],
    }


def test_extra_fields_are_kept() -> None:
    body = {"error": {"type": "CompileError", "message": "m", "line": 3, "column": 7}}
    error = api_error(400, body, "")

    assert error.extra == {"line": 3, "column": 7}
    assert error.line() == "CompileError: m"


@pytest.mark.parametrize("body", [None, [1], {"detail": "x"}, {"error": "text"}])
def test_a_body_that_is_not_the_api_error_shape(body: object) -> None:
    error = api_error(502, body, "Bad Gateway")

    assert (error.error_type, error.message) == ("HTTPError", "502 Bad Gateway")


def test_unreachable_names_the_url() -> None:
    error = ApiUnreachable("http://127.0.0.1:9", "refused")

    assert error.exit_code == EXIT_UNREACHABLE
    assert "http://127.0.0.1:9" in error.line()
    assert error.document()["error"]["type"] == "ApiUnreachable"
