"""The CLI's commands, one module per verb (or per resource); `main.py` adds them to the group.

`common.py` holds what they share: the `--url`, `--key` and `-o` options, and the one place an
error becomes its line and exit code.
"""

from __future__ import annotations

from vortex_cli.commands import (
    deploy,
    dev,
    functions,
    init,
    invocations,
    invoke,
    kv,
    logs,
    versions,
)

COMMANDS = [
    deploy.deploy,
    invoke.invoke,
    invocations.invocation,
    invocations.dead_letters,
    invocations.retry,
    functions.list_functions,
    functions.get,
    functions.delete,
    versions.versions,
    versions.rollback,
    versions.traffic,
    logs.logs,
    kv.kv,
    init.init,
    dev.dev,
]

__all__ = ["COMMANDS"]
