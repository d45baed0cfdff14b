"""The async-invocation queue's contract, run against every implementation (`IMPLEMENTATIONS`:
SQLite in a file, and NATS JetStream on a real nats-server): enqueue and read back, repeats by
id and by idempotency key, claims of what is due and never twice at once, claims whose holder
went silent, write-backs only from the attempt holding the claim, release, dead letters and
redrive, depth, and what survives reopening.

Times are real (epoch seconds): JetStream hands messages out again on its own clock. A claim
is polled for (`_claim`), since a queue may hand out what is due a moment later."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.fixtures.nats import NatsServer
from vortex_api.queues import IDEMPOTENCY_WINDOW_S, AsyncInvocation, Attempt, Queue
from vortex_api.queues.nats import NatsQueue
from vortex_api.queues.sqlite import SqliteQueue

Make = Callable[[], Queue]
IMPLEMENTATIONS = ["sqlite", "nats"]
LEASE_S = 0.5  # how long a silent holder keeps its claim, in these tests


@pytest.fixture(params=IMPLEMENTATIONS)
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Make:
    """A maker of queue handles over one store: a second handle is the store reopened."""
    if request.param == "sqlite":
        return lambda: SqliteQueue(tmp_path / "queue.sqlite3")
    server: NatsServer = request.getfixturevalue("fresh_nats")
    return lambda: NatsQueue(server.url, "test", ack_wait_s=LEASE_S)


@pytest.fixture
async def queue(make: Make) -> AsyncIterator[Queue]:
    q = make()
    await q.open()
    yield q
    await q.close()


def _new(
    invocation_id: str,
    function: str = "fn",
    at: float | None = None,
    key: str | None = None,
    due: float | None = None,
) -> AsyncInvocation:
    new = AsyncInvocation(
        invocation_id=invocation_id,
        function=function,
        event=b'{"n":1}',
        request={"method": "POST", "path": f"/async/{function}", "query": "", "headers": []},
        created_at=time.time() if at is None else at,
        idempotency_key=key,
    )
    new.due_at = due
    return new


async def _claim(
    queue: Queue, exclude: tuple[str, ...] = (), within_s: float = 3.0, lease_s: float = 60
) -> AsyncInvocation | None:
    """A claim of what is due now, waiting up to `within_s` for one."""
    deadline = time.monotonic() + within_s
    while True:
        claimed = await queue.claim(time.time(), lease_s, exclude=exclude)
        if claimed is not None or time.monotonic() > deadline:
            return claimed
        await queue.wait(0.05)


async def test_an_invocation_reads_back_as_queued(queue: Queue) -> None:
    at = time.time()
    stored, created = await queue.enqueue(_new("a", at=at))
    assert created
    assert (stored.status, stored.attempts, stored.due_at, stored.age_from) == ("queued", 0, at, at)
    got = await queue.get("a")
    assert got is not None
    assert (got.event, got.request["path"], got.status) == (b'{"n":1}', "/async/fn", "queued")
    assert await queue.get("missing") is None


async def test_repeats_by_id_or_idempotency_key_give_the_first(queue: Queue) -> None:
    at = time.time()
    first, _ = await queue.enqueue(_new("a", at=at, key="k"))
    again, created = await queue.enqueue(_new("a"))
    assert (again.invocation_id, created) == ("a", False)
    for n in range(10):
        repeat, created = await queue.enqueue(_new(f"b{n}", key="k", at=at + n))
        assert (repeat.invocation_id, created) == ("a", False)
    other, created = await queue.enqueue(_new("c", function="other", key="k"))
    assert (other.invocation_id, created) == ("c", True)  # keys are per function
    late, created = await queue.enqueue(_new("d", key="k", at=at + IDEMPOTENCY_WINDOW_S + 1))
    assert (late.invocation_id, created) == ("d", True)  # past the window: a new one
    assert first.invocation_id == "a"


async def test_what_is_due_is_claimed_once_and_what_is_not_waits(queue: Queue) -> None:
    now = time.time()
    await queue.enqueue(_new("later", due=now + 60))
    await queue.enqueue(_new("due", due=now - 1))
    await queue.enqueue(_new("now", due=now))
    claimed = {c.invocation_id: c for c in [await _claim(queue), await _claim(queue)] if c}
    assert set(claimed) == {"due", "now"}
    assert {(c.status, c.attempts) for c in claimed.values()} == {("running", 1)}
    assert await _claim(queue, within_s=0.5) is None  # "later" is not due; the others are held


async def test_excluded_functions_wait(queue: Queue) -> None:
    await queue.enqueue(_new("a", function="busy"))
    await queue.enqueue(_new("b", function="free"))
    claimed = await _claim(queue, exclude=("busy",))
    assert claimed is not None
    assert claimed.invocation_id == "b"
    assert await _claim(queue, exclude=("busy",), within_s=0.5) is None
    busy = await _claim(queue)
    assert busy is not None
    assert busy.invocation_id == "a"


async def test_a_silent_claim_is_claimed_again_and_the_old_attempt_cannot_settle(
    queue: Queue,
) -> None:
    await queue.enqueue(_new("a"))
    first = await _claim(queue, lease_s=LEASE_S)
    assert first is not None
    if isinstance(queue, NatsQueue):
        queue._held.clear()  # as if its process had stopped saying it is in progress
        queue._tasks[0].cancel()
    await asyncio.sleep(LEASE_S * 1.5)
    second = await _claim(queue, within_s=5)
    assert second is not None
    assert second.attempts == 2
    first.status, first.finished_at = "succeeded", time.time()
    assert not await queue.settle(first, 1)  # attempt 1 no longer holds it
    second.status, second.finished_at, second.result = "succeeded", time.time(), b'{"output":1}'
    second.history = [Attempt(2, 1.0, 2.0)]
    assert await queue.settle(second, 2)
    done = await queue.get("a")
    assert done is not None
    assert (done.status, done.attempts, done.result) == ("succeeded", 2, b'{"output":1}')
    assert done.history == [Attempt(2, 1.0, 2.0)]
    await asyncio.sleep(LEASE_S * 1.5)
    assert await _claim(queue, within_s=0.5) is None


async def test_a_failed_attempt_is_due_again_at_its_backoff(queue: Queue) -> None:
    await queue.enqueue(_new("a"))
    claimed = await _claim(queue)
    assert claimed is not None
    due = time.time() + 1.0
    claimed.status, claimed.due_at = "failed", due
    claimed.error = {"type": "Timeout", "message": "slow"}
    assert await queue.settle(claimed, 1)
    assert await _claim(queue, within_s=0.5) is None
    again = await _claim(queue, within_s=5)
    assert again is not None
    assert time.time() >= due
    assert (again.attempts, again.error, again.due_at) == (
        2,
        {"type": "Timeout", "message": "slow"},
        due,
    )


async def test_a_released_claim_is_not_counted(queue: Queue) -> None:
    await queue.enqueue(_new("a"))
    claimed = await _claim(queue)
    assert claimed is not None
    await queue.release("a", 1)
    back = await queue.get("a")
    assert back is not None
    assert (back.status, back.attempts) == ("queued", 0)
    again = await _claim(queue)
    assert again is not None
    assert again.attempts == 1


async def test_dead_letters_and_redrive(queue: Queue) -> None:
    for n in range(3):
        await queue.enqueue(_new(f"d{n}"))
        claimed = await _claim(queue)
        assert claimed is not None
        claimed.status, claimed.finished_at = "dead", time.time() + n
        claimed.error = {"type": "FunctionError", "message": "boom"}
        assert await queue.settle(claimed, 1)
    assert [d.invocation_id for d in await queue.dead_letters("fn", 10)] == ["d2", "d1", "d0"]
    assert [d.invocation_id for d in await queue.dead_letters("fn", 1)] == ["d2"]
    assert await queue.dead_letters("other", 10) == []
    now = time.time()
    again = await queue.redrive("d1", now)
    assert again is not None
    assert (again.status, again.attempts, again.redrives, again.age_from) == ("queued", 0, 1, now)
    assert [d.invocation_id for d in await queue.dead_letters("fn", 10)] == ["d2", "d0"]
    claimed = await _claim(queue)
    assert claimed is not None
    assert claimed.invocation_id == "d1"
    assert await queue.redrive("missing", now) is None


async def test_depth_counts_what_has_not_ended(queue: Queue) -> None:
    now = time.time()
    await queue.enqueue(_new("q1", at=now - 20))
    await queue.enqueue(_new("q2", at=now - 10, due=now + 60))
    await queue.enqueue(_new("o1", function="other", at=now - 5, due=now + 60))
    claimed = await _claim(queue)
    assert claimed is not None
    assert claimed.invocation_id == "q1"
    expected = [("fn", "queued", 1), ("fn", "running", 1), ("other", "queued", 1)]
    for _ in range(50):  # an index another process keeps may take a moment
        depth = sorted(await queue.depth(now + 10))
        if [(f, s, n) for f, s, n, _ in depth] == expected:
            break
        await asyncio.sleep(0.05)
    assert [(f, s, n) for f, s, n, _ in depth] == expected
    assert [round(age) for *_, age in depth] == [20, 30, 15]
    claimed.status, claimed.finished_at = "succeeded", time.time()
    assert await queue.settle(claimed, 1)
    for _ in range(50):
        if len(await queue.depth(now)) == 2:
            break
        await asyncio.sleep(0.05)
    assert sorted((f, s) for f, s, *_ in await queue.depth(now)) == [
        ("fn", "queued"),
        ("other", "queued"),
    ]


async def test_everything_survives_reopening_and_what_ran_is_claimed_again(make: Make) -> None:
    first = make()
    await first.open()
    await first.enqueue(_new("held", at=time.time() - 1))
    held = await _claim(first, lease_s=LEASE_S)
    assert held is not None
    assert held.invocation_id == "held"
    await first.enqueue(_new("waiting"))
    await first.close()  # as if the process died with "held" running
    second = make()
    await second.open()
    try:
        ids = set()
        for _ in range(2):
            claimed = await _claim(second, within_s=5)
            assert claimed is not None
            ids.add((claimed.invocation_id, claimed.attempts))
        assert ids == {("held", 2), ("waiting", 1)}
    finally:
        await second.close()
