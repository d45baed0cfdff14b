"""How fast the operator is on this machine (figures printed at the end of the session).

- apply -> Ready (median of 5), from just before `kubectl apply` to the watch showing Ready=True;
- apply -> first successful execute through the API (median of 5);
- reconcile latency for 50 functions applied at once: until each has its code stored and its
  children applied, and until all are Ready;
- the operator's resident memory after that.

The bounds asserted are sanity limits well above the goals (3 s to Ready), so a regression fails
the test while the figures themselves are reported, not asserted.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import threading
import time
from typing import Any

import pytest

from tests.integration.operator.conftest import Stack

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(600)]

SMALL = {"requests": {"cpu": "10m", "memory": "96Mi"}, "limits": {"memory": "256Mi"}}


def body(stack: Stack, name: str, code: str) -> dict[str, Any]:
    return {
        "apiVersion": "vortex.dev/v1alpha1",
        "kind": "VortexFunction",
        "metadata": {"name": name, "namespace": stack.namespace},
        # Warm: these figures are of the operator rolling out pods of their own.
        "spec": {"code": code, "resources": SMALL, "isolation": "warm"},
    }


class ReadyWatch:
    """`kubectl get vf -w`: the monotonic time each function is first seen Ready."""

    def __init__(self, stack: Stack) -> None:
        template = (
            '{.metadata.name} {.status.conditions[?(@.type=="CodeStored")].status}'
            ' {.status.conditions[?(@.type=="Ready")].status}{"\\n"}'
        )
        self.proc = subprocess.Popen(
            [
                str(stack.cluster.kubectl_path),
                "--kubeconfig",
                str(stack.cluster.kubeconfig),
                "-n",
                stack.namespace,
                "get",
                "vf",
                "-w",
                "-o",
                f"jsonpath={template}",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.stored: dict[str, float] = {}
        self.ready: dict[str, float] = {}
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        time.sleep(1)  # the watch is established

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            parts = line.split()
            if len(parts) < 2:
                continue
            now = time.monotonic()
            with self.changed:
                if parts[1] == "True":
                    self.stored.setdefault(parts[0], now)
                if len(parts) > 2 and parts[2] == "True":
                    self.ready.setdefault(parts[0], now)
                self.changed.notify_all()

    def wait(self, names: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.changed:
            while not all(n in self.ready for n in names):
                left = deadline - time.monotonic()
                if left <= 0:
                    missing = [n for n in names if n not in self.ready]
                    raise TimeoutError(f"not Ready after {timeout}s: {missing}")
                self.changed.wait(left)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.thread.join(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def test_apply_to_ready_and_to_first_execute(
    stack: Stack, measurements: dict[str, tuple[float, str]]
) -> None:
    assert stack.operator is not None
    measurements["operator_rss_idle_mb"] = (stack.operator.rss_mb(), "MiB")
    watch = ReadyWatch(stack)
    try:
        to_ready = []
        for i in range(5):
            name = f"speed-{i}"
            started = time.monotonic()
            stack.kubectl("apply", "-f", "-", input=json.dumps(body(stack, name, f"return {i};")))
            watch.wait([name], timeout=60)
            to_ready.append(watch.ready[name] - started)

        to_execute = []
        for i in range(5):
            name = f"first-{i}"
            started = time.monotonic()
            stack.kubectl("apply", "-f", "-", input=json.dumps(body(stack, name, f"return {i};")))
            response = stack.execute_until_ok(name, timeout=60)
            to_execute.append(time.monotonic() - started)
            assert response.json()["output"] == i
    finally:
        watch.close()

    measurements["apply_to_ready_median_s"] = (statistics.median(to_ready), "s")
    measurements["apply_to_ready_max_s"] = (max(to_ready), "s")
    measurements["apply_to_first_execute_median_s"] = (statistics.median(to_execute), "s")
    measurements["apply_to_first_execute_max_s"] = (max(to_execute), "s")
    assert statistics.median(to_ready) < 6
    assert statistics.median(to_execute) < 6
    stack.delete_all_functions()


def test_fifty_functions_at_once(stack: Stack, measurements: dict[str, tuple[float, str]]) -> None:
    assert stack.operator is not None
    names = [f"bulk-{i:02d}" for i in range(50)]
    items = [body(stack, n, f"return '{n}';") for n in names]
    watch = ReadyWatch(stack)
    try:
        started = time.monotonic()
        stack.kubectl(
            "apply",
            "-f",
            "-",
            input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
        )
        applied = time.monotonic()
        watch.wait(names, timeout=420)
    finally:
        watch.close()

    stored = sorted(watch.stored[n] - started for n in names)
    ready = sorted(watch.ready[n] - started for n in names)
    deployments = stack.cluster.get_json(
        "deployments",
        "-l",
        "app.kubernetes.io/managed-by=vortex-operator",
        namespace=stack.namespace,
    )["items"]
    assert len(deployments) == 50
    measurements["fifty_kubectl_apply_s"] = (applied - started, "s")
    measurements["fifty_reconciled_median_s"] = (statistics.median(stored), "s")
    measurements["fifty_reconciled_all_s"] = (stored[-1], "s")
    measurements["fifty_ready_median_s"] = (statistics.median(ready), "s")
    measurements["fifty_ready_all_s"] = (ready[-1], "s")
    measurements["operator_rss_after_fifty_mb"] = (stack.operator.rss_mb(), "MiB")
    assert stored[-1] < 60
    assert stack.operator.rss_mb() < 400
    stack.delete_all_functions(timeout=240)
