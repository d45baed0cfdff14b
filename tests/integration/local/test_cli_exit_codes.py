"""Every exit code of the `vortex` CLI against real local mode: 0 success, 1 a function or API
error, 2 bad usage, 3 an unreachable API, 4 a refused key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.local.cli import vortex
from tests.integration.local.conftest import ApiProcess, free_port

ADMIN, INVOKE = "admin-secret", "invoke-secret"


@pytest.fixture
def code(tmp_path: Path) -> Callable[[str, str], Path]:
    def write(name: str, text: str) -> Path:
        path = tmp_path / f"{name}.js"
        path.write_text(text)
        return path

    return write


def test_0_on_success(api: ApiProcess, code: Callable[[str, str], Path]) -> None:
    deploy = vortex(api.url, "deploy", str(code("ok", "return 42;")), "--name", "exit-ok")
    invoke = vortex(api.url, "invoke", "exit-ok")

    assert (deploy.returncode, invoke.returncode, invoke.stdout) == (0, 0, "42\n")


def test_1_when_the_function_throws(api: ApiProcess, code: Callable[[str, str], Path]) -> None:
    path = code("thrower", 'console.log("about to fail");\nthrow new TypeError("boom");')
    assert vortex(api.url, "deploy", str(path), "--name", "exit-throws").returncode == 0

    result = vortex(api.url, "invoke", "exit-throws")

    assert result.returncode == 1
    assert result.stdout == ""
    *logs, line = result.stderr.splitlines()
    assert [log.split(" ", 1)[1] for log in logs] == ["log about to fail"]
    assert line == "Error: FunctionError: TypeError: boom"
    assert "Traceback" not in result.stderr


def test_1_when_the_function_times_out(api: ApiProcess, code: Callable[[str, str], Path]) -> None:
    path = code("slow", "await new Promise((resolve) => setTimeout(resolve, 5000));")
    deploy = vortex(api.url, "deploy", str(path), "--name", "exit-slow", "--timeout-ms", "200")
    assert deploy.returncode == 0, deploy.stderr

    result = vortex(api.url, "invoke", "exit-slow")

    assert result.returncode == 1
    assert result.stderr.startswith("Error: Timeout: ")


def test_1_on_a_compile_error(api: ApiProcess, code: Callable[[str, str], Path]) -> None:
    result = vortex(api.url, "deploy", str(code("broken", "return 1;\nlet x = ;")))

    assert result.returncode == 1
    assert result.stderr.startswith("Error: CompileError: SyntaxError: ")
    assert "line 2, column 9" in result.stderr


def test_1_for_an_unknown_function(api: ApiProcess) -> None:
    result = vortex(api.url, "invoke", "no-such-function")

    assert (result.returncode, result.stderr) == (
        1,
        "Error: FunctionNotFound: no function 'no-such-function'\n",
    )


@pytest.mark.parametrize(
    "args",
    [
        ["invoke", "x", "--data", "{not json"],
        ["deploy", "/nonexistent/f.js"],
        ["deploy", "--frobnicate"],
        ["list", "--url", "not-a-url"],
        ["delete", "x"],
        ["nosuchcommand"],
    ],
)
def test_2_on_bad_usage(api: ApiProcess, args: list[str]) -> None:
    result = vortex(api.url, *args)

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr


def test_3_when_the_api_is_unreachable() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    result = vortex(url, "list")

    assert result.returncode == 3
    assert result.stderr.startswith(
        f"Error: ApiUnreachable: cannot reach the Vortex API at {url}: "
    )
    assert len(result.stderr.splitlines()) == 1


def test_4_when_the_key_is_refused(
    api_factory: Callable[..., ApiProcess], code: Callable[[str, str], Path]
) -> None:
    secured = api_factory(
        VORTEX_ADMIN_KEY=ADMIN, VORTEX_INVOKE_KEYS=INVOKE, VORTEX_LOCAL_WORKERS="1"
    )
    path = str(code("guarded", "return 'guarded';"))

    no_key = vortex(secured.url, "list")
    wrong_key = vortex(secured.url, "deploy", path, "--key", "nope")
    invoke_key = vortex(secured.url, "deploy", path, "--name", "guarded", VORTEX_API_KEY=INVOKE)
    admin = vortex(secured.url, "deploy", path, "--name", "guarded", VORTEX_API_KEY=ADMIN)
    invoked = vortex(secured.url, "invoke", "guarded", "--key", INVOKE)
    not_invoked = vortex(secured.url, "invoke", "guarded")

    assert (no_key.returncode, no_key.stderr) == (
        4,
        "Error: Unauthorized: a Bearer API key is required\n",
    )
    assert (wrong_key.returncode, wrong_key.stderr) == (4, "Error: Unauthorized: unknown API key\n")
    assert invoke_key.returncode == 4
    assert invoke_key.stderr.startswith("Error: Forbidden: ")
    assert (admin.returncode, admin.stdout) == (0, "guarded\n")
    assert (invoked.returncode, invoked.stdout) == (0, '"guarded"\n')
    assert not_invoked.returncode == 4
