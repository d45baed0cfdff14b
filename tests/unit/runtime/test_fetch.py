"""`fetch` on real isolates against a real HTTP server on loopback: what passes the egress
rules and what does not (other hosts and ports, redirects to a denied host, the metadata
address, private ranges, a name that rebinds to a denied address), the request and body limits,
a slow server against the timeout, bodies as text, JSON and bytes, headers and abort, and the
record and metric fields each request leaves."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.fetch import FETCH, serve
from vortex_runtime import egress
from vortex_runtime.records import RecordWriter

Client = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    with serve("127.0.0.1") as port:
        yield port


@pytest.fixture(scope="module")
def secret() -> Iterator[int]:
    """A second server, on 127.0.0.2: loopback, and never allowed by the rules below."""
    with serve("127.0.0.2") as port:
        yield port


def _hits(host: str, port: int) -> int:
    return int(httpx.get(f"http://{host}:{port}/hits").json()["hits"])


def _rules(*allow: str, max_requests: int | None = None) -> str:
    spec: dict[str, Any] = {"allow": list(allow)}
    if max_requests is not None:
        spec["maxRequests"] = max_requests
    return egress.to_json(spec)


@pytest.fixture
async def fn(client_for: Client, code_file: Callable[[str], Path], server: int) -> Any:
    client = await client_for(code_file=code_file(FETCH), function_name="f", timeout_ms=3000)

    async def call(event: dict[str, Any], *allow: str, **headers: str) -> Any:
        if allow:
            headers["x-vortex-egress"] = _rules(*allow)
        response = await client.post("/invoke", json=event, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()["output"]

    call.client = client  # type: ignore[attr-defined]
    return call


async def test_an_allowed_request_gets_status_headers_and_json(fn: Any, server: int) -> None:
    out = await fn(
        {"url": f"http://127.0.0.1:{server}/json", "read": "json"}, f"127.0.0.1:{server}"
    )
    assert out["status"] == 200
    assert out["ok"] is True
    assert out["statusText"] == "OK"
    assert out["body"] == {"hello": "world", "n": [1, 2, 3]}
    assert out["headers"]["x-test"] == "a"
    assert out["headers"]["content-type"] == "application/json"
    assert out["redirected"] is False
    assert out["url"] == f"http://127.0.0.1:{server}/json"


async def test_request_bodies_as_text_json_and_bytes(fn: Any, server: int) -> None:
    url, rule = f"http://127.0.0.1:{server}/echo", f"127.0.0.1:{server}"
    text = await fn(
        {"url": url, "init": {"method": "POST", "body": "naïve ✓"}, "read": "json"}, rule
    )
    assert text["body"]["method"] == "POST"
    assert text["body"]["body"].encode("latin-1").decode() == "naïve ✓"
    assert text["body"]["headers"]["content-type"] == "text/plain;charset=UTF-8"
    sent = json.dumps({"a": [1, 2]})
    as_json = await fn(
        {
            "url": url,
            "init": {
                "method": "PUT",
                "body": sent,
                "headers": {"Content-Type": "application/json"},
            },
            "read": "json",
        },
        rule,
    )
    assert as_json["body"]["body"] == sent
    assert as_json["body"]["headers"]["content-type"] == "application/json"
    raw = await fn(
        {"url": url, "init": {"method": "POST"}, "bodyBytes": [0, 1, 200, 255], "read": "json"},
        rule,
    )
    assert [ord(c) for c in raw["body"]["body"]] == [0, 1, 200, 255]
    assert raw["body"]["headers"]["user-agent"] == "vortex-fetch"
    got = await fn({"url": f"http://127.0.0.1:{server}/bytes?n=300", "read": "bytes"}, rule)
    assert got["body"] == 300


async def test_without_egress_every_fetch_is_refused(fn: Any, server: int) -> None:
    out = await fn({"url": f"http://127.0.0.1:{server}/json"})
    assert out == {"error": {"name": "TypeError", "message": "fetch to 127.0.0.1 is not allowed"}}


async def test_other_hosts_and_ports_are_refused(fn: Any, server: int, secret: int) -> None:
    rule = f"127.0.0.1:{server}"
    other_port = await fn({"url": f"http://127.0.0.1:{secret}/json"}, rule)
    assert other_port["error"]["message"] == "fetch to 127.0.0.1 is not allowed"
    other_host = await fn({"url": f"http://127.0.0.2:{secret}/json"}, rule)
    assert other_host["error"]["message"] == "fetch to 127.0.0.2 is not allowed"
    name = await fn({"url": f"http://localhost:{server}/json"}, rule)
    assert name["error"]["message"] == "fetch to localhost is not allowed"
    scheme = await fn({"url": f"ftp://127.0.0.1:{server}/"}, rule)
    assert scheme["error"]["name"] == "TypeError"
    assert "http and https" in scheme["error"]["message"]
    assert _hits("127.0.0.2", secret) == 0


async def test_loopback_private_and_metadata_need_a_rule_naming_them(fn: Any, server: int) -> None:
    # a wildcard matches the name, but never grants loopback or link-local addresses
    wild = await fn({"url": f"http://localhost:{server}/json"}, "*.localhost", "localhost.")
    assert wild["status"] == 200  # the exact name `localhost.` names it
    only_wild = await fn({"url": f"http://x.localhost:{server}/json"}, "*.localhost")
    assert only_wild.get("error", {}).get("name") == "TypeError", only_wild
    # 0.0.0.0/0 is the internet: the metadata address and loopback stay out
    for host in ("169.254.169.254", "127.0.0.1"):
        out = await fn({"url": f"http://{host}:{server}/"}, "0.0.0.0/0")
        assert out["error"]["message"] == f"fetch to {host} is not allowed"
    named = await fn({"url": f"http://127.0.0.1:{server}/json"}, "127.0.0.0/8")
    assert named["status"] == 200


def test_address_rules() -> None:
    rules = egress.parse({"allow": ["*.example.com", "*.svc.cluster.local", "10.1.0.0/16:80"]})
    public = egress.ip_address("93.184.216.34")
    assert public
    assert rules.address_allowed("a.example.com", 443, public)
    for text in ("127.0.0.1", "169.254.169.254", "10.0.0.5", "::1", "::ffff:127.0.0.1"):
        address = egress.ip_address(text)
        assert address is not None
        assert not rules.address_allowed("a.example.com", 443, address), text
    cluster = egress.ip_address("10.96.0.10")
    assert cluster
    assert rules.address_allowed("db.prod.svc.cluster.local", 5432, cluster)
    assert not rules.address_allowed(
        "db.prod.svc.cluster.local",
        5432,
        egress.ip_address("169.254.169.254"),  # type: ignore[arg-type]
    )
    inside = egress.ip_address("10.1.2.3")
    assert inside
    assert rules.address_allowed("10.1.2.3", 80, inside)
    assert not rules.address_allowed("10.1.2.3", 81, inside)
    node = egress.ip_address("203.0.113.7")
    assert node
    assert not rules.address_allowed(
        "n.example.com", 443, node, (egress.ipaddress.ip_network("203.0.113.7"),)
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"allow": ["exa mple.com"]}, "not a host name"),
        ({"allow": ["10.0.0.0/33"]}, "not a CIDR"),
        ({"allow": ["a.com:0"]}, "port must be 1 to 65535"),
        ({"allow": ["[::1"]}, "closing ]"),
        ({"allow": "a.com"}, "must be a list"),
        ({"allow": [], "maxRequests": 0}, "maxRequests must be an integer from 1 to 1000"),
        ({"allow": [], "other": 1}, "unknown fields: other"),
        ([], "egress must be an object"),
    ],
)
def test_bad_rules_say_why(spec: Any, message: str) -> None:
    with pytest.raises(egress.RuleError, match=message):
        egress.parse(spec)


async def test_bad_egress_header_is_a_400(fn: Any) -> None:
    response = await fn.client.post(
        "/invoke", json={}, headers={"x-vortex-egress": '{"allow": ["a b"]}'}
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "InvalidRequest"
    assert "not a host name" in response.json()["error"]["message"]


async def test_redirects_are_followed_and_each_hop_checked(
    fn: Any, server: int, secret: int
) -> None:
    base, rule = f"http://127.0.0.1:{server}", f"127.0.0.1:{server}"
    to_json = f"{base}/redirect?to=/json"
    followed = await fn({"url": to_json, "read": "json"}, rule)
    assert followed["status"] == 200
    assert followed["redirected"] is True
    assert followed["url"] == f"{base}/json"
    manual = await fn({"url": to_json, "init": {"redirect": "manual"}, "read": "none"}, rule)
    assert manual["status"] == 302
    assert manual["headers"]["location"] == "/json"
    refused = await fn({"url": to_json, "init": {"redirect": "error"}}, rule)
    assert refused["error"]["name"] == "TypeError"
    away = f"{base}/redirect?to=http://127.0.0.2:{secret}/json"
    denied = await fn({"url": away}, rule)
    assert denied["error"]["message"] == "fetch to 127.0.0.2 is not allowed"
    # a POST redirected by 303 becomes a GET without its body
    post = await fn(
        {
            "url": f"{base}/redirect?code=303&to=/echo",
            "init": {"method": "POST", "body": "x"},
            "read": "json",
        },
        rule,
    )
    assert post["body"]["method"] == "GET"
    assert post["body"]["body"] == ""
    assert _hits("127.0.0.2", secret) == 0


async def test_credentials_do_not_follow_a_redirect_to_another_origin(fn: Any, server: int) -> None:
    same, other = f"http://127.0.0.1:{server}", f"http://localhost:{server}"
    rules = (f"127.0.0.1:{server}", f"localhost.:{server}", f"localhost:{server}")
    init = {"headers": {"Authorization": "Bearer s3cret", "Cookie": "a=1", "X-Keep": "yes"}}
    kept = await fn({"url": f"{same}/redirect?to=/echo", "init": init, "read": "json"}, *rules)
    assert kept["body"]["headers"]["authorization"] == "Bearer s3cret"
    away = f"{same}/redirect?to={other}/echo"
    moved = await fn({"url": away, "init": init, "read": "json"}, *rules)
    assert moved["url"] == f"{other}/echo"
    assert "authorization" not in moved["body"]["headers"]
    assert "cookie" not in moved["body"]["headers"]
    assert moved["body"]["headers"]["x-keep"] == "yes"


async def test_no_cookie_jar_carries_a_response_cookie_into_a_later_request(
    fn: Any, server: int
) -> None:
    """As in Workers, fetch keeps no cookies: what one server set is never sent by a later
    fetch, of the same invocation or of the next one (which may be another tenant's with the
    same rules)."""
    base, rule = f"http://127.0.0.1:{server}", f"127.0.0.1:{server}"
    both = {
        "many": [{"url": f"{base}/json", "read": "none"}, {"url": f"{base}/echo", "read": "json"}]
    }
    got, echoed = await fn(both, rule)
    assert got["headers"]["set-cookie"] == "b=2"  # the last of its two
    assert "cookie" not in echoed["body"]["headers"]
    later = await fn({"url": f"{base}/echo", "read": "json"}, rule)
    assert "cookie" not in later["body"]["headers"]


async def test_at_most_max_requests_per_invocation(fn: Any, server: int) -> None:
    url = f"http://127.0.0.1:{server}/json"
    many = {"many": [{"url": url, "read": "none"}] * 4}
    out = await fn(many, **{"x-vortex-egress": _rules(f"127.0.0.1:{server}", max_requests=3)})
    assert [o.get("status") for o in out[:3]] == [200, 200, 200]
    assert out[3]["error"] == {
        "name": "RangeError",
        "message": "fetch: more than 3 requests in one invocation",
    }
    # the next invocation has its own count
    again = await fn({"url": url, "read": "none"}, f"127.0.0.1:{server}")
    assert again["status"] == 200


async def test_at_most_10_mb_of_response_bodies(fn: Any, server: int) -> None:
    url = f"http://127.0.0.1:{server}/bytes?n={6 * 1024 * 1024}"
    out = await fn({"many": [{"url": url, "read": "bytes"}] * 2}, f"127.0.0.1:{server}")
    assert out[0]["body"] == 6 * 1024 * 1024
    assert out[1]["error"]["name"] == "RangeError"
    assert "over 10485760 bytes" in out[1]["error"]["message"]


async def test_a_slow_server_meets_the_function_timeout(
    client_for: Client, code_file: Callable[[str], Path], server: int
) -> None:
    client = await client_for(code_file=code_file(FETCH), function_name="f", timeout_ms=500)
    started = asyncio.get_running_loop().time()
    response = await client.post(
        "/invoke",
        json={"url": f"http://127.0.0.1:{server}/slow?ms=3000"},
        headers={"x-vortex-egress": _rules(f"127.0.0.1:{server}")},
    )
    took = asyncio.get_running_loop().time() - started
    assert response.status_code == 504, response.text
    assert response.json()["error"]["type"] == "Timeout"
    assert took < 2.0


async def test_abort_rejects_with_an_abort_error(fn: Any, server: int) -> None:
    out = await fn(
        {"url": f"http://127.0.0.1:{server}/slow?ms=1500", "abortAfterMs": 50},
        f"127.0.0.1:{server}",
    )
    assert out["error"]["name"] == "AbortError"


async def test_the_runtime_egress_setting_applies_without_a_header(
    client_for: Client, code_file: Callable[[str], Path], server: int
) -> None:
    client = await client_for(
        code_file=code_file(FETCH), function_name="f", egress=_rules(f"127.0.0.1:{server}")
    )
    response = await client.post("/invoke", json={"url": f"http://127.0.0.1:{server}/json"})
    assert response.json()["output"]["status"] == 200


async def test_records_and_the_outcome_header(
    client_for: Client, code_file: Callable[[str], Path], server: int, tmp_path: Path
) -> None:
    writer = RecordWriter(tmp_path / "records.jsonl", 1 << 20)
    client = await client_for(code_file=code_file(FETCH), function_name="f", writer=writer)
    url = f"http://127.0.0.1:{server}"
    event = {"many": [{"url": f"{url}/redirect?to=/json"}, {"url": "http://127.0.0.2/"}]}
    response = await client.post(
        "/invoke", json=event, headers={"x-vortex-egress": _rules(f"127.0.0.1:{server}")}
    )
    assert response.status_code == 200
    assert response.headers["x-vortex-fetches"] == "denied=1,ok=2"
    await asyncio.sleep(0.4)
    record = json.loads((tmp_path / "records.jsonl").read_text().splitlines()[-1])
    fetches = record["fetches"]
    assert [(f["method"], f["host"], f["status"], f["outcome"]) for f in fetches] == [
        ("GET", "127.0.0.1", 302, "ok"),
        ("GET", "127.0.0.1", 200, "ok"),
        ("GET", "127.0.0.2", None, "denied"),
    ]
    assert all(f["ms"] >= 0 for f in fetches)


class _FlipDNS:
    """A real DNS server on loopback (UDP) whose answer for any name alternates between two
    addresses, query by query: a name rebinding under the runtime's feet."""

    def __init__(self, first: str, then: str) -> None:
        self.answers = [first, then]
        self.queries = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(512)
            except OSError:
                return
            end = data.index(b"\0", 12) + 5
            address = self.answers[self.queries % 2]
            self.queries += 1
            header = data[:2] + struct.pack(">HHHHH", 0x8180, 1, 1, 0, 0)
            answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 0, 4) + socket.inet_aton(address)
            self.sock.sendto(header + data[12:end] + answer, peer)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def flip_dns() -> Iterator[_FlipDNS]:
    dns = _FlipDNS("127.0.0.1", "127.0.0.2")
    yield dns
    dns.close()


async def test_a_name_that_rebinds_to_a_denied_address_never_reaches_it(
    client_for: Client,
    code_file: Callable[[str], Path],
    server: int,
    secret: int,
    flip_dns: _FlipDNS,
) -> None:
    """`*.rebind.test` is allowed, and so is 127.0.0.1 by CIDR; the DNS server answers
    127.0.0.1 and 127.0.0.2 in turn, one query each. A check that resolved apart from the
    connection would check one answer and connect to the next: to 127.0.0.2, where `secret`
    listens. Here each request reaches 127.0.0.1 or is refused, and 127.0.0.2 sees nothing."""
    client = await client_for(
        code_file=code_file(FETCH),
        function_name="f",
        fetch_dns_server=f"127.0.0.1:{flip_dns.port}",
    )
    rules = _rules("*.rebind.test", "127.0.0.1/32")
    outcomes = []
    for i in range(6):
        for port in (server, secret):
            # a new name each time, so that no pooled connection is reused
            url = f"http://n{i}-{port}.rebind.test:{port}/json"
            response = await client.post(
                "/invoke", json={"url": url, "read": "none"}, headers={"x-vortex-egress": rules}
            )
            out = response.json()["output"]
            outcomes.append(out.get("status") or out["error"]["message"])
    assert flip_dns.queries >= 12
    assert any(o == 200 for o in outcomes)
    refused = [o for o in outcomes if o != 200]
    assert refused
    assert all("resolves to 127.0.0.2" in str(o) for o in refused), outcomes
    assert _hits("127.0.0.2", secret) == 0
