"""The operator's /healthz and /readyz endpoint."""

from __future__ import annotations

import socket

import aiohttp

from vortex_operator.health import HealthServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_liveness_and_readiness() -> None:
    state = {"alive": True, "ready": False}
    port = free_port()
    server = HealthServer(
        "127.0.0.1",
        port,
        alive=lambda: state["alive"],
        ready=lambda: state["ready"],
        details=lambda: {"leader": state["ready"]},
    )
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                assert r.status == 200
            async with http.get(f"http://127.0.0.1:{port}/readyz") as r:
                assert r.status == 503
                assert await r.json() == {"status": "standby", "leader": False}
            state["ready"] = True
            async with http.get(f"http://127.0.0.1:{port}/readyz") as r:
                assert r.status == 200
            state["alive"] = False
            async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                assert r.status == 500
    finally:
        await server.stop()
