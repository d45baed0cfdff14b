"""The backstop for isolates that will not die.

A broken isolate is closed on a helper thread. If V8 has not let go of it within the grace
period, nothing inside the process can reclaim it, so the process exits with status 70 and the
pod (or local-mode supervisor) starts a fresh one. Called by pool.py.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Protocol

log = logging.getLogger("vortex_runtime.watchdog")

EXIT_STATUS = 70  # EX_SOFTWARE
_grace_s = 2.0
_closing = 0
_idle = threading.Condition()


class Closable(Protocol):
    def close_now(self) -> None: ...


def configure(grace_ms: int) -> None:
    global _grace_s
    _grace_s = grace_ms / 1000


def _fire(what: str) -> None:
    log.critical("watchdog: %s could not be terminated within %.1f s; exiting", what, _grace_s)
    sys.stderr.flush()
    os._exit(EXIT_STATUS)


def close(target: Closable, what: str = "isolate") -> None:
    """Close `target` off the event loop, and exit the process if that does not finish in time."""
    timer = threading.Timer(_grace_s, _fire, args=(what,))
    timer.daemon = True

    global _closing

    def run() -> None:
        global _closing
        try:
            target.close_now()
        except Exception:
            log.exception("closing %s failed", what)
        finally:
            timer.cancel()
            with _idle:
                _closing -= 1
                _idle.notify_all()

    with _idle:
        _closing += 1
    timer.start()
    threading.Thread(target=run, name="vortex-close", daemon=True).start()


def wait_idle(timeout_s: float) -> bool:
    """Wait until every close started so far has finished (shutdown, tests)."""
    with _idle:
        return _idle.wait_for(lambda: _closing == 0, timeout_s)
