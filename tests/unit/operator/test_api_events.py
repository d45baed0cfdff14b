"""Events created through the Kubernetes API, for the autoscaler's loop (outside kopf's handlers,
where kopf's poster cannot be reached)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from vortex_operator.events import ApiEvents
from vortex_operator.model import FunctionRef


class Creator:
    def __init__(self, fail: bool = False) -> None:
        self.created: list[dict[str, Any]] = []
        self.fail = fail

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        if self.fail:
            raise RuntimeError("the API refused")
        self.created.append(obj)
        return obj


REF = FunctionRef(namespace="ns", name="burst", uid="uid-1")


async def test_an_event_names_the_function_it_is_about() -> None:
    kube = Creator()
    ApiEvents(kube).normal(REF, "ScaledUp", "1 -> 6: panic")
    await asyncio.sleep(0)
    [event] = kube.created
    assert event["kind"] == "Event"
    assert event["metadata"] == {"generateName": "burst.", "namespace": "ns"}
    assert event["involvedObject"]["kind"] == "VortexFunction"
    assert event["involvedObject"]["uid"] == "uid-1"
    assert (event["type"], event["reason"], event["message"]) == (
        "Normal",
        "ScaledUp",
        "1 -> 6: panic",
    )


async def test_a_failed_event_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    ApiEvents(Creator(fail=True)).warning(REF, "ScaleFailed", "no")
    await asyncio.sleep(0.01)
    assert "could not post the event ScaleFailed" in caplog.text


def test_outside_a_loop_of_its_own_it_needs_none_of_kopf() -> None:
    async def post() -> None:
        ApiEvents(Creator()).normal(REF, "ScaledDown", "6 -> 3")
        await asyncio.sleep(0)

    asyncio.run(post())  # kopf.event would raise LookupError here
