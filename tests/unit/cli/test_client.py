"""The HTTP client: what it sends to each endpoint, and how answers and failures come back."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.unit.cli.conftest import FakeApi, error, function_info
from vortex_cli.client import Client
from vortex_cli.errors import ApiError, ApiUnreachable, AuthError

URL = "http://vortex.test:8080"


def client(api: FakeApi, key: str | None = None) -> Client:
    return Client(URL + "/", key, transport=httpx.MockTransport(api))


def test_deploy_posts_json_with_the_bearer_key() -> None:
    api = FakeApi()
    api.handler = lambda request: httpx.Response(201, json={"function_id": "f1"})

    assert client(api, "k-1").deploy({"code": "return 1;", "name": "f1"}) == "f1"
    [request] = api.requests
    assert (request.method, str(request.url)) == ("POST", f"{URL}/deploy")
    assert request.headers["authorization"] == "Bearer k-1"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {"code": "return 1;", "name": "f1"}


def test_no_key_sends_no_authorization() -> None:
    api = FakeApi()
    api.handler = lambda request: httpx.Response(200, json={"functions": []})

    assert client(api).list() == []
    assert "authorization" not in api.requests[0].headers


def test_execute_sends_the_event_bytes_unchanged() -> None:
    api = FakeApi()
    answer = {"output": {"a": 1}, "logs": [{"level": "log"}], "execution_time_ms": 1}
    api.handler = lambda request: httpx.Response(
        200, json=answer, headers={"X-Vortex-Invocation-Id": "inv-1"}
    )

    invocation = client(api).execute("f1", b'{ "a" :1 }')

    assert api.requests[0].content == b'{ "a" :1 }'
    assert str(api.requests[0].url) == f"{URL}/execute/f1"
    assert (invocation.output, invocation.logs) == ({"a": 1}, [{"level": "log"}])
    assert invocation.invocation_id == "inv-1"
    assert invocation.document == answer


def test_execute_without_an_event_sends_no_body() -> None:
    api = FakeApi()
    api.handler = lambda request: httpx.Response(200, json={"output": None, "logs": []})

    client(api).execute("f1", None)

    assert api.requests[0].content == b""
    assert "content-type" not in api.requests[0].headers


@pytest.mark.parametrize(
    ("name", "path"), [("a/b", "/functions/a%2Fb"), ("..", "/functions/%2E%2E")]
)
def test_a_name_stays_one_path_segment(name: str, path: str) -> None:
    api = FakeApi()
    api.handler = lambda request: httpx.Response(200, json=function_info(name))

    client(api).get(name)

    assert api.requests[0].url.raw_path.decode() == path


def test_get_and_delete() -> None:
    api = FakeApi()
    api.handler = lambda request: (
        httpx.Response(204)
        if request.method == "DELETE"
        else httpx.Response(200, json=function_info())
    )

    assert client(api).get("hello")["function_id"] == "hello"
    client(api).delete("hello")
    assert [(r.method, r.url.path) for r in api.requests] == [
        ("GET", "/functions/hello"),
        ("DELETE", "/functions/hello"),
    ]


def test_an_error_answer_is_raised_with_its_fields() -> None:
    api = FakeApi()
    api.handler = lambda request: error(400, "CompileError", "bad", line=2, column=5)

    with pytest.raises(ApiError) as caught:
        client(api).deploy({"code": "x ="})
    assert (caught.value.status, caught.value.error_type) == (400, "CompileError")
    assert caught.value.extra == {"line": 2, "column": 5}


def test_a_refused_key_is_an_auth_error() -> None:
    api = FakeApi()
    api.handler = lambda request: error(403, "Forbidden", "this key may execute functions")

    with pytest.raises(AuthError):
        client(api).list()


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.ConnectTimeout(""),
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("Server disconnected"),
    ],
)
def test_a_url_that_does_not_answer_is_unreachable(failure: httpx.TransportError) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise failure

    with pytest.raises(ApiUnreachable) as caught:
        Client(URL, transport=httpx.MockTransport(handler)).list()
    assert URL in caught.value.message
    assert caught.value.message.split(": ", 1)[1]  # a reason after the URL, never empty


def test_an_answer_that_is_not_a_vortex_document() -> None:
    api = FakeApi()
    api.handler = lambda request: httpx.Response(200, text="<html>hello</html>")

    with pytest.raises(ApiUnreachable, match="not a Vortex API document"):
        client(api).list()
