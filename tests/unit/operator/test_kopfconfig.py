"""kopf settings: annotation storages under vortex.dev, code hashed in the last-handled spec."""

from __future__ import annotations

import json
import logging

import kopf

from vortex_operator.kopfconfig import CodeHashingDiffBase, QuietChildEvents, configure
from vortex_runtime import sha256_hex


def body(code: str, replicas: int = 1) -> kopf.Body:
    return kopf.Body(
        {
            "apiVersion": "vortex.dev/v1alpha1",
            "kind": "VortexFunction",
            "metadata": {"name": "big", "namespace": "fns", "annotations": {}},
            "spec": {"code": code, "replicas": replicas},
            "status": {"phase": "Ready"},
        }
    )


def test_last_handled_spec_holds_the_code_hash_not_the_code() -> None:
    storage = CodeHashingDiffBase(prefix="vortex.dev", key="last-handled-configuration")
    code = "return 1;" + " " * (900 * 1024)
    essence = storage.build(body=body(code))
    assert essence["spec"]["code"] == "sha256:" + sha256_hex(code.encode())
    assert essence["spec"]["replicas"] == 1
    assert "status" not in essence
    patch = kopf.Patch()
    storage.store(body=body(code), patch=patch, essence=essence)
    stored = patch["metadata"]["annotations"]["vortex.dev/last-handled-configuration"]
    assert len(stored) < 1000
    assert json.loads(stored) == essence


def test_a_code_change_is_a_change_of_essence() -> None:
    storage = CodeHashingDiffBase(prefix="vortex.dev", key="last-handled-configuration")
    assert storage.build(body=body("return 1;")) != storage.build(body=body("return 2;"))
    assert storage.build(body=body("return 1;")) == storage.build(body=body("return 1;"))


def test_configure() -> None:
    settings = kopf.OperatorSettings()
    configure(settings)
    assert settings.persistence.finalizer == "vortex.dev/code-objects"
    assert isinstance(settings.persistence.diffbase_storage, CodeHashingDiffBase)
    assert isinstance(settings.persistence.progress_storage, kopf.AnnotationsProgressStorage)
    selectors = list(settings.watching.label_selectors.values())
    assert selectors == ["app.kubernetes.io/managed-by=vortex-operator"] * 3


def test_child_event_successes_are_not_logged() -> None:
    quiet = QuietChildEvents()

    def record(message: str, level: int = logging.INFO) -> logging.LogRecord:
        return logging.LogRecord("kopf.objects", level, __file__, 1, message, None, None)

    assert not quiet.filter(record("Handler 'deployment_event' succeeded."))
    assert quiet.filter(record("Handler 'created' succeeded."))
    assert quiet.filter(record("Handler 'deployment_event' failed.", logging.ERROR))


def test_namespaced_mode_does_not_scan() -> None:
    settings = kopf.OperatorSettings()
    configure(settings, namespaced=True)
    assert settings.scanning.disabled is True
    configure(settings, namespaced=False)
    assert settings.scanning.disabled is False
