"""`/deploy` and the VortexFunction CRD agree: every bound and default of a deploy field equals the
CRD's, and a body the CRD would refuse is a 400 naming the field, in both backends (before the
Kubernetes API is ever asked)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from vortex_api.models import DeployRequest
from vortex_api.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
CRD = yaml.safe_load((ROOT / "crds" / "vortexfunction.yaml").read_text())
SPEC = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
BODY = DeployRequest.model_json_schema()["properties"]
# deploy field -> CRD spec property
NUMBERS = {
    "timeout_ms": "timeoutMs",
    "memory_mb": "memoryMb",
    "concurrency": "concurrency",
    "replicas": "replicas",
}


def non_null(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema of an optional field without its `null` branch."""
    [branch] = [b for b in schema.get("anyOf", [schema]) if b.get("type") != "null"]
    return dict(branch)


@pytest.mark.parametrize(("field", "prop"), NUMBERS.items())
def test_numeric_bounds_equal_the_crd(field: str, prop: str) -> None:
    ours, crd = non_null(BODY[field]), SPEC[prop]
    assert (ours["minimum"], ours["maximum"]) == (crd["minimum"], crd["maximum"])


def test_env_bounds_equal_the_crd() -> None:
    ours, crd = non_null(BODY["env"]), SPEC["env"]
    assert ours["maxProperties"] == crd["maxItems"]
    item = crd["items"]["properties"]
    assert ours["additionalProperties"]["maxLength"] == item["value"]["maxLength"]
    assert item["name"]["maxLength"] == 128
    assert BODY["isolation"]["anyOf"][0]["enum"] == SPEC["isolation"]["enum"]


def test_setting_defaults_and_caps_equal_the_crd() -> None:
    settings = Settings()
    assert settings.default_timeout_ms == SPEC["timeoutMs"]["default"]
    assert settings.max_timeout_ms == SPEC["timeoutMs"]["maximum"]
    assert settings.default_memory_mb == SPEC["memoryMb"]["default"]
    assert settings.max_memory_mb == SPEC["memoryMb"]["maximum"]
    assert settings.max_code_bytes == SPEC["code"]["maxLength"]


def refused_bodies() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for field, prop in NUMBERS.items():
        out.append((field, {field: SPEC[prop]["maximum"] + 1}))
        out.append((field, {field: SPEC[prop]["minimum"] - 1}))
    out.append(("env", {"env": {f"V{i}": "x" for i in range(SPEC["env"]["maxItems"] + 1)}}))
    limit = SPEC["env"]["items"]["properties"]["value"]["maxLength"]
    out.append(("env.BIG", {"env": {"BIG": "x" * (limit + 1)}}))
    return out


async def refuses(client: httpx.AsyncClient, field: str, extra: dict[str, Any]) -> None:
    response = await client.post("/deploy", json={"code": "return 1;", **extra})

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "InvalidRequest"
    assert error["message"].startswith(f"{field}: ")


async def accepts_the_bounds(client: httpx.AsyncClient) -> None:
    body: dict[str, Any] = {field: SPEC[prop]["maximum"] for field, prop in NUMBERS.items()}
    body["env"] = {f"V{i}": "x" * 100 for i in range(SPEC["env"]["maxItems"])}
    response = await client.post("/deploy", json={"code": "return 1;", "name": "edge", **body})
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(("field", "extra"), refused_bodies())
async def test_local_refuses_what_the_crd_refuses(
    client: httpx.AsyncClient, field: str, extra: dict[str, Any]
) -> None:
    await refuses(client, field, extra)


@pytest.mark.parametrize(("field", "extra"), refused_bodies())
async def test_kubernetes_refuses_what_the_crd_refuses_before_asking_it(
    k8s_client: httpx.AsyncClient, field: str, extra: dict[str, Any]
) -> None:
    await refuses(k8s_client, field, extra)


async def test_local_accepts_the_crd_bounds(client: httpx.AsyncClient) -> None:
    await accepts_the_bounds(client)


async def test_kubernetes_accepts_the_crd_bounds(k8s_client: httpx.AsyncClient) -> None:
    await accepts_the_bounds(k8s_client)
