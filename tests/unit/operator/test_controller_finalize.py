"""Controller.finalize: the finalizer removes code objects, bounded when MinIO is gone."""

from __future__ import annotations

import pytest

from tests.unit.fake_kube import FakeKube
from tests.unit.operator.conftest import function
from tests.unit.operator.fakes import FakeStore
from vortex_operator.controller import Controller
from vortex_operator.errors import Retry
from vortex_operator.events import RecordedEvents
from vortex_runtime import sha256_hex

KEY = f"functions/{sha256_hex(b'return 42;')}.js"


async def stored_function(controller: Controller, kube: FakeKube) -> dict:
    await controller.reconcile(function())
    return {**function(), "status": kube.statuses[("fns", "hello")]}


async def test_delete_removes_every_code_object(
    controller: Controller, kube: FakeKube, store: FakeStore, events: RecordedEvents
) -> None:
    await controller.reconcile(function(code="return 1;"))
    body = await stored_function(controller, kube)

    await controller.finalize(body, runtime_s=0, referenced=set())

    assert store.objects == {}
    assert set(store.deleted) == {KEY, f"functions/{sha256_hex(b'return 1;')}.js"}
    assert "CodeObjectsDeleted" in events.reasons()
    assert controller.states == {}


async def test_objects_other_functions_use_are_kept(
    controller: Controller, kube: FakeKube, store: FakeStore
) -> None:
    body = await stored_function(controller, kube)
    await controller.finalize(body, runtime_s=0, referenced={KEY})
    assert KEY in store.objects


async def test_minio_outage_retries_within_the_bound_then_gives_up_with_an_event(
    controller: Controller, kube: FakeKube, store: FakeStore, events: RecordedEvents
) -> None:
    body = await stored_function(controller, kube)
    store.down = True

    with pytest.raises(Retry):
        await controller.finalize(body, runtime_s=3, referenced=set())
    await controller.finalize(body, runtime_s=11, referenced=set())  # past delete_timeout_s=10

    assert KEY in store.objects
    warning = [e for e in events.items if e[2] == "CodeObjectsLeft"]
    assert len(warning) == 1
    assert "MinIO unreachable for 11s (limit 10s)" in warning[0][3]
    assert KEY in warning[0][3]


async def test_function_that_never_stored_code_finalizes_at_once(
    controller: Controller, store: FakeStore
) -> None:
    store.down = True
    await controller.finalize(function(), runtime_s=0, referenced=set())
    assert store.deleted == []
