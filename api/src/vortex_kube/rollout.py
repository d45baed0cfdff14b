"""Progressive rollout of a new version: `spec.rollout` and the pure step that moves it along.

`spec.rollout: {steps: [10, 50, 100], interval: 60s, maxErrorRate: 0.05}`. When a new version
is made, it gets `steps[0]` percent of the executions and the version that had them all (the
stable one) the rest. Every `interval` the new version's error rate over that interval (function
errors, timeouts and memory kills, out of its executions) decides: above `maxErrorRate`, all
traffic goes back to the stable version and the rollout ends `RolledBack`, saying why; otherwise
the next step, until 100, where the rollout ends `Complete` and the latest takes everything. An
interval in which the new version ran nothing decides nothing (it waits for traffic).

Pure, no I/O or clock. Callers: the API's local backend, which counts executions per version
itself (`vortex_api.rollouts.Tally`) and runs `advance` on a timer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from vortex_kube.versions import Target, Traffic, VersionError

DEFAULT_STEPS = (10, 50, 100)
DEFAULT_INTERVAL_S = 60.0
MIN_INTERVAL_S, MAX_INTERVAL_S = 1.0, 86_400.0
DEFAULT_MAX_ERROR_RATE = 0.05
MAX_STEPS = 10
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# The error types that count against a new version (what the function did, not the platform).
COUNTED_OUTCOMES = frozenset({"error", "timeout"})

Phase = Literal["Progressing", "Complete", "RolledBack"]
# The status of the `Rollout` condition each phase shows (local mode's and the operator's).
CONDITION_STATUS: dict[str, str] = {
    "Progressing": "Unknown",
    "Complete": "True",
    "RolledBack": "False",
}


def parse_duration(value: object) -> float:
    """Seconds of "60s", "2m", "1h", "500ms" or a number of seconds."""
    if isinstance(value, bool):
        raise VersionError("rollout.interval must be a duration such as 60s or 2m")
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise VersionError("rollout.interval must be a duration such as 60s or 2m")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


@dataclass(frozen=True)
class RolloutSpec:
    steps: tuple[int, ...] = DEFAULT_STEPS
    interval_s: float = DEFAULT_INTERVAL_S
    max_error_rate: float = DEFAULT_MAX_ERROR_RATE

    @classmethod
    def parse(cls, value: object) -> RolloutSpec | None:
        """From `spec.rollout` (None: no rollout); VersionError says what is wrong."""
        if value is None:
            return None
        if not isinstance(value, dict):
            raise VersionError("rollout must be an object {steps, interval, maxErrorRate}")
        unknown = set(value) - {"steps", "interval", "maxErrorRate"}
        if unknown:
            raise VersionError(f"rollout has unknown fields: {', '.join(sorted(unknown))}")
        steps = value.get("steps", list(DEFAULT_STEPS))
        if (
            not isinstance(steps, list)
            or not 1 <= len(steps) <= MAX_STEPS
            or not all(isinstance(p, int) and not isinstance(p, bool) for p in steps)
            or not all(0 < p <= 100 for p in steps)
            or steps != sorted(set(steps))
            or steps[-1] != 100
        ):
            raise VersionError(
                f"rollout.steps must be 1 to {MAX_STEPS} rising percents ending at 100,"
                " such as [10, 50, 100]"
            )
        interval = parse_duration(value.get("interval", DEFAULT_INTERVAL_S))
        if not MIN_INTERVAL_S <= interval <= MAX_INTERVAL_S:
            raise VersionError(
                f"rollout.interval must be from {MIN_INTERVAL_S:g} s to {MAX_INTERVAL_S:g} s"
            )
        rate = value.get("maxErrorRate", DEFAULT_MAX_ERROR_RATE)
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise VersionError("rollout.maxErrorRate must be a number from 0 to 1")
        return cls(tuple(steps), interval, float(rate))

    def to_json(self) -> dict[str, Any]:
        return {
            "steps": list(self.steps),
            "interval": f"{self.interval_s:g}s",
            "maxErrorRate": self.max_error_rate,
        }


@dataclass(frozen=True)
class Rollout:
    """Where the rollout of `version` (from `stable`) stands. `calls`/`errors` are the new
    version's counts when the current interval began (the counters only grow)."""

    version: int
    stable: int
    step: int  # index into the spec's steps
    percent: int
    since: float  # when the current interval began (epoch seconds)
    calls: int = 0
    errors: int = 0
    phase: Phase = "Progressing"
    reason: str = ""

    @staticmethod
    def stable_version(standing: Rollout | None, latest: int) -> int:
        """The version a new one is rolled out from: the one that had all the traffic (the
        standing rollout's stable version, unless that rollout completed; else the latest)."""
        if standing is not None and standing.phase != "Complete":
            return standing.stable
        return latest

    @classmethod
    def start(cls, spec: RolloutSpec, version: int, stable: int, now: float) -> Rollout:
        percent = spec.steps[0]
        return cls(version, stable, 0, percent, now, reason=f"version {version} at {percent}%")

    def traffic(self) -> Traffic:
        """The split this rollout needs while it lasts (none once Complete: the latest)."""
        if self.phase == "Complete":
            return Traffic()
        if self.phase == "RolledBack":
            return Traffic((Target(100, version=self.stable),))
        return Traffic(
            (
                Target(100 - self.percent, version=self.stable),
                Target(self.percent, version=self.version, tag="canary"),
            )
        )

    def advance(self, spec: RolloutSpec, now: float, calls: int, errors: int) -> Rollout:
        """The rollout after a look at `now`, given the new version's counters so far."""
        if self.phase != "Progressing":
            return self
        if calls < self.calls or errors < self.errors:  # counters restarted: a new interval
            return replace(self, since=now, calls=calls, errors=errors)
        if now - self.since < spec.interval_s:
            return self
        ran, failed = calls - self.calls, errors - self.errors
        if ran <= 0:
            return replace(
                self, since=now, reason=f"version {self.version} ran nothing in the last interval"
            )
        rate = failed / ran
        if rate > spec.max_error_rate:
            return replace(
                self,
                phase="RolledBack",
                percent=0,
                since=now,
                calls=calls,
                errors=errors,
                reason=(
                    f"version {self.version} failed {failed} of {ran} executions ({rate:.1%}),"
                    f" over maxErrorRate {spec.max_error_rate:.1%}: all traffic back to"
                    f" version {self.stable}"
                ),
            )
        step = self.step + 1
        if step >= len(spec.steps) or spec.steps[step] >= 100:
            return replace(
                self,
                phase="Complete",
                step=len(spec.steps) - 1,
                percent=100,
                since=now,
                calls=calls,
                errors=errors,
                reason=f"version {self.version} took all traffic ({rate:.1%} errors)",
            )
        percent = spec.steps[step]
        return replace(
            self,
            step=step,
            percent=percent,
            since=now,
            calls=calls,
            errors=errors,
            reason=f"version {self.version} at {percent}% ({rate:.1%} errors before)",
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "stable": self.stable,
            "step": self.step,
            "percent": self.percent,
            "since": self.since,
            "calls": self.calls,
            "errors": self.errors,
            "phase": self.phase,
            "reason": self.reason,
        }

    @classmethod
    def read(cls, value: object) -> Rollout | None:
        """`from_json` of a stored value, None where it is absent or unreadable."""
        if not isinstance(value, Mapping):
            return None
        try:
            return cls.from_json(value)
        except (KeyError, TypeError, ValueError):
            return None

    @classmethod
    def from_json(cls, value: Mapping[str, Any] | None) -> Rollout | None:
        if not value:
            return None
        phase = value.get("phase")
        return cls(
            version=int(value["version"]),
            stable=int(value["stable"]),
            step=int(value.get("step") or 0),
            percent=int(value.get("percent") or 0),
            since=float(value.get("since") or 0.0),
            calls=int(value.get("calls") or 0),
            errors=int(value.get("errors") or 0),
            phase=phase if phase in ("Progressing", "Complete", "RolledBack") else "Progressing",
            reason=str(value.get("reason") or ""),
        )
