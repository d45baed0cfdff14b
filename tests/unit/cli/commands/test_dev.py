"""`vortex dev FILE`: a deploy, then one redeploy per save, each outcome on one line."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import Result

import vortex_cli.commands.dev
from tests.unit.cli.conftest import FakeApi, error

Cli = Callable[..., Result]
BROKEN = "let x = ;\n"
FIXED = "return 1;\n"


@pytest.fixture
def compiling(api: FakeApi) -> FakeApi:
    """An API that refuses code with `let x = ;` as the real compile check does."""

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if "let x = ;" in body["code"]:
            message = "SyntaxError: Unexpected token ';' (line 1, column 9)"
            return error(400, "CompileError", message, line=1, column=9)
        return httpx.Response(201, json={"function_id": body["name"]})

    api.handler = handler
    return api


def edits(
    monkeypatch: pytest.MonkeyPatch, *contents: str, end: type[BaseException] | None = None
) -> None:
    """Make the watcher see one save per content, written just before it is yielded."""

    def saves(path: Path) -> Iterator[None]:
        for content in contents:
            path.write_text(content)
            yield
        if end is not None:
            raise end

    monkeypatch.setattr(vortex_cli.commands.dev, "saves", saves)


def test_each_save_is_redeployed_and_reported(
    cli: Cli, compiling: FakeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "Hello.js"
    file.write_text(FIXED)
    edits(monkeypatch, BROKEN, FIXED, end=KeyboardInterrupt)

    result = cli("dev", str(file), "--timeout-ms", "1000")

    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "deployed hello",
        f"{file}:1:9: CompileError: SyntaxError: Unexpected token ';' (line 1, column 9)",
        "deployed hello",
    ]
    assert result.stderr == f"watching {file}; Ctrl-C stops\n"
    assert [(b["name"], b["timeout_ms"]) for b in compiling.bodies] == [("hello", 1000)] * 3


def test_json_lines(
    cli: Cli, compiling: FakeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "f.js"
    file.write_text(BROKEN)
    edits(monkeypatch, FIXED)

    result = cli("dev", str(file), "--name", "mine", "-o", "json")

    docs = [json.loads(doc) for doc in result.stdout.replace("}\n{", "}\x00{").split("\x00")]
    assert docs[0]["error"] == {
        "type": "CompileError",
        "message": "SyntaxError: Unexpected token ';' (line 1, column 9)",
        "line": 1,
        "column": 9,
    }
    assert docs[1] == {"function_id": "mine", "deployed": str(file)}


def test_an_unreachable_api_is_reported_and_watching_goes_on(
    cli: Cli, api: FakeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            raise httpx.ConnectError("[Errno 111] Connection refused")
        return httpx.Response(201, json={"function_id": "f"})

    api.handler = handler
    file = tmp_path / "f.js"
    file.write_text(FIXED)
    edits(monkeypatch, FIXED)

    result = cli("dev", str(file), "--url", "http://127.0.0.1:9")

    assert result.exit_code == 0
    first, second = result.stdout.splitlines()
    assert first.startswith(
        f"{file}: ApiUnreachable: cannot reach the Vortex API at http://127.0.0.1:9"
    )
    assert second == "deployed f"


def test_a_removed_file_is_reported_and_watching_goes_on(
    cli: Cli, compiling: FakeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "f.js"
    file.write_text(FIXED)

    def saves(path: Path) -> Iterator[None]:
        path.unlink()
        yield
        path.write_text(FIXED)
        yield

    monkeypatch.setattr(vortex_cli.commands.dev, "saves", saves)

    result = cli("dev", str(file))

    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "deployed f"
    assert lines[1].startswith(f"{file}: cannot read")
    assert lines[2] == "deployed f"


def test_a_refused_key_ends_dev_with_4(
    cli: Cli, api: FakeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.handler = lambda request: error(401, "Unauthorized", "unknown API key")
    file = tmp_path / "f.js"
    file.write_text(FIXED)
    edits(monkeypatch, FIXED)

    result = cli("dev", str(file), "--key", "wrong")

    assert (result.exit_code, result.stderr.splitlines()[-1]) == (
        4,
        "Error: Unauthorized: unknown API key",
    )
    assert len(api.requests) == 1
