"""Processes from /proc: children, parents and liveness, for tests and benchmarks that must find
(and clean up) the processes a server started. Zombies count as gone.

Used by bench/e2e_bench.py and by the integration tests (tests/integration/local, cluster); it
lives here so that bench/ imports nothing from tests/."""

from __future__ import annotations

from pathlib import Path


def _stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/PID/stat after `comm` (state, ppid, ...), or None when it is gone.
    `comm` may contain spaces, so the split is after its closing parenthesis."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def parent(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields is not None else None


def children(pid: int) -> list[int]:
    """Live pids whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(entry.name)
            if fields is not None and fields[0] != "Z" and int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def descends_from(pid: int, ancestor: int) -> bool:
    """Whether `pid` is `ancestor` or one of its descendants."""
    current: int | None = pid
    while current is not None and current > 1:
        if current == ancestor:
            return True
        current = parent(current)
    return False
