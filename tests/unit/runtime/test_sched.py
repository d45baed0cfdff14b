"""Thread scheduling: short slices for the threads that serve, the lowest share for a hog."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from vortex_runtime import sched


def _in_thread(fn: Callable[[], Any]) -> Any:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(fn()))
    thread.start()
    thread.join()
    return out[0]


def test_a_thread_gets_a_short_slice_and_keeps_its_nice_value() -> None:
    def run() -> tuple[bool, int | None, int]:
        os.setpriority(os.PRIO_PROCESS, 0, 3)
        done = sched.set_thread(0, slice_ns=sched.SHORT_SLICE_NS)
        return done, sched.thread_slice_ns(), os.getpriority(os.PRIO_PROCESS, 0)

    assert _in_thread(run) == (True, sched.SHORT_SLICE_NS, 3)


def test_threads_started_by_a_short_slice_thread_inherit_it() -> None:
    def run() -> int | None:
        sched.set_thread(0, slice_ns=sched.SHORT_SLICE_NS)
        return _in_thread(sched.thread_slice_ns)

    assert _in_thread(run) == sched.SHORT_SLICE_NS


def test_a_demoted_thread_gets_the_lowest_priority_and_the_longest_slice() -> None:
    def run() -> tuple[bool, int | None, int]:
        sched.set_thread(0, slice_ns=sched.SHORT_SLICE_NS)
        done = sched.demote(threading.get_native_id())
        return done, sched.thread_slice_ns(), os.getpriority(os.PRIO_PROCESS, 0)

    assert _in_thread(run) == (True, sched.LONG_SLICE_NS, sched.DEMOTED_NICE)


def test_a_thread_that_is_gone_is_left_alone() -> None:
    with open("/proc/sys/kernel/pid_max") as f:
        gone = int(f.read()) + 1  # never a thread's id (a finished thread's may be reused)
    assert sched.set_thread(gone, slice_ns=sched.SHORT_SLICE_NS) is False
    assert sched.demote(gone) is False


def test_serving_is_pinned_only_where_the_layout_is_known() -> None:
    allowed = sorted(os.sched_getaffinity(0))
    assert len(allowed) >= 2, "these tests need a machine with two CPUs or more"
    assert sched.choose_cpu("off", 0) is None
    assert sched.choose_cpu("auto", None) is None  # a pod, or a runtime started by hand
    assert sched.choose_cpu("auto", 0) == allowed[0]  # local mode's workers, one CPU each
    assert sched.choose_cpu("auto", 1) == allowed[1]
    assert sched.choose_cpu("auto", len(allowed)) == allowed[0]
    assert sched.choose_cpu(str(allowed[-1]), None) == allowed[-1]
    assert sched.choose_cpu("4096", None) is None  # not one this process may use


def test_a_demoted_thread_leaves_the_serving_cpu(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(sched, "_spare_cpus", None)
    allowed = os.sched_getaffinity(0)
    serving = min(allowed)

    def run() -> tuple[set[int], set[int], set[int]]:
        assert sched.pin_serving(serving)
        pinned = os.sched_getaffinity(0)
        inherited = _in_thread(lambda: os.sched_getaffinity(0))
        sched.demote(threading.get_native_id())
        return pinned, inherited, os.sched_getaffinity(0)

    pinned, inherited, demoted = _in_thread(run)
    assert pinned == inherited == {serving}
    assert demoted == allowed - {serving}


def test_helpers_run_off_the_serving_cpu_until_they_serve(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(sched, "_spare_cpus", None)
    monkeypatch.setattr(sched, "_serving_cpu", None)
    allowed = os.sched_getaffinity(0)
    serving = min(allowed)

    def run() -> tuple[set[int], set[int]]:
        assert sched.pin_serving(serving)
        sched.to_spare(0)
        made = os.sched_getaffinity(0)
        sched.to_serving(threading.get_native_id())
        return made, os.sched_getaffinity(0)

    assert _in_thread(run) == (allowed - {serving}, {serving})
