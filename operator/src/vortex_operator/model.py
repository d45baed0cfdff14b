"""Who a VortexFunction is, for the operator: `FunctionRef` (pure).

The contract itself (group, names, labels, the spec with its defaults) is `vortex_kube.contract`,
shared with the API. `reconcile`, `manifests`, `events` and the controller use `FunctionRef` to
name, own and post Events about a function's children.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vortex_kube.contract import API_VERSION, KIND, child_name


@dataclass(frozen=True)
class FunctionRef:
    """Who a function is: enough to name, own and post Events about it."""

    namespace: str
    name: str
    uid: str
    generation: int = 0

    @classmethod
    def of(cls, body: dict[str, Any]) -> FunctionRef:
        meta = body.get("metadata") or {}
        return cls(
            namespace=str(meta.get("namespace") or ""),
            name=str(meta.get("name") or ""),
            uid=str(meta.get("uid") or ""),
            generation=int(meta.get("generation") or 0),
        )

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def child(self) -> str:
        return child_name(self.name)

    def owner_body(self) -> dict[str, Any]:
        """A minimal body of the VortexFunction, for owner references and Events."""
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"namespace": self.namespace, "name": self.name, "uid": self.uid},
        }
