"""What the API says once it listens: local mode's banner (text and JSON) or a ready line."""

from __future__ import annotations

import json
import logging
import shlex
from pathlib import Path

import pytest
from pydantic import SecretStr

from vortex_api import banner, logs
from vortex_api.settings import Settings


def _local(tmp_path: Path, **fields: object) -> Settings:
    return Settings(**{"data_dir": tmp_path / "data", "local_workers": 3, **fields})  # type: ignore[arg-type]


def test_banner_names_url_workers_data_dir_and_open_auth(tmp_path: Path) -> None:
    text = banner.local_banner(_local(tmp_path), 8080, cli=None).text()

    lines = text.split("\n")
    assert lines[0] == ""
    assert lines[-1] == ""
    assert "Vortex local mode is ready on http://127.0.0.1:8080" in lines
    assert "  workers   3 runtime processes, reached through the API" in lines
    assert f"  data dir  {(tmp_path / 'data').resolve()}" in lines
    assert any(line.startswith("  auth      off") for line in lines)
    assert "Ctrl-C stops the API and its workers." in lines


def test_one_worker_is_one_process(tmp_path: Path) -> None:
    text = banner.local_banner(_local(tmp_path, local_workers=1), 8080, cli=None).text()

    assert "  workers   1 runtime process, reached through the API" in text.split("\n")


def test_readme_shows_the_banner_as_make_run_prints_it() -> None:
    """README.md's Local mode section shows the banner of the default settings, run from the
    repository (`make run`), with `/home/you/vortex` for the repository."""
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
    settings = Settings(data_dir=Path("/home/you/vortex/.vortex"))

    shown = banner.local_banner(settings, 8080, cli=".venv/bin/vortex").text()

    assert f"```text{shown}```" in readme


def test_commands_deploy_then_execute_hello(tmp_path: Path) -> None:
    deploy, execute = banner.local_banner(_local(tmp_path), 8081, cli=None).commands

    words = shlex.split(deploy)
    assert words[:5] == ["curl", "-s", "-X", "POST", "http://127.0.0.1:8081/deploy"]
    body = json.loads(words[words.index("-d") + 1])
    assert body == {"name": "hello", "code": 'return "Hello Vortex!";'}
    assert execute == "curl -s -X POST http://127.0.0.1:8081/execute/hello"


def test_commands_carry_the_admin_key_by_name_never_by_value(tmp_path: Path) -> None:
    settings = _local(tmp_path, admin_key=SecretStr("s3cret"), invoke_keys=SecretStr("a,b"))

    shown = banner.local_banner(settings, 8080, cli="vortex")

    assert (
        shown.auth
        == "on: VORTEX_ADMIN_KEY for deploy, list and delete; VORTEX_INVOKE_KEYS for execute"
    )
    assert all('Bearer $VORTEX_ADMIN_KEY"' in command for command in shown.commands[:2])
    assert shown.commands[2].count('--key "$VORTEX_ADMIN_KEY"') == 2
    assert "s3cret" not in shown.text() + json.dumps(shown.fields())


def test_invoke_keys_alone_guard_execute_only(tmp_path: Path) -> None:
    shown = banner.local_banner(_local(tmp_path, invoke_keys=SecretStr("k")), 8080, cli=None)

    deploy, execute = shown.commands
    assert "Authorization" not in deploy
    assert execute.endswith('-H "Authorization: Bearer <invoke key>"')
    assert shown.auth == "on: VORTEX_INVOKE_KEYS for execute"


def test_admin_key_alone_leaves_execute_open(tmp_path: Path) -> None:
    shown = banner.local_banner(_local(tmp_path, admin_key=SecretStr("k")), 8080, cli=None)

    assert shown.auth == "on: VORTEX_ADMIN_KEY for deploy, list and delete; execute open"


def test_cli_command_names_the_url_only_off_the_default(tmp_path: Path) -> None:
    at_default = banner.local_banner(_local(tmp_path), 8080, cli=".venv/bin/vortex").commands[2]
    elsewhere = banner.local_banner(_local(tmp_path), 9000, cli="vortex").commands[2]

    assert at_default == (
        ".venv/bin/vortex init hello && .venv/bin/vortex deploy hello/function.js --name hello"
        """ && .venv/bin/vortex invoke hello --data '{"name": "Ada"}'"""
    )
    assert elsewhere.count("--url http://127.0.0.1:9000") == 2


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:80"),
        ("0.0.0.0", "http://127.0.0.1:80"),
        ("::", "http://[::1]:80"),
        ("localhost", "http://localhost:80"),
    ],
)
def test_url_is_one_a_client_on_this_machine_calls(host: str, url: str) -> None:
    assert banner.url_of(host, 80) == url


def test_json_banner_is_one_line_with_the_facts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "vortex_api")

    banner.announce(_local(tmp_path), 8080)

    [record] = caplog.records
    entry = json.loads(logs.JsonFormatter().format(record))
    assert entry["message"] == "vortex local mode ready on http://127.0.0.1:8080"
    assert entry["url"] == "http://127.0.0.1:8080"
    assert (entry["workers"], entry["admin_key"], entry["invoke_keys"]) == (3, False, False)
    assert entry["data_dir"] == str((tmp_path / "data").resolve())
    assert entry["commands"][1] == "curl -s -X POST http://127.0.0.1:8080/execute/hello"
    assert "\n" not in logs.JsonFormatter().format(record)
    assert logs.TextFormatter().format(record).startswith("\nVortex local mode is ready on ")


def test_cluster_api_says_one_ready_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "vortex_api")

    banner.announce(Settings(backend="kubernetes", host="0.0.0.0", namespace="fns"), 8080)

    [record] = caplog.records
    assert record.getMessage() == (
        "vortex api ready, listening on 0.0.0.0:8080 (kubernetes backend, namespace fns)"
    )
    assert not hasattr(record, "banner")
