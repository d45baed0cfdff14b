"""The shell helpers of tests/cluster/lib.sh and the build's no-build mode, run by real bash.

These helpers end `down` and `up` when they return a stray status under `set -euo pipefail`, so
each is exercised exactly as those scripts call it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.fixtures import CLUSTER_SRC

LIB = CLUSTER_SRC / "lib.sh"


def bash(
    script: str, state: Path, pidns: bool = False, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run SCRIPT under `set -euo pipefail` with lib.sh sourced and STATE as the state dir;
    `pidns`: in a new PID namespace with its own /proc, where every process is this script's."""
    argv = ["bash", "-c", f"set -euo pipefail\n. {LIB}\n{script}"]
    if pidns:
        argv = ["unshare", "--pid", "--fork", "--mount-proc", *argv]
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "VORTEX_CLUSTER_DIR": str(state), **env},
    )


@pytest.fixture
def state(tmp_path: Path) -> Path:
    (tmp_path / "bin").mkdir()
    return tmp_path


@pytest.fixture
def fake_kubelet(state: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process whose executable is the state dir's bin/kubelet (a copy of sleep)."""
    exe = state / "bin" / "kubelet"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", exe)
    proc = subprocess.Popen([str(exe), "60"])
    yield proc
    proc.kill()
    proc.wait()


def test_our_pids_in_a_substitution_succeeds_when_nothing_is_ours(state: Path) -> None:
    # The failure `down` had: the last /proc entry is a live process that is not ours. In a PID
    # namespace of its own, the last entry is always one of this script's bash processes.
    proc = bash(
        "left=\"$(our_pids | sort -u | tr '\\n' ' ')\"; echo \"[$left]\"", state, pidns=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_pod_pids_in_a_substitution_succeeds_without_pod_cgroups(state: Path) -> None:
    proc = bash('x="$(pod_pids)"; echo "ok[$x]"', state, pidns=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok[")


def test_our_pids_finds_a_process_of_ours(
    state: Path, fake_kubelet: subprocess.Popen[bytes]
) -> None:
    proc = bash('x="$(our_pids)"; echo "$x"', state)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(fake_kubelet.pid)]


def test_a_failing_command_says_what_stopped_the_script(state: Path) -> None:
    proc = bash('step() { x="$(exit 3)"; }\nstep\necho unreachable', state)
    assert proc.returncode == 3
    assert "unreachable" not in proc.stdout
    assert 'stopped: `x="$(exit 3)"` exited 3' in proc.stderr
    assert "in step" in proc.stderr


def test_run_logged_reports_start_progress_and_end(state: Path) -> None:
    proc = bash("run_logged slow bash -c 'echo compiling; sleep 2.5'", state, VORTEX_PROGRESS_S="1")
    assert proc.returncode == 0, proc.stderr
    log = state / "log" / "build-slow.log"
    assert f"slow: started (log: {log})" in proc.stderr
    assert "slow: running, " in proc.stderr
    assert "(last: compiling)" in proc.stderr
    assert re.search(r"slow: done in [0-9]+s$", proc.stderr, re.M)
    assert log.read_text() == "compiling\n"


def test_run_logged_failure_shows_the_log_and_the_retry_command(state: Path) -> None:
    proc = bash(
        "RETRY='tests/cluster/build etcd' run_logged etcd bash -c 'echo undefined: foo; exit 2'",
        state,
    )
    assert proc.returncode == 2
    assert "etcd: FAILED after " in proc.stderr
    assert "s (exit 2)" in proc.stderr
    assert "    undefined: foo" in proc.stderr
    assert "retry it alone: tests/cluster/build etcd" in proc.stderr
    assert "stopped:" not in proc.stderr  # one report, not a second one from the ERR trap


def test_build_refuses_to_build_under_tests(state: Path) -> None:
    proc = subprocess.run(
        [str(CLUSTER_SRC / "build"), "crictl"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "VORTEX_CLUSTER_DIR": str(state), "VORTEX_CLUSTER_NO_BUILD": "1"},
    )
    assert proc.returncode == 1
    assert "crictl is not built, and tests do not build: run `tests/deps.sh`" in proc.stderr
    assert not (state / "log" / "build-crictl.log").exists()
