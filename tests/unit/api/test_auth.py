"""Bearer keys: the admin key guards deploy/list/delete, invoke keys guard execute."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from vortex_api.auth import Auth
from vortex_api.errors import Forbidden, Unauthorized
from vortex_api.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.admin_key = SecretStr("admin-secret")
    settings.invoke_keys = SecretStr("inv-1, inv-2")
    return settings


ADMIN = {"Authorization": "Bearer admin-secret"}
INVOKE = {"Authorization": "Bearer inv-2"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/functions"),
        ("GET", "/functions/x"),
        ("DELETE", "/functions/x"),
        ("GET", "/functions/x/versions"),
        ("POST", "/functions/x/rollback"),
        ("PUT", "/functions/x/traffic"),
    ],
)
async def test_admin_routes_need_the_admin_key(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    missing = await client.request(method, path)
    unknown = await client.request(method, path, headers={"Authorization": "Bearer nope"})
    invoke_only = await client.request(method, path, headers=INVOKE)
    admin = await client.request(method, path, headers=ADMIN)

    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["error"]["type"] == "Unauthorized"
    assert unknown.status_code == 401
    assert invoke_only.status_code == 403
    assert invoke_only.json()["error"]["type"] == "Forbidden"
    assert admin.status_code in (200, 400, 404)  # past auth: 400 for a route that needs a body


async def test_deploy_checks_the_key_before_the_body(client: httpx.AsyncClient) -> None:
    response = await client.post("/deploy", content=b"not json")
    assert response.status_code == 401
    response = await client.post("/deploy", content=b"not json", headers=INVOKE)
    assert response.status_code == 403


async def test_execute_needs_an_invoke_or_admin_key(
    client: httpx.AsyncClient, deploy: Callable[..., Any]
) -> None:
    fn = await deploy()
    url = f"/execute/{fn.function_id}"

    assert (await client.post(url)).status_code == 401
    assert (await client.post(url, headers={"Authorization": "Basic abc"})).status_code == 401
    assert (await client.post(url, headers={"Authorization": "Bearer inv-3"})).status_code == 401
    assert (await client.post(url, headers=INVOKE)).status_code == 200
    assert (await client.post(url, headers={"Authorization": "bearer inv-1"})).status_code == 200
    assert (await client.post(url, headers=ADMIN)).status_code == 200


async def test_health_and_metrics_stay_open(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/metrics")).status_code == 200


def test_no_keys_means_open() -> None:
    auth = Auth(None, [])
    auth.require_admin(None)
    auth.require_invoke(None)


def test_invoke_keys_alone_leave_admin_open() -> None:
    auth = Auth(None, ["k"])
    auth.require_admin(None)
    with pytest.raises(Unauthorized):
        auth.require_invoke("Bearer ")
    with pytest.raises(Forbidden):
        Auth("a", ["k"]).require_admin("Bearer k")
