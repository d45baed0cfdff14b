"""Vortex runtime: runs JavaScript functions in warm V8 isolates behind a small HTTP protocol.

`check(code)` compiles code without running it (the API rejects bad code at deploy time);
`python -m vortex_runtime serve` starts the server (see README, "The runtime protocol").
"""

from vortex_runtime.errors import CompileError, RuntimeFailure
from vortex_runtime.isolate import check, is_handler_form
from vortex_runtime.loader import sha256_hex

__all__ = ["CompileError", "RuntimeFailure", "check", "is_handler_form", "sha256_hex"]
