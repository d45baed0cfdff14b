"""The one module that imports `kubernetes_asyncio`: the calls the controller and the leader
election make besides kopf's own watching and patching.

Children are written with server-side apply (field manager `vortex-operator`, forced), so applying
the same desired object twice changes nothing and a hand edit of a field we own is taken back.
Everything comes back as plain dicts; API errors become `KubeError` with the HTTP status,
connection failures `KubeError(0, ...)`.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from vortex_operator.errors import KubeError
from vortex_operator.model import FIELD_MANAGER, GROUP, PLURAL, VERSION

log = logging.getLogger("vortex_operator.kube")

_PATHS = {
    "Deployment": "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
    "Service": "/api/v1/namespaces/{namespace}/services/{name}",
    "Secret": "/api/v1/namespaces/{namespace}/secrets/{name}",
    "ConfigMap": "/api/v1/namespaces/{namespace}/configmaps/{name}",
    "NetworkPolicy": "/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies/{name}",
    "Lease": "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}",
    "VortexFunction": f"/apis/{GROUP}/{VERSION}/namespaces/{{namespace}}/{PLURAL}/{{name}}",
}
_TIMEOUT_S = 15


def path_of(kind: str, namespace: str, name: str = "") -> str:
    path = _PATHS[kind].format(namespace=namespace, name=name)
    return path if name else path.rstrip("/")


@contextlib.contextmanager
def _mapped() -> Iterator[None]:
    try:
        yield
    except ApiException as exc:
        raise KubeError(int(exc.status or 0), _message(exc)) from exc
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise KubeError(0, repr(exc)) from exc


def _message(exc: ApiException) -> str:
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        return str(exc.reason)
    return str(body.get("message") or exc.reason)


class KubeApi:
    """Plain-dict calls against the API server."""

    def __init__(self, api_client: Any) -> None:
        self.api_client = api_client

    @classmethod
    async def connect(cls) -> KubeApi:
        """In-cluster config if there is one, else the kubeconfig ($KUBECONFIG)."""
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        except config.ConfigException:
            await config.load_kube_config()
        return cls(client.ApiClient())

    async def close(self) -> None:
        await self.api_client.close()

    async def _request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        query: list[tuple[str, str]] | None = None,
    ) -> dict[str, Any]:
        with _mapped():
            result = await self.api_client.call_api(
                path,
                method,
                query_params=query or [],
                header_params={"Accept": "application/json", "Content-Type": content_type},
                body=body,
                response_types_map={200: "object", 201: "object", 202: "object"},
                auth_settings=["BearerToken"],
                _return_http_data_only=True,
                _request_timeout=_TIMEOUT_S,
            )
        return dict(result or {})

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return await self._request("GET", path_of(kind, namespace, name))
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    async def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply of a whole object; returns the object as stored."""
        meta = obj["metadata"]
        path = path_of(obj["kind"], meta["namespace"], meta["name"])
        return await self._request(
            "PATCH",
            path,
            obj,
            content_type="application/apply-patch+yaml",
            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
        )

    async def merge_spec(self, obj: dict[str, Any]) -> dict[str, Any]:
        """JSON merge patch of labels and spec: lists are replaced whole. For a hand edit that
        server-side apply cannot merge (e.g. a Service port changed, which is a list-map key)."""
        meta = obj["metadata"]
        patch = {"metadata": {"labels": meta.get("labels") or {}}, "spec": obj.get("spec") or {}}
        return await self._request(
            "PATCH",
            path_of(obj["kind"], meta["namespace"], meta["name"]),
            patch,
            content_type="application/merge-patch+json",
            query=[("fieldManager", FIELD_MANAGER)],
        )

    async def delete(self, kind: str, namespace: str, name: str) -> bool:
        """Delete (background propagation); False if it was not there."""
        try:
            await self._request(
                "DELETE",
                path_of(kind, namespace, name),
                {"propagationPolicy": "Background"},
            )
        except KubeError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def patch_status(
        self, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Merge-patch a VortexFunction's status; None if the function is gone."""
        path = path_of("VortexFunction", namespace, name) + "/status"
        try:
            return await self._request(
                "PATCH", path, {"status": patch}, content_type="application/merge-patch+json"
            )
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        return await self._request("POST", path_of(obj["kind"], meta["namespace"]), obj)

    async def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        """PUT; the object's resourceVersion makes it a compare-and-swap (409 on conflict)."""
        meta = obj["metadata"]
        return await self._request(
            "PUT", path_of(obj["kind"], meta["namespace"], meta["name"]), obj
        )
