"""What `python -m vortex_api` writes, as a new user sees it: one banner, then one log format.

Real local mode with real workers; the API's stderr goes to a file, read once it has stopped
(Ctrl-C), so every line it buffered is there.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.local.conftest import ApiProcess

TEXT_LINE = re.compile(
    r"\d\d:\d\d:\d\d (DEBUG|INFO |WARNING|ERROR|CRITICAL) (api|access|worker-\d+): "
)


class LoggedApi(ApiProcess):
    """A local-mode API whose stderr is kept in a file."""

    def __init__(self, tmp_path: Path, **env: str) -> None:
        super().__init__(tmp_path / "data", **env)
        self.stderr_path = tmp_path / "api.log"

    def output(self) -> str:
        assert self.stderr_path is not None
        return self.stderr_path.read_text()


@pytest.fixture
def started() -> Iterator[list[LoggedApi]]:
    """The APIs a test starts; all are stopped afterwards."""
    apis: list[LoggedApi] = []
    yield apis
    for api in apis:
        api.stop()
        api.kill_leftovers()


def _start(started: list[LoggedApi], tmp_path: Path, **env: str) -> LoggedApi:
    api = LoggedApi(tmp_path, **{"VORTEX_LOCAL_WORKERS": "2", **env})
    started.append(api)
    return api.start()


def _banner_when_out(api: LoggedApi) -> list[str]:
    """The banner's lines, once written (a moment after /health answers: lines go out in
    batches)."""
    deadline = time.monotonic() + 10
    while "Ctrl-C stops" not in api.output():
        assert time.monotonic() < deadline, api.output()
        time.sleep(0.05)
    return _split_banner(api.output())[0]


def _execute_twice_over_a_redeploy(client: httpx.Client) -> list[str]:
    """Run `hello`, change its code and run it again (its worker then says it retired the old
    code's isolates); the invocation ids of the two executions."""
    first = client.post("/execute/hello")
    client.post("/deploy", json={"name": "hello", "code": "return 2;"}).raise_for_status()
    second = client.post("/execute/hello")
    assert (first.status_code, second.status_code) == (200, 200)
    return [r.headers["x-vortex-invocation-id"] for r in (first, second)]


def _split_banner(output: str) -> tuple[list[str], list[str]]:
    """The banner's lines and the other lines."""
    start = output.index("\nVortex local mode is ready on ")
    end = output.index("Ctrl-C stops the API and its workers.\n", start)
    banner = [*output[start + 1 : end].splitlines(), "Ctrl-C stops the API and its workers."]
    rest = (output[:start] + output[end:].split("\n", 1)[1]).splitlines()
    return banner, [line for line in rest if line]


def test_text_logs_show_one_banner_whose_commands_work(
    started: list[LoggedApi], tmp_path: Path
) -> None:
    api = _start(started, tmp_path)
    with httpx.Client(base_url=api.url, timeout=60) as client:
        # "  try       <command>", then "            <command>" for each further one; the last
        # is the CLI's, where it is installed beside this Python
        deploy, execute, *cli = (line[12:] for line in _banner_when_out(api)[4:-1])
        deployed, executed = (
            subprocess.run(
                ["bash", "-c", command], capture_output=True, text=True, timeout=60, check=True
            ).stdout
            for command in (deploy, execute)
        )
        assert json.loads(deployed) == {"function_id": "hello"}
        assert json.loads(executed)["output"] == "Hello Vortex!"
        ids = _execute_twice_over_a_redeploy(client)
        for line in cli:
            _run_cli_line(line, tmp_path / "cli")
    assert api.stop() == 0

    output = api.output()
    banner, lines = _split_banner(output)
    assert output.count("Vortex local mode is ready on") == 1
    assert banner[0] == f"Vortex local mode is ready on {api.url}"
    assert banner[1] == "  workers   2 runtime processes, reached through the API"
    assert banner[2] == f"  data dir  {(tmp_path / 'data').resolve()}"
    assert banner[3].startswith("  auth      off")
    assert all(TEXT_LINE.match(line) for line in lines), "\n".join(lines)
    assert "Uvicorn running on" not in output
    assert any(
        re.search(r" worker-\d: retired an older pool of function hello ", line) for line in lines
    ), "\n".join(lines)
    access = [line for line in lines if " access: " in line]
    # curl's execute, two here, and the CLI's invoke
    assert len(access) == 3 + len(cli), "\n".join(access)
    for invocation_id in ids:
        [line] = [line for line in access if f"invocation={invocation_id}" in line]
        assert re.search(
            rf"access: POST /execute/hello 200 \d+\.\d ms invocation={invocation_id} function=hello$",
            line,
        )
    assert lines[-1].endswith(" INFO  api: stopped")


def _run_cli_line(line: str, cwd: Path) -> None:
    """Run the banner's `vortex` line as a user would, in a directory of its own."""
    cli = shlex.split(line)[0]
    cwd.mkdir()
    command = line.replace(cli, shlex.quote(str(Path(cli).resolve())))
    ran = subprocess.run(
        ["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    assert ran.returncode == 0, ran.stderr
    # init's and deploy's lines, then invoke's output
    assert json.loads(ran.stdout[ran.stdout.index("{") :]) == {"message": "Hello, Ada!"}


def test_json_logs_are_json_lines_only(started: list[LoggedApi], tmp_path: Path) -> None:
    api = _start(started, tmp_path, VORTEX_LOG_FORMAT="json", VORTEX_ADMIN_KEY="adm")
    auth = {"Authorization": "Bearer adm"}
    with httpx.Client(base_url=api.url, timeout=60, headers=auth) as client:
        client.post("/deploy", json={"name": "hello", "code": "return 1;"}).raise_for_status()
        ids = _execute_twice_over_a_redeploy(client)
    assert api.stop() == 0

    entries = [json.loads(line) for line in api.output().splitlines()]
    assert all(
        isinstance(e, dict) and {"time", "level", "logger", "message"} <= e.keys() for e in entries
    )
    [banner] = [e for e in entries if "workers" in e]
    assert banner["message"] == f"vortex local mode ready on {api.url}"
    assert (banner["url"], banner["workers"], banner["admin_key"]) == (api.url, 2, True)
    assert banner["data_dir"] == str((tmp_path / "data").resolve())
    access = [e for e in entries if e["logger"] == "vortex_api.access"]
    assert [e["invocation_id"] for e in access] == ids
    assert all((e["function"], e["status"]) == ("hello", 200) for e in access)
    assert all(isinstance(e["duration_ms"], float) for e in access)
    assert any(e["logger"] == "vortex_runtime.pool" and e["worker"] in (0, 1) for e in entries), (
        entries
    )
    assert not any("Uvicorn running on" in e["message"] for e in entries)


def test_a_worker_crash_reaches_the_user(started: list[LoggedApi], tmp_path: Path) -> None:
    """What a worker writes outside its log format (a traceback) comes out tagged."""
    wrapper = tmp_path / "runtime"
    wrapper.write_text(
        "#!/bin/sh\n"
        "echo 'Traceback (most recent call last):' >&2\n"
        "echo 'RuntimeError: the worker says goodbye' >&2\n"
        f'exec {shlex.quote(sys.executable)} -m vortex_runtime "$@"\n'
    )
    wrapper.chmod(0o755)
    api = _start(
        started,
        tmp_path,
        VORTEX_LOCAL_WORKERS="1",
        VORTEX_RUNTIME_PATH=str(wrapper),
    )
    assert api.stop() == 0

    lines = api.output().splitlines()
    assert any(
        line.endswith(" WARNING worker-0: Traceback (most recent call last):") for line in lines
    )
    assert any(
        line.endswith(" WARNING worker-0: RuntimeError: the worker says goodbye") for line in lines
    )
