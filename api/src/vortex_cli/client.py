"""The HTTP client of the Vortex API: one method per endpoint, errors mapped to `errors.py`.

The only module of the CLI that imports httpx. Commands build a `Client` (through
`commands/common.py`) and call its methods; unit tests hand it an `httpx.MockTransport`.
Answers are returned as parsed JSON; an error status raises `ApiError` (`AuthError` for 401 and
403), and a URL that does not answer raises `ApiUnreachable` naming the URL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx

from vortex_cli.errors import ApiUnreachable, api_error
from vortex_kube import contract

DEFAULT_URL = "http://127.0.0.1:8080"
# Management calls answer within seconds (a cluster deploy waits for its code to be stored).
REQUEST_TIMEOUT_S = 60.0
# An execution may take a function's largest timeout plus the API's grace.
EXECUTE_TIMEOUT_S = contract.MAX_TIMEOUT_MS / 1000 + 30.0
CONNECT_TIMEOUT_S = 5.0


Records = list[dict[str, Any]]  # (a name of its own: `Client.list` shadows `list` in the class)


class Invocation:
    """A successful `/execute` answer: the function's output, logs and time, and the version
    that ran (its `X-Vortex-Version` header)."""

    def __init__(
        self, document: dict[str, Any], invocation_id: str | None, version: str | None = None
    ) -> None:
        self.document = document
        self.invocation_id = invocation_id
        self.version = version

    @property
    def output(self) -> Any:
        return self.document.get("output")

    @property
    def logs(self) -> list[dict[str, Any]]:
        logs = self.document.get("logs")
        return logs if isinstance(logs, list) else []


class Client:
    """Calls to one API at `url`, with `key` as the Bearer token when given."""

    def __init__(
        self, url: str, key: str | None = None, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(
            base_url=self.url,
            headers=headers,
            transport=transport,
            timeout=httpx.Timeout(REQUEST_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _send(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        timeout: float | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        headers = dict(headers or {})
        if content is not None:
            headers["Content-Type"] = "application/json"
        extra: dict[str, Any] = {}
        if timeout is not None:
            extra["timeout"] = httpx.Timeout(timeout, connect=CONNECT_TIMEOUT_S)
        try:
            response = self._http.request(
                method, path, content=content, headers=headers, params=params, **extra
            )
        except httpx.ConnectError as exc:
            raise ApiUnreachable(self.url, _reason(exc, "connection failed")) from exc
        except httpx.TimeoutException as exc:
            raise ApiUnreachable(self.url, _reason(exc, "timed out")) from exc
        except httpx.TransportError as exc:
            raise ApiUnreachable(self.url, _reason(exc, "the connection broke")) from exc
        if response.status_code >= 400:
            raise api_error(response.status_code, _json(response), response.reason_phrase)
        return response

    def _document(self, response: httpx.Response) -> dict[str, Any]:
        body = _json(response)
        if not isinstance(body, dict):
            raise ApiUnreachable(self.url, "the answer is not a Vortex API document")
        return body

    def deploy(self, request: dict[str, Any]) -> str:
        """`POST /deploy`; the function id."""
        body = json.dumps(request).encode()
        return str(self._document(self._send("POST", "/deploy", content=body))["function_id"])

    def execute(
        self, function_id: str, event: bytes | None, version: str | None = None
    ) -> Invocation:
        """`POST /execute/{id}` with `event` as the body, sent as given (None: no body);
        `version` (a tag or a number) is sent as `X-Vortex-Version`."""
        response = self._send(
            "POST",
            f"/execute/{_segment(function_id)}",
            content=event,
            timeout=EXECUTE_TIMEOUT_S,
            headers=_pin(version),
        )
        return Invocation(
            self._document(response),
            response.headers.get("x-vortex-invocation-id"),
            response.headers.get("x-vortex-version"),
        )

    def enqueue(
        self,
        function_id: str,
        event: bytes | None,
        idempotency_key: str | None = None,
        version: str | None = None,
    ) -> dict[str, Any]:
        """`POST /async/{id}`: `{invocation_id, status}` once it is queued."""
        headers = _pin(version)
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        path = f"/async/{_segment(function_id)}"
        return self._document(self._send("POST", path, content=event, headers=headers))

    def invocation(self, invocation_id: str) -> dict[str, Any]:
        """`GET /invocations/{id}`: an async invocation's record."""
        return self._document(self._send("GET", f"/invocations/{_segment(invocation_id)}"))

    def dead_letters(self, function_id: str, limit: int) -> list[dict[str, Any]]:
        """`GET /functions/{id}/dead-letters`, newest first."""
        path = f"/functions/{_segment(function_id)}/dead-letters"
        found = self._document(self._send("GET", path, params={"limit": str(limit)}))
        invocations = found.get("invocations")
        return invocations if isinstance(invocations, list) else []

    def redrive(self, invocation_id: str) -> dict[str, Any]:
        """`POST /invocations/{id}/retry`: the dead invocation queued again."""
        return self._document(self._send("POST", f"/invocations/{_segment(invocation_id)}/retry"))

    def list(self) -> list[dict[str, Any]]:
        """`GET /functions`."""
        functions = self._document(self._send("GET", "/functions")).get("functions")
        return functions if isinstance(functions, list) else []

    def get(self, function_id: str) -> dict[str, Any]:
        """`GET /functions/{id}`."""
        return self._document(self._send("GET", f"/functions/{_segment(function_id)}"))

    def delete(self, function_id: str, purge_kv: bool = False) -> None:
        """`DELETE /functions/{id}` (`?purge=kv`: its KV data too)."""
        params = {"purge": "kv"} if purge_kv else None
        self._send("DELETE", f"/functions/{_segment(function_id)}", params=params)

    def versions(self, function_id: str) -> dict[str, Any]:
        """`GET /functions/{id}/versions`: the kept versions, oldest first, and the split."""
        return self._document(self._send("GET", f"/functions/{_segment(function_id)}/versions"))

    def rollback(self, function_id: str, version: int) -> dict[str, Any]:
        """`POST /functions/{id}/rollback`: a new version with `version`'s code and spec, taking
        all the traffic; the versions as after it."""
        path = f"/functions/{_segment(function_id)}/rollback"
        body = json.dumps({"version": version}).encode()
        return self._document(self._send("POST", path, content=body))

    def set_traffic(self, function_id: str, traffic: Records | None) -> dict[str, Any]:
        """`PUT /functions/{id}/traffic` (None: all to the latest); the versions as after it."""
        path = f"/functions/{_segment(function_id)}/traffic"
        body = json.dumps({"traffic": traffic}).encode()
        return self._document(self._send("PUT", path, content=body))

    def kv_list(self, function_id: str, prefix: str, limit: int, cursor: str) -> dict[str, Any]:
        """`GET /functions/{id}/kv`: a page of keys."""
        params = {"prefix": prefix, "limit": str(limit), "cursor": cursor}
        return self._document(self._send("GET", _kv_path(function_id), params=params))

    def kv_get(self, function_id: str, key: str) -> dict[str, Any]:
        """`GET /functions/{id}/kv/{key}`: `{key, value}`."""
        return self._document(self._send("GET", _kv_path(function_id, key)))

    def kv_put(self, function_id: str, key: str, value: bytes, ttl_s: float | None) -> None:
        """`PUT /functions/{id}/kv/{key}` with the value as the body."""
        params = {"ttl_seconds": str(ttl_s)} if ttl_s is not None else None
        self._send("PUT", _kv_path(function_id, key), content=value, params=params)

    def kv_delete(self, function_id: str, key: str) -> None:
        """`DELETE /functions/{id}/kv/{key}`."""
        self._send("DELETE", _kv_path(function_id, key))

    def records(self, function_id: str, query: dict[str, str]) -> Records:
        """`GET /functions/{id}/logs`: invocation records, newest first."""
        path = f"/functions/{_segment(function_id)}/logs"
        response = self._send("GET", path, params=query)
        records = self._document(response).get("records")
        return records if isinstance(records, list) else []

    def follow(self, function_id: str, query: dict[str, str]) -> Iterator[dict[str, Any]]:
        """`GET /functions/{id}/logs?follow=true`: records as they are written, until the
        API ends the stream (the caller stops it with Ctrl-C)."""
        path = f"/functions/{_segment(function_id)}/logs"
        params = {**query, "follow": "true"}
        # No read timeout: the stream is quiet between records (the API sends an empty line
        # every 15 s, so a dead connection still ends it).
        timeout = httpx.Timeout(None, connect=CONNECT_TIMEOUT_S)
        try:
            with self._http.stream("GET", path, params=params, timeout=timeout) as response:
                if response.status_code >= 400:
                    response.read()
                    raise api_error(response.status_code, _json(response), response.reason_phrase)
                for line in response.iter_lines():
                    if line.strip():
                        record = json.loads(line)
                        if isinstance(record, dict):
                            yield record
        except httpx.ConnectError as exc:
            raise ApiUnreachable(self.url, _reason(exc, "connection failed")) from exc
        except httpx.TransportError as exc:
            raise ApiUnreachable(self.url, _reason(exc, "the connection broke")) from exc
        except ValueError as exc:
            raise ApiUnreachable(self.url, "the stream is not newline-delimited JSON") from exc


def _segment(function_id: str) -> str:
    # A name with a slash or a dot segment must not reach another route.
    return quote(function_id, safe="").replace(".", "%2E")


def _pin(version: str | None) -> dict[str, str]:
    return {"X-Vortex-Version": version} if version else {}


def _kv_path(function_id: str, key: str | None = None) -> str:
    path = f"/functions/{_segment(function_id)}/kv"
    return path if key is None else f"{path}/{_segment(key)}"


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _reason(exc: httpx.HTTPError, fallback: str) -> str:
    text = str(exc).strip()
    return text or fallback
