"""kopf's settings for this operator, applied by the startup handler.

- Progress and the last-handled spec are kept in `vortex.dev/` annotations (the status stanza is
  ours and structural). The last-handled spec records the code as its SHA-256: inline code can be
  1 MiB, annotations may hold 256 KiB in all.
- The finalizer is `vortex.dev/code-objects`.
- Children are watched through a server-side label selector (`managed-by=vortex-operator`).
- Successes of the child event handlers are not logged (one line per pod readiness change).
- Serving named namespaces only, kopf does not scan for namespaces and CRDs.
- Watch streams reconnect quickly and API calls time out, so a restarted API server or a broken
  connection heals in seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import kopf

from vortex_kube.contract import FINALIZER, MANAGED_BY_LABEL, OPERATOR
from vortex_runtime import sha256_hex

CHILDREN = (
    ("apps", "v1", "deployments"),
    ("", "v1", "services"),
    ("networking.k8s.io", "v1", "networkpolicies"),
)
PREFIX = "vortex.dev"


class CodeHashingDiffBase(kopf.AnnotationsDiffBaseStorage):
    """The last-handled spec in an annotation, with `spec.code` replaced by its hash."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        essence = super().build(body=body, extra_fields=extra_fields)
        spec = essence.get("spec")
        if isinstance(spec, dict) and isinstance(spec.get("code"), str):
            spec["code"] = "sha256:" + sha256_hex(spec["code"].encode())
        return essence


class QuietChildEvents(logging.Filter):
    """Drop kopf's "Handler '<child>_event' succeeded." lines: one per pod readiness change."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        message = record.getMessage()
        return not (message.startswith("Handler '") and "_event' succeeded" in message)


def configure(settings: kopf.OperatorSettings, namespaced: bool = False) -> None:
    """Apply our settings; `namespaced`: only named namespaces are served, so kopf need not
    list namespaces or watch CRDs (the RBAC does not allow it)."""
    settings.scanning.disabled = namespaced
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = CodeHashingDiffBase(
        prefix=PREFIX, key="last-handled-configuration"
    )
    for child in CHILDREN:
        settings.watching.label_selectors[child] = f"{MANAGED_BY_LABEL}={OPERATOR}"
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 5
    settings.watching.reconnect_backoff = 0.5
    settings.networking.request_timeout = 30
    settings.networking.connect_timeout = 5
    settings.posting.reporting_component = OPERATOR
    settings.posting.level = 20  # INFO: Normal and Warning events
    settings.execution.max_workers = 4
    objects = logging.getLogger("kopf.objects")
    if not any(isinstance(f, QuietChildEvents) for f in objects.filters):
        objects.addFilter(QuietChildEvents())
