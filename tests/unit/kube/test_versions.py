"""vortex_kube.versions: when a version is made, which are kept, and what a traffic split accepts."""

from __future__ import annotations

from typing import Any

import pytest

from vortex_kube.versions import (
    History,
    Pin,
    Target,
    Traffic,
    Version,
    VersionError,
    execution_spec,
)

A, B, C = "a" * 64, "b" * 64, "c" * 64
SPEC = {"timeoutMs": 5000, "memoryMb": 128, "isolation": "shared"}


def _history(*shas: str, limit: int = 10, traffic: Traffic | None = None) -> History:
    history = History(limit=limit)
    for i, sha in enumerate(shas):
        history = history.record(sha, SPEC, f"t{i}", traffic or Traffic(), created_by="api")
    return history


def test_a_new_version_for_new_code_or_execution_spec_and_none_for_the_same() -> None:
    history = _history(A)
    assert history.numbers() == [1]
    assert history.record(A, dict(SPEC), "t", Traffic()).numbers() == [1]
    changed = history.record(A, {**SPEC, "memoryMb": 256}, "t", Traffic())
    assert changed.numbers() == [1, 2]
    assert changed.latest is not None
    assert changed.latest.spec["memoryMb"] == 256
    assert changed.record(B, {**SPEC, "memoryMb": 256}, "t", Traffic()).numbers() == [1, 2, 3]


def test_a_rollback_always_makes_a_version_and_says_of_which() -> None:
    history = _history(A, B)
    rolled = history.record(A, SPEC, "t", Traffic(), rollback_of=1)
    assert rolled.numbers() == [1, 2, 3]
    assert rolled.latest == Version(3, A, SPEC, "t", None, rollback_of=1)
    # and once more, though code and spec equal the latest's
    assert rolled.record(A, SPEC, "t", Traffic(), rollback_of=1).numbers() == [1, 2, 3, 4]


def test_only_the_newest_are_kept_but_never_one_the_traffic_uses() -> None:
    assert _history(A, B, C, A, B, C, limit=3).numbers() == [4, 5, 6]
    pinned = Traffic.parse([{"version": 1, "percent": 50}, {"latest": True, "percent": 50}])
    history = _history(A, limit=3)
    for sha in (B, C, A, B, C):
        history = history.record(sha, SPEC, "t", pinned)
    assert history.numbers() == [1, 4, 5, 6]
    assert history.code_in_use() == {A, B, C}
    # once the split no longer names it, it goes
    assert history.pruned(Traffic()).numbers() == [4, 5, 6]


def test_a_lower_limit_prunes_at_once() -> None:
    history = _history(A, B, C)
    assert history.record(C, SPEC, "t", Traffic(), limit=1).numbers() == [3]


def test_history_round_trips_through_json() -> None:
    history = _history(A, B).record(A, SPEC, "t", Traffic(), rollback_of=1)
    again = History.from_json(history.to_json(), history.limit)
    assert again == history
    assert history.to_json()[2] == {
        "version": 3,
        "codeSha256": A,
        "spec": SPEC,
        "createdAt": "t",
        "rollbackOf": 1,
    }
    assert History.from_json(None).versions == ()
    assert History.from_json("nonsense").versions == ()


def test_execution_spec_keeps_only_what_makes_a_version() -> None:
    spec = {
        "code": "x",
        "timeoutMs": 100,
        "replicas": 3,
        "concurrency": 2,
        "env": [{"name": "A", "value": "b"}],
        "kv": None,
        "retry": {"maxAttempts": 2},
    }
    assert execution_spec(spec) == {"timeoutMs": 100, "env": [{"name": "A", "value": "b"}]}


def test_traffic_weights_sum_and_resolve_the_latest() -> None:
    traffic = Traffic.parse(
        [
            {"version": 1, "percent": 80},
            {"version": 3, "percent": 10, "tag": "canary"},
            {"latest": True, "percent": 10},
        ]
    )
    assert traffic.weights(latest=3) == [(1, 80), (3, 20)]
    assert traffic.weights(latest=4) == [(1, 80), (3, 10), (4, 10)]
    assert traffic.used(latest=4) == {1, 3, 4}
    assert traffic.tagged("canary", latest=4) == 3
    assert traffic.tagged("stable", latest=4) is None
    assert Traffic.parse(traffic.to_json()) == traffic
    assert Traffic().weights(latest=7) == [(7, 100)]
    assert Traffic.parse([]) == Traffic() == Traffic.parse(None)


def test_a_tag_at_zero_percent_still_reaches_its_version() -> None:
    traffic = Traffic.parse(
        [{"latest": True, "percent": 100}, {"version": 2, "percent": 0, "tag": "next"}]
    )
    assert traffic.weights(latest=5) == [(5, 100)]
    assert traffic.used(latest=5) == {2, 5}
    assert traffic.tagged("next", latest=5) == 2


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("all", "must be a list"),
        ([{"version": 1, "percent": 90}], "sum to 90, not 100"),
        ([{"percent": 100}], "either version or latest"),
        ([{"version": 1, "latest": True, "percent": 100}], "either version or latest"),
        ([{"latest": False, "percent": 100}], "either version or latest"),
        ([{"version": 0, "percent": 100}], "version must be a version number"),
        ([{"version": True, "percent": 100}], "version must be a version number"),
        ([{"version": "1", "percent": 100}], "version must be a version number"),
        ([{"latest": "yes", "percent": 100}], "latest must be true or false"),
        ([{"latest": True, "percent": 100.0}], "percent must be an integer"),
        ([{"latest": True, "percent": 101}], "percent must be an integer"),
        ([{"latest": True, "percent": -1, "tag": "x"}], "percent must be an integer"),
        ([{"latest": True, "percent": 100, "tag": "7"}], "tag must be"),
        ([{"latest": True, "percent": 100, "tag": "Canary"}], "tag must be"),
        ([{"latest": True, "percent": 100, "weight": 1}], "unknown fields: weight"),
        (
            [{"version": 1, "percent": 50, "tag": "a"}, {"version": 2, "percent": 50, "tag": "a"}],
            "tags must be unique",
        ),
        ([{"latest": True, "percent": 10}] * 11, "at most 10"),
        (["x"], "traffic[0] must be an object"),
    ],
)
def test_a_bad_split_says_what_is_wrong(value: Any, message: str) -> None:
    with pytest.raises(VersionError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Traffic.parse(value)


def test_a_split_naming_a_version_not_kept_is_refused() -> None:
    Traffic((Target(60, version=1), Target(40, latest=True))).check([1, 2])
    with pytest.raises(VersionError, match=r"version 9, which does not exist \(kept: 1, 2\)"):
        Traffic((Target(60, version=1), Target(40, version=9))).check([2, 1])


def test_pins_are_numbers_or_tags() -> None:
    assert Pin.parse(None) is None
    assert Pin.parse("3") == Pin(number=3)
    assert Pin.parse(" canary ") == Pin(tag="canary")
    for bad in ("", "0", "-1", "v1!", "1234567890", "Canary"):
        with pytest.raises(VersionError, match="X-Vortex-Version"):
            Pin.parse(bad)
