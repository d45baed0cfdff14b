"""Which version of a function runs one execution: the traffic split, or a pinned version.

`Split` deals executions out by the weights of `spec.traffic` (`vortex_kube.versions.Traffic`)
with smooth weighted round-robin (as nginx balances upstreams): every 100 executions follow the
percents exactly, and the versions interleave instead of coming in runs. Each API process keeps
its own, so several replicas together keep the same split. A request's `X-Vortex-Version`
(`Pin`) takes a tag of the split or any kept version number instead.

Built once per function by `Function.with_versions` (functions.py); `execution.run` asks it for
the version of each execution.
"""

from __future__ import annotations

from vortex_api.errors import BadRequest, VersionNotFound
from vortex_kube.versions import History, Pin, Traffic, VersionError


class Split:
    """The version chooser of one function (all calls on one event loop)."""

    def __init__(self, history: History, traffic: Traffic) -> None:
        latest = history.latest
        self.latest = latest.number if latest else 0
        self.kept = frozenset(history.numbers())
        self.traffic = traffic
        weights = traffic.weights(self.latest)
        self._numbers = [n for n, _ in weights]
        self._weights = [w for _, w in weights]
        self._total = sum(self._weights)
        self._current = [0] * len(weights)
        self.single = len(weights) == 1

    def next(self) -> int:
        """The version of the next execution that names none."""
        if self.single:
            return self._numbers[0]
        current, weights = self._current, self._weights
        best = 0
        for i, weight in enumerate(weights):
            current[i] += weight
            if current[i] > current[best]:
                best = i
        current[best] -= self._total
        return self._numbers[best]

    def pinned(self, header: str) -> int:
        """The version an `X-Vortex-Version` header names: BadRequest if it is neither a tag
        nor a number, VersionNotFound if the function keeps no such version or tag."""
        try:
            pin = Pin.parse(header)
        except VersionError as exc:
            raise BadRequest(str(exc)) from None
        assert pin is not None
        if pin.number is not None:
            if pin.number not in self.kept:
                raise VersionNotFound(f"this function keeps no version {pin.number}")
            return pin.number
        number = self.traffic.tagged(pin.tag or "", self.latest)
        if number is None:
            raise VersionNotFound(f"no traffic entry of this function has the tag {pin.given!r}")
        return number
