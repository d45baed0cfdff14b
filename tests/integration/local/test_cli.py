"""The `vortex` CLI as a subprocess against real local mode: deploy, invoke (--data, @file,
stdin), list, get, delete, and init then deploy of each template."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.integration.local.cli import vortex
from tests.integration.local.conftest import ApiProcess

GREETER = """\
console.log("greeting", event && event.name);
console.warn("second line");
return { hello: event && event.name, env: context.env.MODE };
"""


@pytest.fixture(scope="module")
def greeter(api: ApiProcess, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("code") / "greeter.js"
    path.write_text(GREETER)
    result = vortex(api.url, "deploy", str(path), "--name", "greeter", "--env", "MODE=cli")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "greeter\n"
    return "greeter"


def test_deploy_without_a_name_prints_the_generated_id(api: ApiProcess, tmp_path: Path) -> None:
    path = tmp_path / "f.js"
    path.write_text("return 1;")

    result = vortex(api.url, "deploy", str(path), "--timeout-ms", "2000", "-o", "json")

    assert result.returncode == 0, result.stderr
    function_id = json.loads(result.stdout)["function_id"]
    shown = json.loads(vortex(api.url, "get", function_id, "-o", "json").stdout)
    assert shown["spec"]["timeout_ms"] == 2000


def test_invoke_with_data(api: ApiProcess, greeter: str) -> None:
    result = vortex(api.url, "invoke", greeter, "--data", '{"name": "Ada"}')

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"hello": "Ada", "env": "cli"}
    logs = result.stderr.splitlines()
    assert [line.split(" ", 1)[1] for line in logs] == ["log greeting Ada", "warn second line"]
    assert all(line.split(" ", 1)[0].endswith("Z") for line in logs)


def test_invoke_with_a_file(api: ApiProcess, greeter: str, tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text('{"name": "Grace"}')

    result = vortex(api.url, "invoke", greeter, "--data", f"@{event}")

    assert json.loads(result.stdout)["hello"] == "Grace"


@pytest.mark.parametrize("args", [["-"], ["--data", "-"]])
def test_invoke_with_stdin(api: ApiProcess, greeter: str, args: list[str]) -> None:
    result = vortex(api.url, "invoke", greeter, *args, input='{"name": "Linus"}\n')

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["hello"] == "Linus"


def test_invoke_in_json_is_the_whole_answer(api: ApiProcess, greeter: str) -> None:
    result = vortex(api.url, "invoke", greeter, "-o", "json")

    doc = json.loads(result.stdout)
    assert doc["output"] == {"hello": None, "env": "cli"}
    assert [entry["level"] for entry in doc["logs"]] == ["log", "warn"]
    assert doc["execution_time_ms"] >= 0
    assert result.stderr == ""


def test_list_and_get(api: ApiProcess, greeter: str) -> None:
    listed = vortex(api.url, "list")
    as_json = json.loads(vortex(api.url, "list", "-o", "json").stdout)
    shown = vortex(api.url, "get", greeter)

    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split()[:3] == ["NAME", "STATUS", "ISOLATION"]
    assert [greeter, "Ready", "shared"] in [row.split()[:3] for row in rows]
    assert greeter in [f["function_id"] for f in as_json["functions"]]
    lines = [line.split() for line in shown.stdout.splitlines()]
    assert ["name", greeter] in lines
    assert ["env", "MODE", "cli"] in lines


def test_delete(api: ApiProcess, tmp_path: Path) -> None:
    path = tmp_path / "doomed.js"
    path.write_text("return 'bye';")
    assert vortex(api.url, "deploy", str(path), "--name", "doomed").returncode == 0

    refused = vortex(api.url, "delete", "doomed")
    deleted = vortex(api.url, "delete", "doomed", "--yes")
    gone = vortex(api.url, "get", "doomed")

    assert refused.returncode == 2
    assert "--yes" in refused.stderr
    assert (deleted.returncode, deleted.stdout) == (0, "deleted doomed\n")
    assert (gone.returncode, gone.stderr) == (1, "Error: FunctionNotFound: no function 'doomed'\n")


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("hello", {"message": "Hello, Ada!"}),
        ("handler", {"message": "Hello, Ada!", "function": "starter-{template}"}),
    ],
)
def test_init_then_deploy(
    api: ApiProcess, tmp_path: Path, template: str, expected: dict[str, str]
) -> None:
    directory = tmp_path / f"starter-{template}"

    init = vortex(api.url, "init", str(directory), "--template", template)
    again = vortex(api.url, "init", str(directory), "--template", template)
    manifest = yaml.safe_load((directory / "vortexfunction.yaml").read_text())
    name = manifest["metadata"]["name"]
    deploy = vortex(api.url, "deploy", str(directory / "function.js"), "--name", name)
    invoke = vortex(api.url, "invoke", name, "--data", '{"name": "Ada"}')

    assert init.returncode == 0, init.stderr
    assert (again.returncode, "not overwriting" in again.stderr) == (2, True)
    assert name == f"starter-{template}"
    assert deploy.returncode == 0, deploy.stderr
    assert invoke.returncode == 0, invoke.stderr
    assert json.loads(invoke.stdout) == {
        key: value.format(template=template) for key, value in expected.items()
    }
    assert invoke.stderr.split(" ", 1)[1] == "log greeting Ada\n"
