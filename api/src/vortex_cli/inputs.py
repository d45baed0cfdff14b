"""What the user hands a command, checked before anything is sent: events, env pairs, code files.

Pure functions, called by the commands (`commands/`). Bad input raises `click.BadParameter`, so
Click prints it as a usage error with exit code 2, and nothing reaches the API.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import BinaryIO

import click

from vortex_kube.contract import FUNCTION_NAME_PATTERN

STDIN = "-"
_NAME = re.compile(FUNCTION_NAME_PATTERN)


def _refuse_constant(name: str) -> None:
    # NaN and Infinity are Python's extension, not JSON; the API would refuse them as InvalidJSON.
    raise ValueError(f"{name} is not JSON")


def check_json(data: bytes, source: str) -> bytes:
    """`data` unchanged if it is JSON (an empty body is the null event), else BadParameter."""
    if not data.strip():
        return data
    try:
        json.loads(data, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"{source} is not JSON: {exc}", param_hint="--data") from None
    return data


def read_event(data: str | None, stdin: BinaryIO | None = None) -> bytes | None:
    """The event bytes of `--data`: a JSON value, `@file`, or `-` (or `@-`) for stdin; None
    without `--data` (the function gets the null event)."""
    if data is None:
        return None
    if data in (STDIN, "@-"):
        stream = stdin if stdin is not None else sys.stdin.buffer
        return check_json(stream.read(), "stdin")
    if data.startswith("@"):
        path = Path(data[1:])
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise click.BadParameter(
                f"cannot read {path}: {exc.strerror}", param_hint="--data"
            ) from None
        return check_json(content, str(path))
    return check_json(data.encode(), "the value")


def parse_env(pairs: tuple[str, ...]) -> dict[str, str]:
    """`--env K=V` options as a dict (a later K wins); the API checks the names and sizes."""
    env: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--env")
        env[name] = value
    return env


def read_code(path: Path) -> str:
    """The code of a function file (UTF-8)."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise click.BadParameter(f"{path} is not UTF-8 text", param_hint="FILE") from None
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint="FILE") from None


def name_from(text: str) -> str:
    """A function name made from a file or directory name: lower-case, DNS-label characters."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:60].strip("-")
    return name if _NAME.match(name) else "hello"


def check_name(name: str, param_hint: str = "--name") -> str:
    """`name` if it is a valid function name (a DNS label of at most 60 characters)."""
    if not _NAME.match(name):
        raise click.BadParameter(
            f"{name!r} is not a function name: lower-case letters, digits and '-', at most 60,"
            " starting and ending with a letter or digit",
            param_hint=param_hint,
        )
    return name
