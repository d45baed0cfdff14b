"""The async-invocation queue's contract, run against every implementation (`IMPLEMENTATIONS`):
enqueue and read back, repeats by id and by idempotency key, claims in due order and never two
at once, leases that run out, write-backs only from the attempt holding the claim, release,
dead letters and redrive, depth and purge, and what survives reopening."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from vortex_api.queues import IDEMPOTENCY_WINDOW_S, AsyncInvocation, Attempt, Queue
from vortex_api.queues.sqlite import SqliteQueue

Make = Callable[[], Queue]
IMPLEMENTATIONS = ["sqlite"]
T0 = 1_800_000_000.0


@pytest.fixture(params=IMPLEMENTATIONS)
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Make:
    """A maker of queue handles over one store: a second handle is the store reopened."""
    if request.param == "sqlite":
        return lambda: SqliteQueue(tmp_path / "queue.sqlite3")
    raise AssertionError(request.param)


@pytest.fixture
async def queue(make: Make) -> AsyncIterator[Queue]:
    q = make()
    await q.open()
    yield q
    await q.close()


def _new(
    invocation_id: str, function: str = "fn", at: float = T0, key: str | None = None
) -> AsyncInvocation:
    return AsyncInvocation(
        invocation_id=invocation_id,
        function=function,
        event=b'{"n":1}',
        request={"method": "POST", "path": f"/async/{function}", "query": "", "headers": []},
        created_at=at,
        idempotency_key=key,
    )


async def test_an_invocation_reads_back_as_queued(queue: Queue) -> None:
    stored, created = await queue.enqueue(_new("a"))
    assert created
    assert (stored.status, stored.attempts, stored.due_at, stored.age_from) == ("queued", 0, T0, T0)
    got = await queue.get("a")
    assert got is not None
    assert got.event == b'{"n":1}'
    assert got.request["path"] == "/async/fn"
    assert await queue.get("missing") is None


async def test_repeats_by_id_or_idempotency_key_give_the_first(queue: Queue) -> None:
    first, _ = await queue.enqueue(_new("a", key="k"))
    again, created = await queue.enqueue(_new("a"))
    assert (again.invocation_id, created) == ("a", False)
    for n in range(10):
        repeat, created = await queue.enqueue(_new(f"b{n}", key="k", at=T0 + n))
        assert (repeat.invocation_id, created) == ("a", False)
    other, created = await queue.enqueue(_new("c", function="other", key="k"))
    assert (other.invocation_id, created) == ("c", True)  # keys are per function
    late, created = await queue.enqueue(_new("d", key="k", at=T0 + IDEMPOTENCY_WINDOW_S + 1))
    assert (late.invocation_id, created) == ("d", True)  # past the window: a new one
    assert first.invocation_id == "a"


async def test_claims_go_in_due_order_and_once(queue: Queue) -> None:
    for name, due in (("late", T0 + 5), ("early", T0 + 1), ("now", T0)):
        new = _new(name)
        new.due_at = due
        await queue.enqueue(new)
    assert await queue.next_due() == T0
    claimed = await queue.claim(T0 + 2, lease_s=60)
    assert claimed is not None
    assert (claimed.invocation_id, claimed.status, claimed.attempts) == ("now", "running", 1)
    second = await queue.claim(T0 + 2, lease_s=60)
    assert second is not None
    assert second.invocation_id == "early"
    assert await queue.claim(T0 + 2, lease_s=60) is None  # "late" is not due
    assert await queue.next_due() == T0 + 5


async def test_excluded_functions_wait(queue: Queue) -> None:
    await queue.enqueue(_new("a", function="busy"))
    await queue.enqueue(_new("b", function="free", at=T0 + 1))
    claimed = await queue.claim(T0 + 2, lease_s=60, exclude=["busy"])
    assert claimed is not None
    assert claimed.invocation_id == "b"
    assert await queue.claim(T0 + 2, lease_s=60, exclude=["busy"]) is None


async def test_a_lease_that_runs_out_is_claimed_again_and_the_old_attempt_cannot_settle(
    queue: Queue,
) -> None:
    await queue.enqueue(_new("a"))
    first = await queue.claim(T0, lease_s=10)
    assert first is not None
    assert await queue.claim(T0 + 5, lease_s=10) is None  # held
    second = await queue.claim(T0 + 11, lease_s=10)
    assert second is not None
    assert second.attempts == 2
    first.status, first.finished_at = "succeeded", T0 + 12
    assert not await queue.settle(first, 1)  # attempt 1 no longer holds it
    second.status, second.finished_at, second.result = "succeeded", T0 + 12, b'{"output":1}'
    second.history = [Attempt(2, T0 + 11, T0 + 12)]
    assert await queue.settle(second, 2)
    done = await queue.get("a")
    assert done is not None
    assert (done.status, done.attempts, done.result) == ("succeeded", 2, b'{"output":1}')
    assert done.history == [Attempt(2, T0 + 11, T0 + 12)]
    assert await queue.claim(T0 + 100, lease_s=10) is None


async def test_a_failed_attempt_is_due_again_at_its_backoff(queue: Queue) -> None:
    await queue.enqueue(_new("a"))
    claimed = await queue.claim(T0, lease_s=10)
    assert claimed is not None
    claimed.status, claimed.due_at = "failed", T0 + 4
    claimed.error = {"type": "Timeout", "message": "slow"}
    assert await queue.settle(claimed, 1)
    assert await queue.claim(T0 + 3, lease_s=10) is None
    again = await queue.claim(T0 + 4, lease_s=10)
    assert again is not None
    assert (again.attempts, again.error, again.due_at) == (
        2,
        {"type": "Timeout", "message": "slow"},
        T0 + 4,
    )


async def test_a_released_claim_is_not_counted(queue: Queue) -> None:
    await queue.enqueue(_new("a"))
    claimed = await queue.claim(T0, lease_s=10)
    assert claimed is not None
    await queue.release("a", 1)
    back = await queue.get("a")
    assert back is not None
    assert (back.status, back.attempts) == ("queued", 0)
    assert (await queue.claim(T0, lease_s=10)) is not None


async def test_dead_letters_and_redrive(queue: Queue) -> None:
    for n in range(3):
        await queue.enqueue(_new(f"d{n}"))
        claimed = await queue.claim(T0 + n, lease_s=10)
        assert claimed is not None
        claimed.status, claimed.finished_at = "dead", T0 + n
        claimed.error = {"type": "FunctionError", "message": "boom"}
        assert await queue.settle(claimed, 1)
    assert [d.invocation_id for d in await queue.dead_letters("fn", 10)] == ["d2", "d1", "d0"]
    assert [d.invocation_id for d in await queue.dead_letters("fn", 1)] == ["d2"]
    assert await queue.dead_letters("other", 10) == []
    again = await queue.redrive("d1", T0 + 50)
    assert again is not None
    assert (again.status, again.attempts, again.redrives, again.age_from) == (
        "queued",
        0,
        1,
        T0 + 50,
    )
    assert [d.invocation_id for d in await queue.dead_letters("fn", 10)] == ["d2", "d0"]
    claimed = await queue.claim(T0 + 50, lease_s=10)
    assert claimed is not None
    assert claimed.invocation_id == "d1"
    assert await queue.redrive("missing", T0) is None


async def test_depth_counts_what_has_not_ended_and_purge_forgets_what_has(queue: Queue) -> None:
    await queue.enqueue(_new("q1"))
    await queue.enqueue(_new("q2", at=T0 + 10))
    await queue.enqueue(_new("o1", function="other", at=T0 + 5))
    claimed = await queue.claim(T0 + 20, lease_s=10)
    assert claimed is not None
    assert claimed.invocation_id == "q1"
    depth = sorted(await queue.depth(T0 + 30))
    assert depth == [
        ("fn", "queued", 1, 20.0),
        ("fn", "running", 1, 30.0),
        ("other", "queued", 1, 25.0),
    ]
    claimed.status, claimed.finished_at = "succeeded", T0 + 31
    assert await queue.settle(claimed, 1)
    assert await queue.purge(T0 + 31) == 0
    assert await queue.purge(T0 + 32) == 1
    assert await queue.get("q1") is None
    assert await queue.get("q2") is not None


async def test_everything_survives_reopening_and_what_ran_is_claimed_again(make: Make) -> None:
    first = make()
    await first.open()
    await first.enqueue(_new("waiting"))
    await first.enqueue(_new("held", at=T0 - 1))
    held = await first.claim(T0, lease_s=3600)
    assert held is not None
    assert held.invocation_id == "held"
    await first.close()  # as if the process died with "held" running
    second = make()
    await second.open()
    try:
        ids = set()
        for _ in range(2):
            claimed = await second.claim(T0 + 1, lease_s=60)
            assert claimed is not None
            ids.add((claimed.invocation_id, claimed.attempts))
        assert ids == {("held", 2), ("waiting", 1)}
    finally:
        await second.close()
