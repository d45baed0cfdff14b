"""The backstop for isolates that will not die.

A broken isolate is closed on a helper thread (one for all closes, in turn). If V8 has not
let go of it within the grace period (a built-in such as a large sort ignores termination),
nothing inside the process can reclaim it. The process then drains: it stops taking new
invocations (`on_stuck`: the server closes its listener, so callers are refused before
anything is sent and go to another runtime), lets the invocations in flight on other
isolates finish, each on its own thread and within its own timeout, and exits with status
70; the pod (or local-mode supervisor) starts a fresh one. A neighbour's call in flight
never fails because of it. Without a drain handler, or if the drain itself takes more than
its limit, the process exits at once.
Called by pool.py; __main__.py installs the drain handler.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import NoReturn, Protocol

from vortex_runtime import sched

log = logging.getLogger("vortex_runtime.watchdog")

EXIT_STATUS = 70  # EX_SOFTWARE
_grace_s = 2.0
_drain_s = 30.0
_closing = 0
_idle = threading.Condition()
_on_stuck: Callable[[str], None] | None = None
stuck: str | None = None  # what could not be stopped, once something could not


class Closable(Protocol):
    def close_now(self) -> None: ...


def configure(grace_ms: int, drain_ms: int | None = None) -> None:
    global _grace_s, _drain_s
    _grace_s = grace_ms / 1000
    if drain_ms is not None:
        _drain_s = drain_ms / 1000


def on_stuck(handler: Callable[[str], None] | None) -> None:
    """Call `handler` (from a helper thread) instead of exiting when an isolate will not die;
    it must stop new invocations and make the process exit once those in flight are done."""
    global _on_stuck
    _on_stuck = handler


def exit_now(what: str) -> NoReturn:
    log.critical("watchdog: exiting with status %d (%s)", EXIT_STATUS, what)
    sys.stderr.flush()
    os._exit(EXIT_STATUS)


def _fire(what: str) -> None:
    global stuck
    if stuck is not None:
        return  # draining already
    stuck = what
    handler = _on_stuck
    if handler is None:
        exit_now(f"{what} could not be terminated within {_grace_s:.1f} s")
    log.critical(
        "watchdog: %s could not be terminated within %.1f s; draining: no new invocations,"
        " those in flight finish (at most %.0f s), then the process exits with status %d",
        what,
        _grace_s,
        _drain_s,
        EXIT_STATUS,
    )
    backstop = threading.Timer(_drain_s + 5, exit_now, args=("the drain did not finish",))
    backstop.daemon = True
    backstop.start()
    try:
        handler(what)
    except Exception:
        log.exception("the drain handler failed")
        exit_now("the drain handler failed")


# Closes run one after another on one long-lived thread (starting threads per close stalls the
# event loop, which waits for each to start), watched by one more thread for the grace period.
_queue: queue.SimpleQueue[tuple[Closable, str]] = queue.SimpleQueue()
_current: tuple[str, float, int] | None = None  # what is being closed, its deadline, its number
_watched = threading.Condition()
_threads_started = False
_threads_lock = threading.Lock()


def _closer() -> None:
    global _current, _closing
    sched.demote(threading.get_native_id())  # closing is never urgent: it yields to serving
    number = 0
    while True:
        target, what = _queue.get()
        number += 1
        with _watched:
            _current = (what, time.monotonic() + _grace_s, number)
            _watched.notify_all()
        try:
            target.close_now()
        except Exception:
            log.exception("closing %s failed", what)
        finally:
            with _watched:
                _current = None
                _watched.notify_all()
            with _idle:
                _closing -= 1
                _idle.notify_all()


def _monitor() -> None:
    """Fire if the close under way has not finished by its deadline."""
    while True:
        with _watched:
            while _current is None:
                _watched.wait()
            what, deadline, number = _current
            while _current is not None and _current[2] == number:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                _watched.wait(left)
            late = _current is not None and _current[2] == number
        if late:
            _fire(what)
            with _watched:  # one firing is enough: wait for this close to end
                while _current is not None and _current[2] == number:
                    _watched.wait()


def close(target: Closable, what: str = "isolate") -> None:
    """Close `target` off the event loop; drain the process if that does not finish in time."""
    global _closing, _threads_started
    if not _threads_started:
        with _threads_lock:
            if not _threads_started:
                threading.Thread(target=_closer, name="vortex-close", daemon=True).start()
                threading.Thread(target=_monitor, name="vortex-watchdog", daemon=True).start()
                _threads_started = True
    with _idle:
        _closing += 1
    _queue.put((target, what))


def drain_seconds() -> float:
    return _drain_s


def wait_idle(timeout_s: float) -> bool:
    """Wait until every close started so far has finished (shutdown, tests)."""
    with _idle:
        return _idle.wait_for(lambda: _closing == 0, timeout_s)
