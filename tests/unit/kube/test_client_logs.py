"""`KubeApi.pod_log`: a container's log as blocks of whole lines, its query, and its errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from vortex_kube.client import KubeApi
from vortex_kube.errors import Forbidden, Invalid, NotFound

LOG = "/api/v1/namespaces/ns/pods/p/log"


@pytest.fixture
async def kubelet() -> AsyncIterator[tuple[KubeApi, list[web.Request]]]:
    """An API server whose pod `p` writes a line in three pieces, then one without its end."""
    seen: list[web.Request] = []

    async def log(request: web.Request) -> web.StreamResponse:
        seen.append(request)
        if request.query.get("container") == "gone":
            return web.json_response({"kind": "Status", "reason": "NotFound",
                                      "message": 'pods "p" not found'}, status=404)  # fmt: skip
        if request.query.get("container") == "secret":
            return web.json_response({"message": "forbidden: pods/log"}, status=403)
        if request.query.get("previous") == "true":
            return web.Response(status=400, text="previous terminated container not found")
        response = web.StreamResponse()
        await response.prepare(request)
        for piece in (b"one\ntw", b"o", b"\nthree\nfo", b"ur"):
            await response.write(piece)
            await asyncio.sleep(0.01)
        return response

    app = web.Application()
    app.router.add_get(LOG, log)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    kube = KubeApi.for_host(f"http://127.0.0.1:{runner.addresses[0][1]}", "test")
    try:
        yield kube, seen
    finally:
        await kube.close()
        await runner.cleanup()


async def test_blocks_hold_whole_lines(kubelet: tuple[KubeApi, list[web.Request]]) -> None:
    kube, seen = kubelet

    blocks = [
        b async for b in kube.pod_log("ns", "p", "runtime", since_time="2026-01-01T00:00:00Z")
    ]

    assert all(block.endswith(b"\n") for block in blocks)
    assert b"".join(blocks) == b"one\ntwo\nthree\nfour\n"
    query = seen[0].query
    assert dict(query) == {"container": "runtime", "sinceTime": "2026-01-01T00:00:00Z"}


async def test_follow_and_previous_are_asked_for(
    kubelet: tuple[KubeApi, list[web.Request]],
) -> None:
    kube, seen = kubelet

    [_ async for _ in kube.pod_log("ns", "p", "runtime", follow=True)]
    with pytest.raises(Invalid):
        [_ async for _ in kube.pod_log("ns", "p", "runtime", previous=True)]

    assert seen[0].query.get("follow") == "true"
    assert "timestamps" not in seen[0].query
    assert seen[1].query.get("previous") == "true"


async def test_failures_are_the_error_trees(kubelet: tuple[KubeApi, list[web.Request]]) -> None:
    kube, _ = kubelet

    with pytest.raises(NotFound, match='pods "p" not found'):
        [_ async for _ in kube.pod_log("ns", "p", "gone")]
    with pytest.raises(Forbidden, match="pods/log"):
        [_ async for _ in kube.pod_log("ns", "p", "secret")]
