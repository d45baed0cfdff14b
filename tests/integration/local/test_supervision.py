"""Worker supervision: a killed worker is restarted, Ctrl-C stops every worker, data persists."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from bench.procs import alive
from tests.integration.local.conftest import ApiProcess


def _wait_for(predicate: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_crashed_worker_is_restarted(api_factory: Callable[..., ApiProcess]) -> None:
    api = api_factory(VORTEX_LOCAL_WORKERS="1")
    with httpx.Client(base_url=api.url, timeout=60) as client:
        fid = client.post("/deploy", json={"code": "return 7;"}).json()["function_id"]
        assert client.post(f"/execute/{fid}").json()["output"] == 7
        [worker] = api.workers()

        os.kill(worker, signal.SIGKILL)
        # Once the API has reaped it, it knows the worker is gone.
        _wait_for(lambda: not Path(f"/proc/{worker}").exists())
        response = client.post(f"/execute/{fid}")

        assert response.status_code == 200
        assert response.json()["output"] == 7
        [restarted] = api.workers()
        assert restarted != worker
        assert client.get("/health").json()["status"] == "healthy"


def test_ctrl_c_stops_every_worker(api_factory: Callable[..., ApiProcess]) -> None:
    api = api_factory(VORTEX_LOCAL_WORKERS="3")
    workers = api.workers()
    assert len(workers) == 3

    assert api.stop() == 0

    _wait_for(lambda: not any(alive(pid) for pid in workers), timeout_s=5)


def test_workers_serve_on_a_cpu_each(api_factory: Callable[..., ApiProcess]) -> None:
    """With VORTEX_SERVE_CPU=auto, each worker's serving threads share one CPU, and the workers
    take the CPUs in turn."""
    allowed = sorted(os.sched_getaffinity(0))
    api = api_factory(VORTEX_LOCAL_WORKERS="2", VORTEX_SERVE_CPU="auto")
    with httpx.Client(base_url=api.url, timeout=60) as client:
        fid = client.post("/deploy", json={"code": "return 7;"}).json()["function_id"]
        assert client.post(f"/execute/{fid}").json()["output"] == 7
    cpus = sorted(tuple(sorted(os.sched_getaffinity(pid))) for pid in api.workers())
    assert cpus == sorted([(allowed[0],), (allowed[1 % len(allowed)],)])


def test_workers_die_with_a_killed_api(api_factory: Callable[..., ApiProcess]) -> None:
    api = api_factory(VORTEX_LOCAL_WORKERS="2")
    workers = api.workers()

    os.kill(api.pid, signal.SIGKILL)

    _wait_for(lambda: not any(alive(pid) for pid in workers), timeout_s=10)


def test_functions_survive_a_restart(api_factory: Callable[..., ApiProcess]) -> None:
    first = api_factory()
    with httpx.Client(base_url=first.url, timeout=60) as client:
        fid = client.post("/deploy", json={"code": "return 'kept';", "name": "kept"}).json()[
            "function_id"
        ]
    first.stop()

    second = api_factory(first.data_dir)
    with httpx.Client(base_url=second.url, timeout=60) as client:
        response = client.post(f"/execute/{fid}")
    assert response.status_code == 200
    assert response.json()["output"] == "kept"


def test_runtime_path_picks_the_worker_executable(
    api_factory: Callable[..., ApiProcess], tmp_path: Path
) -> None:
    """VORTEX_RUNTIME_PATH (the seed's setting) names the runtime executable workers run."""
    runtime = Path(sys.executable).with_name("vortex-runtime")
    marker = tmp_path / "ran"
    wrapper = tmp_path / "my-runtime"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {marker}\nexec {runtime} "$@"\n')
    wrapper.chmod(0o755)
    api = api_factory(VORTEX_LOCAL_WORKERS="1", VORTEX_RUNTIME_PATH=str(wrapper))
    with httpx.Client(base_url=api.url, timeout=60) as client:
        fid = client.post("/deploy", json={"code": "return 'via path';"}).json()["function_id"]
        assert client.post(f"/execute/{fid}").json()["output"] == "via path"
    assert marker.read_text().startswith("serve --store ")


def _unix_paths(pid: int) -> list[str]:
    """The paths of the Unix sockets process `pid` holds, listening or accepted ones alike."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    paths = []
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[6] in inodes:
            paths.append(fields[7])
    return paths


def test_invocations_reach_the_workers_through_unix_sockets(
    api_factory: Callable[..., ApiProcess],
) -> None:
    """Each worker serves on a Unix socket in a private directory as well as its port, and the
    API's invocations go through the socket; a restarted worker gets its socket back; stopping
    the API removes the directory."""
    api = api_factory(VORTEX_LOCAL_WORKERS="1")
    with httpx.Client(base_url=api.url, timeout=60) as client:
        fid = client.post("/deploy", json={"code": "return 7;"}).json()["function_id"]
        assert client.post(f"/execute/{fid}").json()["output"] == 7
        [worker] = api.workers()
        paths = _unix_paths(worker)
        [listening] = {p for p in paths if p.endswith("worker-0.sock")}
        directory = Path(listening).parent
        assert directory.stat().st_mode & 0o777 == 0o700
        # the listening socket, and the connection the API's invocation came in on
        assert paths.count(listening) >= 2, paths

        os.kill(worker, signal.SIGKILL)
        _wait_for(lambda: not Path(f"/proc/{worker}").exists())
        assert client.post(f"/execute/{fid}").json()["output"] == 7
        [restarted] = api.workers()
        assert _unix_paths(restarted).count(listening) >= 2
    assert api.stop() == 0
    assert not directory.exists()
