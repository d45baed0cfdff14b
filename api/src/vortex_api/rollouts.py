"""Executions and failures per function version, as a progressive rollout judges a new version.

`Tally.count` is called by `execution.run` for every execution a backend ran (with the version that
ran and how it ended); a version's totals only grow. Local mode hands them to
`vortex_kube.rollout.Rollout.advance` itself; in the cluster `by_function` goes out in the load
report (`GET /internal/concurrency`), summed by the operator over the replicas. What counts as a
failure is the rollout contract's (`COUNTED_OUTCOMES`: the function threw, ran out of memory, or
timed out), not a busy or unreachable runtime.
"""

from __future__ import annotations

from vortex_kube.rollout import COUNTED_OUTCOMES


class Tally:
    """In-memory counters of this API process (a restart starts them again at 0)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], list[int]] = {}

    def count(self, function_id: str, version: int | None, outcome: str) -> None:
        if version is None:
            return
        counts = self._counts.setdefault((function_id, version), [0, 0])
        counts[0] += 1
        if outcome in COUNTED_OUTCOMES:
            counts[1] += 1

    def of(self, function_id: str, version: int) -> tuple[int, int]:
        """(executions, failures) of one version so far."""
        calls, errors = self._counts.get((function_id, version), (0, 0))
        return calls, errors

    def by_function(self) -> dict[str, dict[int, tuple[int, int]]]:
        """Every count, by function and version (the load report's `versions`)."""
        out: dict[str, dict[int, tuple[int, int]]] = {}
        for (function_id, version), (calls, errors) in self._counts.items():
            out.setdefault(function_id, {})[version] = (calls, errors)
        return out

    def forget(self, function_id: str) -> None:
        for key in [k for k in self._counts if k[0] == function_id]:
            del self._counts[key]
