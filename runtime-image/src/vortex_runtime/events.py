"""Strict validation of an invocation's event: RFC 8259 JSON text in UTF-8, or `InvalidJSON`.

server.py calls `event_json(body)` on every /invoke before the event goes anywhere near an
isolate, so that bad JSON is the caller's 400 and never a `FunctionError` that costs the
function its warm isolate (JSON.parse throwing there breaks the isolate). The API calls
`screen(body)` (through vortex_api/events.py) to refuse the worst of it before forwarding,
without parsing: the runtime parses anyway.

What is accepted is what JavaScript's JSON.parse accepts, and nothing more:

- UTF-8 only, without a byte order mark (RFC 8259 section 8.1): UTF-16 and UTF-32 bodies, NUL
  bytes, invalid or overlong sequences and UTF-8-encoded surrogates are refused.
- No `NaN`, `Infinity` or `-Infinity` (Python's json module takes them; JSON.parse does not).
- Arrays and objects nested at most `MAX_DEPTH` (512) deep. Results are bounded at the same
  depth, so whatever an event can hold a function can return.
- Exactly one JSON text: trailing data, comments, single quotes, trailing commas are refused.
- An empty body, or one of JSON whitespace only, is the event `null`.

Kept as JSON allows and JavaScript reads them: escaped lone surrogates (`"\\ud800"` is a
one-unit string), numbers of any length or exponent (one that overflows a double is
`Infinity` to the function, as with JSON.parse), and duplicate names (the last one wins).

Every check takes time linear in the body and none recurses. The depth is measured before
parsing, by a scan of the brackets outside strings, because Python's json module recurses
once per level: on deep input it fails with RecursionError, at a depth that depends on the
caller's stack.
"""

from __future__ import annotations

import json
from itertools import accumulate
from typing import NoReturn

from vortex_runtime.errors import InvalidJSON

MAX_DEPTH = 512

_BOM = b"\xef\xbb\xbf"
_UTF16_32_BOMS = (b"\xff\xfe", b"\xfe\xff")
_JSON_WHITESPACE = b" \t\n\r"
# Everything but quotes and brackets, which are all the depth scan needs.
_NOT_STRUCTURE = bytes(sorted(frozenset(range(256)) - set(b'"[]{}')))
# Openers become +1 and closers -1, as signed bytes.
_SIGNED = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
# The depth scan stops at the first chunk that goes too deep, so a flood of `[` costs little.
_CHUNK = 1 << 16
_TOO_DEEP = f"The event nests arrays and objects deeper than {MAX_DEPTH} levels"
_NOT_A_NUMBER = "NaN, Infinity and -Infinity are not JSON (RFC 8259 has no such numbers)"


def _not_a_number(_name: str) -> NoReturn:
    raise ValueError(_NOT_A_NUMBER)


# Only whether the text parses matters, not the values: numbers become their length (Python's
# int() refuses integers over 4300 digits, which JSON and JSON.parse accept, and small ints
# allocate nothing) and objects the number of their members (no dict is ever built).
_DECODER = json.JSONDecoder(
    parse_int=len, parse_float=len, parse_constant=_not_a_number, object_pairs_hook=len
)


def _blank(body: bytes) -> bool:
    return not body.strip(_JSON_WHITESPACE)


def _check_encoding(body: bytes) -> str:
    """The body as text if it is UTF-8 without a byte order mark; raises InvalidJSON."""
    if body.startswith(_BOM):
        raise InvalidJSON("The event starts with a UTF-8 byte order mark; send JSON without one")
    if body.startswith(_UTF16_32_BOMS) or b"\x00" in body:
        raise InvalidJSON(
            "The event has NUL bytes or a UTF-16 or UTF-32 byte order mark; send UTF-8 JSON"
        )
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidJSON(f"The event is not UTF-8 (invalid byte at offset {exc.start})") from None


def _unescaped(body: bytes) -> bytes:
    """`body` without escaped backslashes and escaped quotes: every quote left delimits a string.

    Exact for valid JSON (escapes pair up from the left); for anything else some bytes."""
    if b"\\" not in body:
        return body
    return body.replace(b"\\\\", b"").replace(b'\\"', b"")


def _outside_strings(body: bytes) -> bytes:
    """`body` with every string emptied to `""`: JSON's structure and scalars."""
    # Between the quotes are strings: the even pieces are outside them.
    return b'""'.join(_unescaped(body).split(b'"')[::2])


def _too_deep(body: bytes) -> bool:
    """Whether the arrays and objects of `body` nest deeper than `MAX_DEPTH`.

    Exact for valid JSON; for anything else an answer in linear time (a parse refuses it)."""
    if body.count(b"[") + body.count(b"{") <= MAX_DEPTH:
        return False  # fewer openers than the bound, strings included: most events
    marks = _unescaped(body).translate(None, _NOT_STRUCTURE)
    brackets = marks.replace(b'""', b"")
    if b'"' in brackets:
        # Some string holds a bracket (else every string is an adjacent pair of quotes here,
        # and the pairs found from the left are the strings): drop the strings one by one.
        brackets = b"".join(marks.split(b'"')[::2])
    signed = brackets.translate(_SIGNED)
    depth = 0
    for start in range(0, len(signed), _CHUNK):
        chunk = signed[start : start + _CHUNK]
        if max(accumulate(memoryview(chunk).cast("b"), initial=depth)) > MAX_DEPTH:
            return True
        depth += 2 * chunk.count(1) - len(chunk)
    return False


def screen(body: bytes) -> None:
    """Refuse, without parsing, what a runtime would refuse for its encoding, its depth or a
    NaN or Infinity outside strings. Linear in the body, and it builds nothing per value.

    What it lets through may still be malformed (a missing comma, a comment, a bad escape):
    `event_json` finds that."""
    if _blank(body):
        return
    if not body.isascii() or b"\x00" in body:
        _check_encoding(body)
    if _too_deep(body):
        raise InvalidJSON(_TOO_DEEP)
    if b"NaN" in body or b"Infinity" in body:  # rarely: then look outside strings
        outside = _outside_strings(body)
        if b"NaN" in outside or b"Infinity" in outside:
            raise InvalidJSON(_NOT_A_NUMBER)


def event_json(body: bytes) -> str:
    """The event's JSON text for the isolate ("null" for an empty body); raises InvalidJSON."""
    if _blank(body):
        return "null"
    text = _check_encoding(body)
    if _too_deep(body):
        raise InvalidJSON(_TOO_DEEP)
    try:
        _DECODER.decode(text)
    except RecursionError:  # not reached past the scan above; the last line of defence
        raise InvalidJSON(_TOO_DEEP) from None
    except ValueError as exc:
        raise InvalidJSON(f"The event is not valid JSON: {exc}") from None
    return text
