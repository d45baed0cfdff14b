"""The scaling decision with faked time: windows, panic mode, bounds, no flapping, scale to zero."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from vortex_kube.contract import ScaleSpec
from vortex_operator.autoscale import Policy, Scaler

TICK_S = 2.0
TARGET_5 = ScaleSpec(min_replicas=1, max_replicas=10, target_concurrency=5)


@dataclass
class Run:
    """A function under load, ticked every 2 s; its pods are ready `ready_after_s` after asked."""

    scale: ScaleSpec = TARGET_5
    current: int = 1
    ready_after_s: float = 4.0
    now: float = 0.0
    scaler: Scaler = field(default_factory=Scaler)
    changes: list[tuple[float, int, str]] = field(default_factory=list)
    _asked: list[tuple[float, int]] = field(default_factory=list)

    def ready(self) -> int:
        settled = [n for at, n in self._asked if at <= self.now - self.ready_after_s]
        return min(self.current, settled[-1] if settled else self.current)

    def for_seconds(self, seconds: float, load: Callable[[float], float]) -> None:
        end = self.now + seconds
        while self.now < end:
            self.now += TICK_S
            self.scaler.observe(self.now, load(self.now))
            decision = self.scaler.decide(self.now, self.scale, self.current, self.ready())
            if decision.changes(self.current):
                assert decision.reason
                self.changes.append((self.now, decision.desired, decision.reason))
                self.current = decision.desired
                self._asked.append((self.now, self.current))

    def first_at_least(self, pods: int) -> float | None:
        return next((at for at, n, _ in self.changes if n >= pods), None)


def steady(value: float) -> Callable[[float], float]:
    return lambda _: value


def test_a_burst_scales_up_within_seconds_through_the_panic_window() -> None:
    run = Run()
    run.for_seconds(60, steady(1))
    assert run.changes == []
    start = run.now
    run.for_seconds(30, steady(30))
    reached = run.first_at_least(6)
    assert reached is not None
    assert reached - start <= 6
    assert any("panic" in reason for _, _, reason in run.changes)
    assert run.current == 6


def test_no_scale_down_while_panicking() -> None:
    run = Run()
    run.for_seconds(60, steady(0))
    run.for_seconds(6, steady(40))
    high = run.current
    assert high >= 8
    # The burst ends; the panic holds for a whole stable window after it was last over.
    run.for_seconds(30, steady(0))
    assert run.current == high
    assert run.scaler.decide(run.now, run.scale, run.current, run.current).panicking


def test_stable_window_follows_a_slow_rise_without_panic() -> None:
    run = Run(current=2)
    load = 8.0
    run.for_seconds(60, steady(load))
    for _ in range(20):
        load += 1
        run.for_seconds(20, steady(load))
    assert run.current >= 5
    assert all("panic" not in reason for _, _, reason in run.changes)


def test_scale_down_after_the_load_stops_within_two_minutes() -> None:
    run = Run()
    run.for_seconds(120, steady(30))
    assert run.current == 6
    stopped = run.now
    run.for_seconds(150, steady(0))
    assert run.current == 1
    back = next(at for at, n, _ in run.changes if at > stopped and n == 1)
    assert back - stopped <= 120
    downs = [n for at, n, _ in run.changes if at > stopped]
    assert downs == sorted(downs, reverse=True)  # straight down, never back up


def test_scale_down_at_most_halves_per_tick() -> None:
    run = Run(scale=ScaleSpec(1, 20, 1))
    run.for_seconds(120, steady(16))
    assert run.current == 16
    run.scaler.samples.clear()  # as if the load had been gone for the whole window
    run.for_seconds(TICK_S, steady(0))
    assert run.current == 8
    run.for_seconds(TICK_S, steady(0))
    assert run.current == 4


def test_no_flapping_under_a_noisy_steady_load() -> None:
    noise = random.Random(7)
    run = Run(current=1)
    run.for_seconds(600, lambda _: max(0.0, 10 + noise.gauss(0, 3)))
    settled = [c for c in run.changes if c[0] > 120]
    assert len(settled) <= 1, settled
    assert run.current in (2, 3)


def test_bounds_hold_under_any_load() -> None:
    run = Run(scale=ScaleSpec(2, 4, 5), current=2)
    run.for_seconds(60, steady(500))
    assert run.current == 4
    assert "maxReplicas 4" in run.changes[-1][2]
    run.for_seconds(200, steady(0))
    assert run.current == 2


def test_pods_outside_the_bounds_move_in_at_once() -> None:
    scaler = Scaler()
    scaler.observe(2.0, 0)
    decision = scaler.decide(2.0, ScaleSpec(3, 5, 5), current=1, ready=1)
    assert decision.desired == 3
    assert decision.reason
    assert "minReplicas 3" in decision.reason
    decision = scaler.decide(2.0, ScaleSpec(1, 5, 5), current=9, ready=9)
    assert decision.desired == 5


def test_a_new_leader_with_an_empty_window_does_not_scale_down() -> None:
    run = Run(current=6)
    run.for_seconds(58, steady(0))
    assert run.changes == []
    run.for_seconds(4, steady(0))
    assert run.current == 3


def test_a_new_leader_still_scales_up() -> None:
    run = Run(current=2)
    run.for_seconds(4, steady(30))
    assert run.current == 6


def test_scale_to_zero_after_the_idle_time() -> None:
    scale = ScaleSpec(
        min_replicas=0, max_replicas=5, target_concurrency=5, scale_to_zero_after_s=60
    )
    run = Run(scale=scale)
    run.for_seconds(30, steady(3))
    run.for_seconds(58, steady(0))
    assert run.current == 1
    run.for_seconds(4, steady(0))
    assert run.current == 0
    assert "no execution in flight for 60s" in run.changes[-1][2]
    run.for_seconds(2, steady(2))
    assert run.current == 1


def test_requests_held_at_zero_wake_the_function_at_the_first_tick() -> None:
    """The API holds requests for a function at zero: they count in flight, and the next tick
    asks for the pods they need at once (panic: 0 ready pods)."""
    scale = ScaleSpec(
        min_replicas=0, max_replicas=5, target_concurrency=2.8, scale_to_zero_after_s=20
    )
    run = Run(scale=scale)
    run.for_seconds(24, steady(0))
    assert run.current == 0
    run.for_seconds(2, steady(20))
    assert run.current >= 3
    assert run.changes[-1][2].startswith("0 -> ")


def test_a_kept_minimum_never_goes_to_zero() -> None:
    run = Run(scale=ScaleSpec(1, 5, 5, 30))
    run.for_seconds(300, steady(0))
    assert run.current == 1
    assert run.changes == []


def test_samples_older_than_the_stable_window_are_dropped() -> None:
    scaler = Scaler(Policy(stable_window_s=10))
    for at in range(0, 30, 2):
        scaler.observe(float(at), float(at))
    assert min(at for at, _ in scaler.samples) > 28 - 10
    assert scaler.average(28.0, 6) == (24 + 26 + 28) / 3
