"""The operator's error tree; foreign exceptions are mapped where their client lives.

    OperatorError                 (base)
    ├── StorageError              MinIO answered with an error we cannot retry away
    │   └── StorageUnavailable    MinIO is unreachable, timed out, or answered 5xx (retry)
    ├── ObjectMissing             a code object (codeRef.s3) does not exist
    └── CodeSourceError           codeRef points at nothing usable (missing ConfigMap/key, too big)

    vortex_kube.errors.KubeError  a Kubernetes API call failed (.status; 0 when unreachable), with
                                  one subclass per kind (NotFound, Conflict, Invalid, ...)

`storage.py` maps minio/urllib3 errors; `vortex_kube.client`, shared with the API, maps
kubernetes_asyncio/aiohttp errors. The controller turns the retryable ones into
`kopf.TemporaryError(delay=...)` through `handlers.py` (`Retry`), and reports the others as False
conditions.
"""

from __future__ import annotations

from vortex_kube.errors import KubeError


class OperatorError(Exception):
    """Base of every error the operator raises on purpose."""


class StorageError(OperatorError):
    """MinIO refused a request (bad credentials, bad bucket name, ...)."""


class StorageUnavailable(StorageError):
    """MinIO cannot be reached right now; retrying later may succeed."""


class ObjectMissing(OperatorError):
    """The object named by `codeRef.s3` does not exist."""


class CodeSourceError(OperatorError):
    """`codeRef` cannot be resolved to code: a missing ConfigMap or key, or code over 1 MiB."""


class TickNotQueued(OperatorError):
    """No API replica queued a cron tick (each one's answer in the message)."""


class Retry(OperatorError):
    """Try the whole reconciliation again after `delay` seconds (kopf.TemporaryError)."""

    def __init__(self, message: str, delay: float) -> None:
        super().__init__(message)
        self.delay = delay


__all__ = [
    "CodeSourceError",
    "KubeError",
    "ObjectMissing",
    "OperatorError",
    "Retry",
    "StorageError",
    "StorageUnavailable",
]
