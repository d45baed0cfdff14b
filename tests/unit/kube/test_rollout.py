"""vortex_kube.rollout: the steps of a progressive rollout, its judgement, and what it accepts."""

from __future__ import annotations

from typing import Any

import pytest

from vortex_kube.rollout import Rollout, RolloutSpec, parse_duration
from vortex_kube.versions import Traffic, VersionError

SPEC = RolloutSpec(steps=(10, 50, 100), interval_s=60.0, max_error_rate=0.05)


def test_a_healthy_version_goes_step_by_step_to_all_traffic() -> None:
    rollout = Rollout.start(SPEC, version=4, stable=3, now=0.0)
    assert rollout.traffic() == Traffic.parse(
        [{"version": 3, "percent": 90}, {"version": 4, "percent": 10, "tag": "canary"}]
    )
    assert rollout.advance(SPEC, 59.0, calls=100, errors=0) == rollout  # not an interval yet
    at_50 = rollout.advance(SPEC, 60.0, calls=100, errors=5)  # 5% is not over 5%
    assert (at_50.phase, at_50.percent, at_50.calls, at_50.since) == ("Progressing", 50, 100, 60.0)
    done = at_50.advance(SPEC, 120.0, calls=600, errors=5)
    assert (done.phase, done.percent) == ("Complete", 100)
    assert done.traffic() == Traffic()  # the latest takes everything
    assert done.advance(SPEC, 999.0, calls=10**6, errors=10**6) == done


def test_errors_over_the_threshold_send_all_traffic_back() -> None:
    at_50 = Rollout.start(SPEC, 4, 3, 0.0).advance(SPEC, 60.0, calls=100, errors=0)
    back = at_50.advance(SPEC, 120.0, calls=400, errors=91)  # 91 of 300: 30.3%
    assert back.phase == "RolledBack"
    assert back.traffic() == Traffic.parse([{"version": 3, "percent": 100}])
    assert "failed 91 of 300 executions (30.3%)" in back.reason
    assert "all traffic back to version 3" in back.reason


def test_an_interval_without_executions_decides_nothing() -> None:
    rollout = Rollout.start(SPEC, 4, 3, 0.0)
    waited = rollout.advance(SPEC, 60.0, calls=0, errors=0)
    assert (waited.phase, waited.percent, waited.since) == ("Progressing", 10, 60.0)
    assert "ran nothing" in waited.reason


def test_counters_that_restarted_begin_a_new_interval() -> None:
    rollout = Rollout.start(SPEC, 4, 3, 0.0).advance(SPEC, 60.0, calls=500, errors=0)
    again = rollout.advance(SPEC, 70.0, calls=3, errors=3)  # the API restarted
    assert (again.phase, again.calls, again.errors, again.since) == ("Progressing", 3, 3, 70.0)


def test_state_round_trips() -> None:
    rollout = Rollout.start(SPEC, 4, 3, 1.5).advance(SPEC, 70.0, calls=9, errors=0)
    assert Rollout.from_json(rollout.to_json()) == rollout
    assert Rollout.from_json(None) is None
    assert RolloutSpec.parse(SPEC.to_json()) == SPEC


def test_defaults_and_durations() -> None:
    assert RolloutSpec.parse({}) == RolloutSpec((10, 50, 100), 60.0, 0.05)
    assert RolloutSpec.parse(None) is None
    assert [parse_duration(v) for v in ("60s", "2m", "1h", "1500ms", 5)] == [
        60.0,
        120.0,
        3600.0,
        1.5,
        5.0,
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("fast", "must be an object"),
        ({"steps": [50, 10, 100]}, "rising percents ending at 100"),
        ({"steps": [10, 50]}, "rising percents ending at 100"),
        ({"steps": [0, 100]}, "rising percents ending at 100"),
        ({"steps": []}, "rising percents ending at 100"),
        ({"steps": [10, 10, 100]}, "rising percents ending at 100"),
        ({"interval": "soon"}, "duration such as 60s"),
        ({"interval": "0.5s"}, "from 1 s"),
        ({"maxErrorRate": 1.5}, "from 0 to 1"),
        ({"maxErrorRate": True}, "from 0 to 1"),
        ({"steps": [100], "speed": 1}, "unknown fields: speed"),
    ],
)
def test_a_bad_rollout_says_what_is_wrong(value: Any, message: str) -> None:
    with pytest.raises(VersionError, match=message):
        RolloutSpec.parse(value)
