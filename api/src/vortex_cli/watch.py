"""Saves of one file, as an iterator: what `vortex dev` redeploys on.

The only module of the CLI that imports watchfiles. It watches the file's directory, not the file,
because editors often save by writing a new file and renaming it over the old one, which ends a
watch on the file itself. Called by `commands/dev.py`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

from watchfiles import Change, watch

# How long a burst of writes (an editor's save) may settle before it counts as one save.
STEP_MS = 50


def saves(path: Path, stop: threading.Event | None = None) -> Iterator[None]:
    """Yield once per save of `path` (written or created; its deletion is not a save), until
    `stop` is set. Ctrl-C raises KeyboardInterrupt, as anywhere else."""
    target = path.resolve()

    def is_save(change: Change, changed: str) -> bool:
        return change != Change.deleted and Path(changed) == target

    for _ in watch(
        target.parent,
        watch_filter=is_save,
        stop_event=stop,
        step=STEP_MS,
        recursive=False,
    ):
        yield
