"""`vortex versions`, `traffic`, `rollback` and `invoke --version` as a subprocess against real
local mode: three deploys, a 80/20 split with a canary tag, then a rollback."""

from __future__ import annotations

import json

import httpx

from tests.integration.local.cli import vortex
from tests.integration.local.conftest import ApiProcess

NAME = "cli-versions"


def _deploy(api: ApiProcess, n: int) -> None:
    body = {"name": NAME, "code": f"return {{v: {n}}};"}
    response = httpx.post(f"{api.url}/deploy", json=body, timeout=30)
    assert response.status_code == 201, response.text


def _execute(api: ApiProcess, headers: dict[str, str] | None = None) -> httpx.Response:
    response = httpx.post(f"{api.url}/execute/{NAME}", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response


def test_versions_a_split_and_a_rollback(api: ApiProcess) -> None:
    for n in (1, 2, 3):
        _deploy(api, n)

    listed = vortex(api.url, "versions", NAME)
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["VERSION", "TRAFFIC", "CODE", "CREATED", "BY", "NOTE"]
    assert [row.split()[0] for row in rows] == ["1", "2", "3"]
    assert rows[-1].split()[1] == "100%"
    as_json = json.loads(vortex(api.url, "versions", NAME, "-o", "json").stdout)
    assert (as_json["latest_version"], as_json["traffic"]) == (3, [])

    split = vortex(api.url, "traffic", NAME, "1=80", "3=20@canary")
    assert (split.returncode, split.stdout) == (0, f"{NAME}: 1 80%, 3 20% (canary)\n"), split.stderr
    shares = {
        row.split()[0]: row.split()[1:3]
        for row in vortex(api.url, "versions", NAME).stdout.splitlines()[1:]
    }
    assert shares["1"][0] == "80%"
    assert shares["3"][:2] == ["20%", "canary"]

    for _ in range(5):
        pinned = _execute(api, {"X-Vortex-Version": "canary"})
        assert (pinned.headers["x-vortex-version"], pinned.json()["output"]) == ("3", {"v": 3})
    invoked = vortex(api.url, "invoke", NAME, "--version", "canary")
    assert (invoked.returncode, json.loads(invoked.stdout)) == (0, {"v": 3}), invoked.stderr

    refused = vortex(api.url, "traffic", NAME, "1=80", "3=10")
    assert refused.returncode == 1
    assert refused.stderr.startswith("Error: InvalidRequest: ")

    rolled = vortex(api.url, "rollback", NAME, "--to", "1")
    assert (rolled.returncode, rolled.stdout) == (
        0,
        f"rolled back {NAME} to version 1: now version 4\n",
    ), rolled.stderr
    after = _execute(api)
    assert (after.headers["x-vortex-version"], after.json()["output"]) == ("4", {"v": 1})
    last = vortex(api.url, "versions", NAME).stdout.splitlines()[-1]
    assert last.split()[:2] == ["4", "100%"]
    assert last.endswith("rollback of 1")

    missing = vortex(api.url, "rollback", "no-such-function", "--to", "1")
    assert missing.returncode == 1
    assert missing.stderr.startswith("Error: FunctionNotFound: ")
