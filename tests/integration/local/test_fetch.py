"""`fetch` through local mode's API and real workers, to a real HTTP server on loopback that the
rules name: `/deploy`'s `egress` (validated at deploy time), the request reaching the server,
a denied host, the invocation record's `fetches` and `vortex_fetch_requests_total`."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.fixtures.fetch import FETCH, serve

from .test_execute import deploy, first_records


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    with serve("127.0.0.1") as port:
        yield port


def _count(text: str, function_id: str, outcome: str) -> float:
    pattern = (
        rf'^vortex_fetch_requests_total\{{function="{function_id}",outcome="{outcome}"\}} (\S+)$'
    )
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def test_fetch_reaches_what_egress_allows_and_nothing_else(
    client: httpx.AsyncClient, server: int
) -> None:
    fid = await deploy(client, FETCH, egress={"allow": [f"127.0.0.1:{server}"], "maxRequests": 5})
    info = (await client.get(f"/functions/{fid}")).json()
    assert info["spec"]["egress"] == {"allow": [f"127.0.0.1:{server}"], "maxRequests": 5}
    event = {
        "many": [
            {
                "url": f"http://127.0.0.1:{server}/echo",
                "init": {"method": "POST", "body": "hi"},
                "read": "json",
            },
            {"url": f"http://localhost:{server}/json"},
        ]
    }
    response = await client.post(f"/execute/{fid}", json=event)
    assert response.status_code == 200, response.text
    echoed, denied = response.json()["output"]
    assert echoed["status"] == 200
    assert echoed["body"]["method"] == "POST"
    assert echoed["body"]["body"] == "hi"
    assert denied["error"] == {"name": "TypeError", "message": "fetch to localhost is not allowed"}

    metrics = (await client.get("/metrics")).text
    assert _count(metrics, fid, "ok") == 1
    assert _count(metrics, fid, "denied") == 1

    records = await first_records(client, fid)
    fetches = records[0]["fetches"]
    assert isinstance(fetches, list)
    assert [(f["method"], f["host"], f["status"], f["outcome"]) for f in fetches] == [
        ("POST", "127.0.0.1", 200, "ok"),
        ("GET", "localhost", None, "denied"),
    ]


async def test_without_egress_fetch_is_refused(client: httpx.AsyncClient, server: int) -> None:
    fid = await deploy(client, FETCH)
    response = await client.post(f"/execute/{fid}", json={"url": f"http://127.0.0.1:{server}/"})
    assert response.json()["output"]["error"]["message"] == "fetch to 127.0.0.1 is not allowed"


@pytest.mark.parametrize(
    ("egress", "message"),
    [
        ({"allow": ["not a host"]}, "not a host name"),
        ({"allow": ["10.0.0.0/40"]}, "not a CIDR"),
        ({"allow": [], "maxRequests": 0}, "maxRequests"),
        ({"allow": "api.example.com"}, "allow"),
    ],
)
async def test_bad_egress_is_refused_at_deploy(
    client: httpx.AsyncClient, egress: object, message: str
) -> None:
    response = await client.post("/deploy", json={"code": FETCH, "egress": egress})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"]["type"] == "InvalidRequest"
    assert message in body["error"]["message"]
