"""Pre-warmed isolates: a new function's first invocation takes a blank isolate from the stock,
which refills; the isolate gets that function's own limits, and nothing of any other function."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from vortex_runtime import metrics
from vortex_runtime.errors import MemoryLimitExceeded, OutputTooLarge
from vortex_runtime.isolate import Blank, Isolate, Limits
from vortex_runtime.prewarm import Prewarmer

from .conftest import context


async def _until(predicate, timeout_s: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout_s / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


async def test_a_new_function_starts_from_a_prewarmed_isolate(client_for, tmp_path) -> None:  # type: ignore[no-untyped-def]
    for name in ("a.js", "b.js", "c.js"):
        (tmp_path / name).write_text(f"return '{name}'")
    client: httpx.AsyncClient = await client_for(store_dir=tmp_path, prewarm_isolates=2)
    before = metrics.COLD_STARTS.labels(kind="prewarmed")._value.get()
    kinds = []
    for name in ("a.js", "b.js", "c.js", "a.js"):
        response = await client.post(f"/invoke/{name}")
        assert response.json()["output"] == name
        kinds.append(response.headers.get("x-vortex-cold-start-kind"))
        await asyncio.sleep(0.2)  # the stock refills between calls
    assert kinds == ["prewarmed", "prewarmed", "prewarmed", None]
    assert metrics.COLD_STARTS.labels(kind="prewarmed")._value.get() == before + 3
    text = (await client.get("/metrics")).text
    assert "vortex_runtime_prewarmed_isolates 2.0" in text
    assert "vortex_runtime_functions_loaded 3.0" in text


async def test_without_a_stock_a_new_isolate_is_started(client_for, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "a.js").write_text("return 1")
    client: httpx.AsyncClient = await client_for(store_dir=tmp_path, prewarm_isolates=0)
    response = await client.post("/invoke/a.js")
    assert response.headers["x-vortex-cold-start-kind"] == "isolate"


async def test_the_stock_refills_in_the_background() -> None:
    stock = Prewarmer(3)
    try:
        await stock.fill()
        assert stock.ready == 3
        taken = [stock.take(), stock.take()]
        assert all(isinstance(blank, Blank) for blank in taken)
        await _until(lambda: stock.ready == 3)
        for blank in taken:
            assert blank is not None
            blank.close_now()
    finally:
        stock.close()


@pytest.mark.parametrize(
    ("code", "limits", "failure"),
    [
        ("return new ArrayBuffer(40 << 20).byteLength", {"memory_mb": 32}, MemoryLimitExceeded),
        ("return 'x'.repeat(2000)", {"max_output_bytes": 1000}, OutputTooLarge),
    ],
    ids=["memory-limit", "output-limit"],
)
async def test_a_prewarmed_isolate_gets_the_functions_own_limits(
    code: str, limits: dict[str, int], failure: type[Exception]
) -> None:
    blank = await Blank.start()
    isolate = await Isolate.create(code, Limits(**limits), blank)
    try:
        with pytest.raises(failure):
            await isolate.invoke("null", context(), 2)
    finally:
        isolate.close_now()


async def test_a_prewarmed_isolate_holds_nothing_of_anyone(client_for, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Blank isolates are never handed back: a function's isolate never becomes another's."""
    (tmp_path / "writer.js").write_text("globalThis.secret = context.env.S; return 1")
    (tmp_path / "reader.js").write_text("return typeof globalThis.secret")
    client: httpx.AsyncClient = await client_for(store_dir=tmp_path, prewarm_isolates=1)
    headers = {"x-vortex-function": "writer", "x-vortex-env": '{"S": "hush"}'}
    assert (await client.post("/invoke/writer.js", headers=headers)).json()["output"] == 1
    for _ in range(3):
        await asyncio.sleep(0.2)
        response = await client.post("/invoke/reader.js", headers={"x-vortex-function": "r"})
        assert response.json()["output"] == "undefined"
