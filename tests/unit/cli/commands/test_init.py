"""`vortex init [DIR]`: the files it writes, the name it picks, and that it never overwrites."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import Result

from vortex_cli.templates import HANDLER, HELLO

Cli = Callable[..., Result]


def test_writes_the_hello_starter_named_after_the_directory(cli: Cli, tmp_path: Path) -> None:
    target = tmp_path / "My_App"

    result = cli("init", str(target))

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"wrote {target / 'function.js'}",
        f"wrote {target / 'vortexfunction.yaml'}",
    ]
    assert "vortex deploy" in result.stderr
    assert (target / "function.js").read_text() == HELLO
    manifest = yaml.safe_load((target / "vortexfunction.yaml").read_text())
    assert manifest["metadata"]["name"] == "my-app"
    assert manifest["spec"]["code"] == HELLO


def test_the_handler_template_with_a_name(cli: Cli, tmp_path: Path) -> None:
    result = cli("init", str(tmp_path), "--template", "handler", "--name", "greeter", "-o", "json")

    assert json.loads(result.stdout) == {
        "name": "greeter",
        "template": "handler",
        "files": [str(tmp_path / "function.js"), str(tmp_path / "vortexfunction.yaml")],
    }
    assert (tmp_path / "function.js").read_text() == HANDLER


def test_the_current_directory_by_default(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    assert cli("init").exit_code == 0
    assert (tmp_path / "function.js").exists()


@pytest.mark.parametrize("existing", ["function.js", "vortexfunction.yaml"])
def test_refuses_to_overwrite_and_writes_nothing(cli: Cli, tmp_path: Path, existing: str) -> None:
    (tmp_path / existing).write_text("mine")

    result = cli("init", str(tmp_path))

    assert result.exit_code == 2
    assert "not overwriting" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == [existing]
    assert (tmp_path / existing).read_text() == "mine"


@pytest.mark.parametrize("args", [["--template", "nope"], ["--name", "Bad_Name"]])
def test_bad_usage_is_2(cli: Cli, tmp_path: Path, args: list[str]) -> None:
    result = cli("init", str(tmp_path / "new"), *args)

    assert result.exit_code == 2
    assert not (tmp_path / "new").exists()
