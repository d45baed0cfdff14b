"""The Kubernetes error tree: every failed call of `client.KubeApi` raises one of these.

    KubeError                (.status: the HTTP status, 0 when the API server was not reached)
    ├── NotFound        404  the object (or its namespace) does not exist
    ├── Conflict        409  it already exists, or a resourceVersion compare-and-swap lost
    ├── Invalid         422  the API server refused the object (schema, CEL, admission); 400 too
    ├── Forbidden       403  RBAC (or 401: no or bad credentials)
    ├── Expired         410  a watch's resourceVersion is too old: list again
    └── Unavailable          unreachable, timed out, throttled (429) or a 5xx; retrying may work

`client.py` maps `kubernetes_asyncio` and `aiohttp` exceptions here (and nowhere else). The API
answers each kind with one status (`vortex_api.errors.from_kube`: 404 FunctionNotFound, 409
Conflict, 400 InvalidRequest, 502 KubernetesForbidden, 502 KubernetesUnavailable); the operator
retries Unavailable and Conflict and reports the others in conditions.
"""

from __future__ import annotations


class KubeError(Exception):
    """A failed Kubernetes API call; `status` is its HTTP status, or 0 when unreachable."""

    def __init__(self, status: int, message: str, reason: str = "") -> None:
        super().__init__(f"Kubernetes API error {status}: {message}")
        self.status = status
        self.message = message
        self.reason = reason


class NotFound(KubeError):
    """404: no such object."""


class Conflict(KubeError):
    """409: the name is taken, or the object changed since it was read."""


class Invalid(KubeError):
    """422 (or 400): the API server refused the object; `message` names the field."""


class Forbidden(KubeError):
    """403 (or 401): the service account may not do this."""


class Expired(KubeError):
    """410: the resourceVersion a watch resumed from is gone."""


class Unavailable(KubeError):
    """The API server was unreachable, timed out, throttled us or failed (5xx)."""


_BY_STATUS: dict[int, type[KubeError]] = {
    400: Invalid,
    401: Forbidden,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Expired,
    422: Invalid,
}


def kube_error(status: int, message: str, reason: str = "") -> KubeError:
    """The error of the tree for an HTTP status (0: not reached)."""
    return _BY_STATUS.get(status, Unavailable)(status, message, reason)
