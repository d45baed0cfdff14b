"""Every failure is JSON `{"error": {"type", "message"}}`: FastAPI's own 404/405/validation too."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from vortex_api.app import lifespan


async def test_unknown_route_is_json_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/nope")
    assert response.status_code == 404
    assert response.json() == {"error": {"type": "NotFound", "message": "no such route"}}


async def test_wrong_method_is_json_405(client: httpx.AsyncClient) -> None:
    response = await client.put("/health")
    assert response.status_code == 405
    assert response.json()["error"]["type"] == "MethodNotAllowed"
    assert "GET" in response.headers["allow"]


async def test_declared_oversize_body_is_refused_before_reading(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    limit = app.state.gateway.settings.max_event_bytes + 2 * (1 << 20)
    response = await client.post(
        "/execute/x", content=b"", headers={"Content-Length": str(limit * 2)}
    )
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "PayloadTooLarge"


async def test_chunked_oversize_body_is_refused(client: httpx.AsyncClient, app: FastAPI) -> None:
    chunk = b"x" * (1 << 20)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield chunk

    response = await client.post("/deploy", content=body())
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "PayloadTooLarge"


@pytest.fixture
def broken_app(app: FastAPI) -> FastAPI:
    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    return app


async def test_unexpected_exception_is_json_500_without_traceback(broken_app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=broken_app, raise_app_exceptions=False)
    async with (
        lifespan(broken_app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        response = await client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {"error": {"type": "InternalError", "message": "internal error"}}
    assert "secret" not in response.text


@pytest.mark.parametrize("path", ["/execute/", "/execute/a/b"])
async def test_execute_paths_outside_the_route_are_json_404(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.post(path)
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "NotFound"


async def test_execute_with_another_method_is_405(client: httpx.AsyncClient) -> None:
    response = await client.put("/execute/some-id")
    assert response.status_code == 405
    assert response.json()["error"]["type"] == "MethodNotAllowed"
