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
    gone = _in_thread(threading.get_native_id)
    assert sched.set_thread(gone, slice_ns=sched.SHORT_SLICE_NS) is False
    assert sched.demote(gone) is False
