"""The one module that imports `kubernetes_asyncio`: the Kubernetes calls of the API and operator.

`KubeApi` speaks plain dicts (camelCase, as the API server does) for the kinds in `_PATHS`: get,
list, watch, create, server-side apply (field manager given per client, forced), merge patch,
status patch, scale patch, replace (compare-and-swap on resourceVersion) and delete; and it reads
a pod's container log (`pods/log`, once or followed) as bytes. Every failure is raised as one of
`errors.py`'s kinds, so no `kubernetes_asyncio` or `aiohttp` type leaks out. Callers: the API's
Kubernetes backend, informers, pod runner and pod records reader; the operator's controller,
leader election and autoscaler (kopf keeps its own client for watching and patching handlers'
bodies).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from vortex_kube.contract import GROUP, PLURAL, VERSION
from vortex_kube.errors import KubeError, NotFound, Unavailable, kube_error

_PATHS = {
    "Pod": "/api/v1/namespaces/{namespace}/pods/{name}",
    "Service": "/api/v1/namespaces/{namespace}/services/{name}",
    "Secret": "/api/v1/namespaces/{namespace}/secrets/{name}",
    "ConfigMap": "/api/v1/namespaces/{namespace}/configmaps/{name}",
    "Event": "/api/v1/namespaces/{namespace}/events/{name}",
    "Deployment": "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
    "EndpointSlice": "/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices/{name}",
    "NetworkPolicy": "/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies/{name}",
    "Lease": "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}",
    "VortexFunction": f"/apis/{GROUP}/{VERSION}/namespaces/{{namespace}}/{PLURAL}/{{name}}",
}
_TIMEOUT_S = 15
_JSON = "application/json"
_MERGE = "application/merge-patch+json"


def path_of(kind: str, namespace: str, name: str = "") -> str:
    """The REST path of an object, or of its collection without a name."""
    path = _PATHS[kind].format(namespace=namespace, name=name)
    return path if name else path.rstrip("/")


def _message(exc: ApiException) -> tuple[str, str]:
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        return str(exc.reason), ""
    if not isinstance(body, dict):
        return str(exc.reason), ""
    return str(body.get("message") or exc.reason), str(body.get("reason") or "")


def _failure(status: int, text: str) -> KubeError:
    """The error of a non-2xx answer read without the generated client (a `Status` body)."""
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return kube_error(status, text[:500])
    return kube_error(status, str(body.get("message") or text[:500]), str(body.get("reason") or ""))


@contextlib.contextmanager
def _mapped() -> Iterator[None]:
    try:
        yield
    except ApiException as exc:
        message, reason = _message(exc)
        raise kube_error(int(exc.status or 0), message, reason) from exc
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise Unavailable(0, repr(exc)) from exc


class KubeApi:
    """Plain-dict calls against the API server; `field_manager` owns what `apply` writes."""

    def __init__(self, api_client: Any, field_manager: str) -> None:
        self.api_client = api_client
        self.field_manager = field_manager

    @classmethod
    async def connect(cls, field_manager: str) -> KubeApi:
        """In-cluster config if there is one, else the kubeconfig ($KUBECONFIG)."""
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        except config.ConfigException:
            await config.load_kube_config()
        return cls(client.ApiClient(), field_manager)

    @classmethod
    def for_host(cls, host: str, field_manager: str) -> KubeApi:
        """A client of the API server at `host` without credentials (tests, kubectl proxy)."""
        return cls(client.ApiClient(client.Configuration(host=host)), field_manager)

    async def close(self) -> None:
        await self.api_client.close()

    async def _request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = _JSON,
        query: list[tuple[str, str]] | None = None,
    ) -> dict[str, Any]:
        with _mapped():
            result = await self.api_client.call_api(
                path,
                method,
                query_params=query or [],
                header_params={"Accept": _JSON, "Content-Type": content_type},
                body=body,
                response_types_map={200: "object", 201: "object", 202: "object"},
                auth_settings=["BearerToken"],
                _return_http_data_only=True,
                _request_timeout=_TIMEOUT_S,
            )
        return dict(result or {})

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None if it does not exist."""
        try:
            return await self._request("GET", path_of(kind, namespace, name))
        except NotFound:
            return None

    async def list(
        self, kind: str, namespace: str, label_selector: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Every object of `kind` in the namespace and the list's resourceVersion."""
        query = [("labelSelector", label_selector)] if label_selector else []
        result = await self._request("GET", path_of(kind, namespace), query=query)
        version = (result.get("metadata") or {}).get("resourceVersion")
        return list(result.get("items") or []), version

    async def watch(
        self,
        kind: str,
        namespace: str,
        resource_version: str | None,
        label_selector: str | None = None,
        timeout_s: int = 300,
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """(event type, object) pairs after `resource_version`, until the server ends the watch.

        An ERROR event (e.g. 410 when the version is too old) is raised as its `KubeError`."""
        query = [("watch", "true"), ("timeoutSeconds", str(timeout_s))]
        if resource_version:
            query.append(("resourceVersion", resource_version))
        if label_selector:
            query.append(("labelSelector", label_selector))
        with _mapped():
            response = await self.api_client.call_api(
                path_of(kind, namespace),
                "GET",
                query_params=query,
                header_params={"Accept": _JSON},
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=timeout_s + _TIMEOUT_S,
            )
        try:
            if not 200 <= response.status <= 299:
                raise _failure(response.status, await response.text())
            while True:
                with _mapped():
                    line = await response.content.readline()
                if not line:
                    return
                if not line.strip():
                    continue
                event = json.loads(line)
                obj = dict(event.get("object") or {})
                if event.get("type") == "ERROR":
                    raise kube_error(
                        int(obj.get("code") or 500),
                        str(obj.get("message")),
                        str(obj.get("reason") or ""),
                    )
                yield str(event["type"]), obj
        finally:
            response.release()

    async def pod_log(
        self,
        namespace: str,
        name: str,
        container: str | None = None,
        *,
        since_time: str | None = None,
        previous: bool = False,
        follow: bool = False,
    ) -> AsyncIterator[bytes]:
        """A pod's container log, without timestamps, as blocks of whole lines (each block ends
        with a newline) as they arrive: the log so far, and with `follow` every line written
        after, until the container ends or the caller stops iterating.

        `since_time` (RFC 3339) keeps the lines the kubelet received since then (to the second);
        `previous` reads the container's previous instance (after a restart). A gone pod is
        `NotFound`; a container that has not started, or has no previous instance, `Invalid`."""
        query = [("container", container)] if container else []
        if since_time:
            query.append(("sinceTime", since_time))
        if previous:
            query.append(("previous", "true"))
        if follow:
            query.append(("follow", "true"))
        with _mapped():
            response = await self.api_client.call_api(
                path_of("Pod", namespace, name) + "/log",
                "GET",
                query_params=query,
                header_params={"Accept": "*/*"},
                auth_settings=["BearerToken"],
                _preload_content=False,
                # A followed log stays open as long as the container runs: bound only the connect.
                _request_timeout=(_TIMEOUT_S, None) if follow else _TIMEOUT_S,
            )
        try:
            if not 200 <= response.status <= 299:
                raise _failure(response.status, await response.text())
            partial = b""
            while True:
                with _mapped():
                    chunk = await response.content.readany()
                if not chunk:
                    break
                end = chunk.rfind(b"\n") + 1
                if not end:
                    partial += chunk
                    continue
                yield partial + chunk[:end] if partial else chunk[:end]
                partial = chunk[end:]
            if partial:
                yield partial + b"\n"
        finally:
            response.release()

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """POST; `Conflict` if the name is taken. The object's fields are this manager's (what
        `managedFields`, and so a version's `createdBy`, name)."""
        meta = obj["metadata"]
        path = path_of(obj["kind"], meta["namespace"])
        query = [("fieldManager", self.field_manager)]
        return await self._request("POST", path, obj, query=query) or obj

    async def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply of a whole object (forced); returns the object as stored.

        Applying the same desired object twice changes nothing, and a hand edit of a field this
        manager owns is taken back."""
        meta = obj["metadata"]
        return await self._request(
            "PATCH",
            path_of(obj["kind"], meta["namespace"], meta["name"]),
            obj,
            content_type="application/apply-patch+yaml",
            query=[("fieldManager", self.field_manager), ("force", "true")],
        )

    async def merge_patch(
        self, kind: str, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        """RFC 7386 merge patch (nulls remove fields, lists are replaced whole)."""
        return await self._request(
            "PATCH",
            path_of(kind, namespace, name),
            patch,
            content_type=_MERGE,
            query=[("fieldManager", self.field_manager)],
        )

    async def merge_spec(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Merge patch of an object's labels and spec. For a hand edit that server-side apply
        cannot merge (e.g. a Service port changed, which is a list-map key)."""
        meta = obj["metadata"]
        patch = {"metadata": {"labels": meta.get("labels") or {}}, "spec": obj.get("spec") or {}}
        return await self.merge_patch(obj["kind"], meta["namespace"], meta["name"], patch)

    async def patch_status(
        self, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Merge-patch a VortexFunction's status; None if the function is gone."""
        path = path_of("VortexFunction", namespace, name) + "/status"
        try:
            return await self._request("PATCH", path, {"status": patch}, content_type=_MERGE)
        except NotFound:
            return None

    async def patch_scale(
        self, kind: str, namespace: str, name: str, replicas: int
    ) -> dict[str, Any] | None:
        """Set `spec.replicas` through the scale subresource (a VortexFunction's or a
        Deployment's), as `kubectl scale` does; None if the object is gone."""
        path = path_of(kind, namespace, name) + "/scale"
        try:
            return await self._request(
                "PATCH",
                path,
                {"spec": {"replicas": replicas}},
                content_type=_MERGE,
                query=[("fieldManager", self.field_manager)],
            )
        except NotFound:
            return None

    async def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        """PUT; the object's resourceVersion makes it a compare-and-swap (`Conflict`)."""
        meta = obj["metadata"]
        return await self._request(
            "PUT", path_of(obj["kind"], meta["namespace"], meta["name"]), obj
        )

    async def delete(
        self, kind: str, namespace: str, name: str, grace_period_s: int | None = None
    ) -> bool:
        """Delete (background propagation); False if it was not there."""
        options: dict[str, Any] = {"propagationPolicy": "Background"}
        if grace_period_s is not None:
            options["gracePeriodSeconds"] = grace_period_s
        try:
            await self._request("DELETE", path_of(kind, namespace, name), options)
        except NotFound:
            return False
        return True


__all__ = ["KubeApi", "KubeError", "path_of"]
