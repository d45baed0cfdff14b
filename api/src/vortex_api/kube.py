"""The one module that imports `kubernetes_asyncio`: VortexFunction, Pod and EndpointSlice calls.

The Kubernetes backend, its informers and the pod runner call `KubeClient`; everything comes back
as plain dicts (camelCase, as the API server speaks). API errors become `KubeError` with the HTTP
status (404 is `None`/`False` where "not there" is an answer), connection failures `KubeError`
with status 0, so no `kubernetes_asyncio` type leaks out of this module.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException

log = logging.getLogger("vortex_api.kubernetes")

GROUP = "vortex.dev"
VERSION = "v1alpha1"
PLURAL = "vortexfunctions"
KIND = "VortexFunction"


class KubeError(Exception):
    """A failed Kubernetes API call; `status` is its HTTP status, or 0 when unreachable."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"kubernetes API error {status}: {message}")
        self.status = status


@contextlib.contextmanager
def _mapped() -> Any:
    try:
        yield
    except ApiException as exc:
        raise KubeError(int(exc.status or 0), str(exc.reason)) from exc
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise KubeError(0, repr(exc)) from exc


class KubeClient:
    """Namespaced calls the API needs, returning dicts."""

    def __init__(self, api_client: Any, namespace: str) -> None:
        self.api_client = api_client
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)
        self.discovery = client.DiscoveryV1Api(api_client)

    @classmethod
    async def connect(cls, namespace: str) -> KubeClient:
        """In-cluster config if there is one, else the kubeconfig."""
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        except config.ConfigException:
            await config.load_kube_config()
        return cls(client.ApiClient(), namespace)

    async def close(self) -> None:
        await self.api_client.close()

    def _dict(self, obj: Any) -> dict[str, Any]:
        data: dict[str, Any] = self.api_client.sanitize_for_serialization(obj)
        return data

    # VortexFunction objects

    async def create_function(self, body: dict[str, Any]) -> dict[str, Any]:
        with _mapped():
            result = await self.custom.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, body
            )
        return result or body

    async def patch_function(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        with _mapped():
            result: dict[str, Any] = await self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, patch
            )
        return result

    async def get_function(self, name: str) -> dict[str, Any] | None:
        try:
            with _mapped():
                result: dict[str, Any] = await self.custom.get_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL, name
                )
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise
        return result

    async def delete_function(self, name: str) -> bool:
        try:
            with _mapped():
                await self.custom.delete_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL, name
                )
        except KubeError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # Pods (one-shot executions)

    async def create_pod(self, body: dict[str, Any]) -> dict[str, Any]:
        pod: Any = body
        with _mapped():
            return self._dict(await self.core.create_namespaced_pod(self.namespace, pod))

    async def get_pod(self, name: str) -> dict[str, Any] | None:
        try:
            with _mapped():
                return self._dict(await self.core.read_namespaced_pod(name, self.namespace))
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    async def delete_pod(self, name: str) -> None:
        try:
            with _mapped():
                await self.core.delete_namespaced_pod(name, self.namespace, grace_period_seconds=0)
        except KubeError as exc:
            if exc.status != 404:
                raise

    # List + watch

    def _lister(self, kind: str) -> Callable[..., Any]:
        if kind == "functions":

            def list_functions(**kwargs: Any) -> Any:
                return self.custom.list_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL, **kwargs
                )

            return list_functions

        def list_slices(**kwargs: Any) -> Any:
            return self.discovery.list_namespaced_endpoint_slice(self.namespace, **kwargs)

        return list_slices

    async def list(
        self, kind: str, label_selector: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Every object of `kind` ("functions" or "endpointslices") and the list's version."""
        kwargs = {"label_selector": label_selector} if label_selector else {}
        with _mapped():
            result = self._dict(await self._lister(kind)(**kwargs))
        version = (result.get("metadata") or {}).get("resourceVersion")
        return list(result.get("items") or []), version

    async def watch(
        self,
        kind: str,
        resource_version: str | None,
        label_selector: str | None = None,
        timeout_s: int = 300,
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """(event type, object) pairs after `resource_version`, until the server ends the watch."""
        kwargs: dict[str, Any] = {"timeout_seconds": timeout_s}
        if resource_version:
            kwargs["resource_version"] = resource_version
        if label_selector:
            kwargs["label_selector"] = label_selector
        stream = watch.Watch()
        try:
            with _mapped():
                async for event in stream.stream(self._lister(kind), **kwargs):
                    if event.get("type") == "ERROR":
                        raw = event.get("raw_object") or {}
                        raise KubeError(int(raw.get("code") or 500), str(raw.get("message")))
                    yield str(event["type"]), dict(event["raw_object"])
        finally:
            stream.stop()
            await stream.close()
