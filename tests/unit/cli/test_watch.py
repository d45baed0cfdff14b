"""`saves`: one yield per save of the watched file, none for its neighbours, until stopped."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from vortex_cli.watch import saves

WAIT_S = 10.0


def collect(path: Path, stop: threading.Event, seen: list[float]) -> None:
    for _ in saves(path, stop):
        seen.append(time.monotonic())


def test_a_save_is_seen_and_a_neighbour_is_not(tmp_path: Path) -> None:
    target = tmp_path / "f.js"
    target.write_text("return 1;")
    stop, seen = threading.Event(), []
    watcher = threading.Thread(target=collect, args=(target, stop, seen))
    watcher.start()
    try:
        time.sleep(0.5)  # let the watch start before anything changes
        (tmp_path / "other.js").write_text("return 2;")
        time.sleep(0.5)
        assert seen == []

        # A save by rename, as editors do: a new file moved over the old one.
        (tmp_path / "f.js.tmp").write_text("return 3;")
        (tmp_path / "f.js.tmp").replace(target)
        deadline = time.monotonic() + WAIT_S
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(seen) == 1
    finally:
        stop.set()
        watcher.join(WAIT_S)
    assert not watcher.is_alive()
