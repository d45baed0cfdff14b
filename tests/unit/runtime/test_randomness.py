"""Hot-path tokens (randomness.py): invocation ids and Math.random seeds."""

from __future__ import annotations

import os
import re

from vortex_runtime import randomness


def test_tokens_are_hex_of_the_length_asked_and_never_repeat() -> None:
    tokens = [randomness.token_hex(16) for _ in range(10_000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", t) for t in tokens)
    assert len(set(tokens)) == len(tokens)
    assert re.fullmatch(r"[0-9a-f]{64}", randomness.token_hex(32))


def test_a_forked_child_draws_tokens_of_its_own() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next tokens, then out at once
        os.write(write, " ".join(randomness.token_hex(16) for _ in range(3)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    theirs = os.read(read, 4096).decode().split()
    os.close(read)
    ours = [randomness.token_hex(16) for _ in range(3)]
    assert len(theirs) == 3
    assert not set(theirs) & set(ours)
