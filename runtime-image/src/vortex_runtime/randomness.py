"""Unpredictable hex tokens for the hot path, without a system call for each.

Every invocation needs two: its id, when the caller sent none (server.py), and the seed of its
`Math.random` (isolate.py). Reading the kernel's generator for each was, under load, among the
largest single costs of a request in the runtime's own code. These are keyed BLAKE2b of a
counter instead: the key comes from the kernel once per process (and again in a forked child),
so tokens are unpredictable without it and never repeat within a process.
"""

from __future__ import annotations

import hashlib
import itertools
import os

_key = os.urandom(32)
_counter = itertools.count()


def _rekey() -> None:
    global _key, _counter
    _key = os.urandom(32)
    _counter = itertools.count()


os.register_at_fork(after_in_child=_rekey)


def token_hex(nbytes: int) -> str:
    """`nbytes` (at most 64) random bytes as `2 * nbytes` hex digits."""
    return hashlib.blake2b(
        next(_counter).to_bytes(8, "little"), key=_key, digest_size=nbytes
    ).hexdigest()
