"""Fixtures for the CLI unit tests: the real commands through Click's runner, against a fake API.

`FakeApi` answers the HTTP requests of `vortex_cli.client.Client` through `httpx.MockTransport`
and keeps every request it saw; `cli` runs a command line and returns Click's result (exit code,
stdout and stderr apart).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

import vortex_cli.commands.common
from vortex_cli.client import Client
from vortex_cli.main import cli as vortex

Handler = Callable[[httpx.Request], httpx.Response]


def error(status: int, error_type: str, message: str, **extra: Any) -> httpx.Response:
    return httpx.Response(status, json={"error": {"type": error_type, "message": message, **extra}})


def function_info(function_id: str = "hello", **spec: Any) -> dict[str, Any]:
    return {
        "function_id": function_id,
        "code_sha256": "ab" * 32,
        "created_at": "2026-01-02T03:04:05+00:00",
        "spec": {
            "timeout_ms": 5000,
            "memory_mb": 128,
            "env": {},
            "isolation": "shared",
            "concurrency": None,
            "replicas": None,
            **spec,
        },
        "status": {"phase": "Ready", "ready": True, "ready_replicas": None, "conditions": []},
    }


class FakeApi:
    """A Vortex API answering with `handler`; `requests` are the requests it was sent."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.handler: Handler = lambda request: httpx.Response(404)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.handler(request)

    @property
    def bodies(self) -> list[Any]:
        return [json.loads(r.content) if r.content else None for r in self.requests]


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    fake = FakeApi()
    client = functools.partial(Client, transport=httpx.MockTransport(fake))
    monkeypatch.setattr(vortex_cli.commands.common, "Client", client)
    return fake


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """Run `vortex <args>`; `input` is stdin, `env` extra environment variables."""
    monkeypatch.delenv("VORTEX_URL", raising=False)
    monkeypatch.delenv("VORTEX_API_KEY", raising=False)

    def run(
        *args: str, input: str | bytes | None = None, env: dict[str, str] | None = None
    ) -> Result:
        return CliRunner().invoke(vortex, list(args), input=input, env=env, prog_name="vortex")

    return run
