"""conditions.merge: transition times move only when the status flips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from vortex_operator.conditions import Condition, merge, timestamp

T0 = datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def test_new_condition_gets_now_and_generation() -> None:
    [cond] = merge([], [Condition("Ready", "False", "RollingOut", "0 of 1")], 3, T0)
    assert cond == {
        "type": "Ready",
        "status": "False",
        "reason": "RollingOut",
        "message": "0 of 1",
        "lastTransitionTime": "2026-05-01T12:00:00Z",
        "observedGeneration": 3,
    }


def test_same_status_keeps_time_even_with_new_reason() -> None:
    first = merge([], [Condition("Ready", "False", "RollingOut")], 1, T0)
    [second] = merge(first, [Condition("Ready", "False", "ProgressDeadlineExceeded")], 2, T1)
    assert second["lastTransitionTime"] == timestamp(T0)
    assert second["reason"] == "ProgressDeadlineExceeded"
    assert second["observedGeneration"] == 2


def test_flip_moves_time() -> None:
    first = merge([], [Condition("Ready", "False", "RollingOut")], 1, T0)
    [second] = merge(first, [Condition("Ready", "True", "RolledOut")], 1, T1)
    assert second["lastTransitionTime"] == timestamp(T1)


def test_foreign_conditions_are_kept_after_ours() -> None:
    previous = [{"type": "Custom", "status": "True", "lastTransitionTime": "x"}]
    merged = merge(previous, [Condition("Ready", "True", "RolledOut")], None, T0)
    assert [c["type"] for c in merged] == ["Ready", "Custom"]
    assert "observedGeneration" not in merged[0]
