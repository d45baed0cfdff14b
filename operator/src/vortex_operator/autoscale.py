"""The scaling decision, made without I/O or clocks: how many warm pods a function should have.

Like Knative's KPA: each tick the autoscaler loop (`scaler.py`) feeds one `Scaler` per function
the executions in flight across the API replicas (their average over the tick) and the time; the
`Scaler` keeps the samples of the last `stable_window_s` and decides from two averages:

- stable (60 s): the desired pods are `ceil(average / target)` within the function's bounds.
- panic (6 s): when `ceil(average / target)` reaches `panic_threshold` times the ready pods, the
  scaler panics: it follows the panic window at once and never scales down, until the load has
  stayed under the threshold for a whole stable window. A burst scales up within seconds.

Scaling down is slower on purpose, so a noisy steady load does not flap: it follows the stable
window only, once that window is full (a new leader's empty window does not scale anything down),
with a tolerance (the load must fit the fewer pods at `1 - scale_down_tolerance` of the target),
and at most by `max_scale_down_rate` (halving) per tick. With `minReplicas` 0 the function goes to
zero pods after `scale_to_zero_after_s` without any execution in flight.

Time is a float of seconds passed in by the caller (monotonic in the loop, faked in tests).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from vortex_kube.contract import ScaleSpec


@dataclass(frozen=True)
class Policy:
    """The knobs shared by every function (KPA's defaults where KPA has one)."""

    stable_window_s: float = 60.0
    panic_window_s: float = 6.0
    panic_threshold: float = 2.0
    max_scale_down_rate: float = 2.0
    scale_down_tolerance: float = 0.1


@dataclass(frozen=True)
class Decision:
    """What one tick decided: the desired pods, and why when that is a change."""

    desired: int
    stable_concurrency: float
    panic_concurrency: float
    panicking: bool
    reason: str | None = None

    def changes(self, current: int) -> bool:
        return self.desired != current


@dataclass
class Scaler:
    """The samples and panic state of one function (or of the pool)."""

    policy: Policy = field(default_factory=Policy)
    samples: deque[tuple[float, float]] = field(default_factory=deque)
    first_sample_at: float | None = None
    last_busy_at: float | None = None
    panic_since: float | None = None
    panic_high: int = 0

    def observe(self, now: float, concurrency: float) -> None:
        """One sample: the executions in flight (averaged over the tick) at `now`."""
        if self.first_sample_at is None:
            self.first_sample_at = now
        self.samples.append((now, max(0.0, concurrency)))
        if concurrency > 0:
            self.last_busy_at = now
        horizon = now - self.policy.stable_window_s
        while self.samples and self.samples[0][0] <= horizon:
            self.samples.popleft()

    def average(self, now: float, window_s: float) -> float:
        values = [value for at, value in self.samples if at > now - window_s]
        return sum(values) / len(values) if values else 0.0

    def decide(self, now: float, scale: ScaleSpec, current: int, ready: int) -> Decision:
        """The desired pods at `now`, given the pods asked for (`current`) and the ready ones."""
        policy = self.policy
        target = max(scale.target_concurrency, 1e-9)
        stable = self.average(now, policy.stable_window_s)
        panic = self.average(now, policy.panic_window_s)
        want_stable = math.ceil(stable / target)
        want_panic = math.ceil(panic / target)

        over = want_panic / max(ready, 1) >= policy.panic_threshold and want_panic > current
        if over:
            if self.panic_since is None:
                self.panic_high = current
            self.panic_since = now
        elif self.panic_since is not None and now - self.panic_since >= policy.stable_window_s:
            self.panic_since = None
            self.panic_high = 0
        panicking = self.panic_since is not None

        def decision(desired: int, reason: str | None) -> Decision:
            return Decision(desired, stable, panic, panicking, reason)

        if panicking:
            self.panic_high = max(self.panic_high, want_panic, current)
            desired, window = self.panic_high, policy.panic_window_s
            why = f"panic: {panic:.1f} in flight over the last"
        else:
            up = want_stable > current
            desired = want_stable if up else self._down(now, stable, target, current)
            window, why = policy.stable_window_s, f"{stable:.1f} in flight over the last"

        desired = self._zero(now, scale, desired)
        bounded = min(max(desired, scale.min_replicas), scale.max_replicas)
        if bounded == current:
            return decision(current, None)
        if bounded != desired:
            bound = "minReplicas" if bounded == scale.min_replicas else "maxReplicas"
            why = f"{why} {window:.0f}s, target {target:g} per pod, held at {bound} {bounded}"
        elif bounded == 0:
            idle = scale.scale_to_zero_after_s
            why = f"no execution in flight for {idle}s"
        else:
            why = f"{why} {window:.0f}s, target {target:g} per pod"
        return decision(bounded, f"{current} -> {bounded}: {why}")

    def _down(self, now: float, stable: float, target: float, current: int) -> int:
        """The pods after a scale-down step (or `current`: not yet, not enough, too noisy)."""
        policy = self.policy
        if self.first_sample_at is None or now - self.first_sample_at < policy.stable_window_s:
            return current  # the window is not full yet: what it shows is not the whole load
        fits = math.ceil(stable / (target * (1 - policy.scale_down_tolerance)))
        if fits >= current:
            return current
        floor = math.ceil(current / policy.max_scale_down_rate)
        return max(fits, floor, 1)

    def _zero(self, now: float, scale: ScaleSpec, desired: int) -> int:
        """0 once idle for `scale_to_zero_after_s` when minReplicas allows it, else `desired`."""
        if scale.min_replicas > 0 or desired > 1:
            return desired
        idle_since = self.last_busy_at if self.last_busy_at is not None else self.first_sample_at
        if idle_since is not None and now - idle_since >= scale.scale_to_zero_after_s:
            return 0
        return max(desired, 1)
