"""The execute route's check of an event before it is forwarded to a runtime.

`check_event(body)` refuses, with a 400 `InvalidJSON`, what a runtime would refuse for its
encoding (UTF-8 only, no byte order mark), its depth (at most `MAX_DEPTH` levels) or a `NaN` or
`Infinity` outside strings: the rules are the runtime's own (vortex_runtime/events.py), applied
by a linear scan of the bytes that parses nothing. A runtime still parses every event it gets
and answers what is left (a missing comma, a comment, a bad escape) with its own 400
`InvalidJSON`, which the API passes through; so the shared API pays a few milliseconds per
megabyte, not a parse and the memory of a parsed tree.
Called by routes/execute.py in both backends; `/async` also parses (`parse_event`).
"""

from __future__ import annotations

from vortex_api.errors import BadRequest
from vortex_runtime.errors import InvalidJSON
from vortex_runtime.events import MAX_DEPTH, event_json, screen

__all__ = ["MAX_DEPTH", "check_event", "parse_event"]


def check_event(body: bytes) -> None:
    """Raise BadRequest (`InvalidJSON`) for an event no runtime would take."""
    try:
        screen(body)
    except InvalidJSON as exc:
        raise BadRequest(exc.message, error_type="InvalidJSON") from None


def parse_event(body: bytes) -> None:
    """Raise BadRequest (`InvalidJSON`) for an event that is not wholly valid JSON: the
    runtime's own parse, for an event that is kept to run later (`/async`), which must be
    refused now rather than found dead."""
    try:
        event_json(body)
    except InvalidJSON as exc:
        raise BadRequest(exc.message, error_type="InvalidJSON") from None
