"""CustomResourceDefinitions round-trip through the real apiserver with schema validation."""

from __future__ import annotations

import pytest

from tests.cluster.fixtures import Cluster

pytestmark = pytest.mark.cluster

CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.clustertest.vortex.dev
spec:
  group: clustertest.vortex.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        required: [spec]
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 1, maximum: 10}
              color: {type: string, enum: [red, blue]}
              labels:
                type: array
                items: {type: string}
"""


def widget(name: str, spec: str) -> str:
    return f"""
apiVersion: clustertest.vortex.dev/v1
kind: Widget
metadata:
  name: {name}
spec:
{spec}
"""


@pytest.fixture
def crd(cluster: Cluster):
    cluster.apply(CRD)
    cluster.kubectl(
        "wait", "--for=condition=Established", "crd/widgets.clustertest.vortex.dev", "--timeout=60s"
    )
    yield "widgets.clustertest.vortex.dev"
    cluster.kubectl("delete", "crd", "widgets.clustertest.vortex.dev", "--wait=false", check=False)


def test_custom_resource_round_trips(cluster: Cluster, crd: str, namespace: str):
    cluster.apply(widget("good", "  size: 3\n  color: blue\n  labels: [a, b]"), namespace=namespace)
    obj = cluster.get_json("widget", "good", namespace=namespace)
    assert obj["kind"] == "Widget"
    assert obj["spec"] == {"size": 3, "color": "blue", "labels": ["a", "b"]}
    assert obj["metadata"]["uid"]
    listed = cluster.get_json("widgets", namespace=namespace)
    assert [i["metadata"]["name"] for i in listed["items"]] == ["good"]

    # an update round-trips too
    cluster.apply(widget("good", "  size: 4\n  color: red"), namespace=namespace)
    assert cluster.get_json("widget", "good", namespace=namespace)["spec"] == {
        "size": 4,
        "color": "red",
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("  size: big", "spec.size"),
        ("  size: 50", "spec.size"),
        ("  size: 2\n  color: green", "spec.color"),
        ("  color: red", "spec.size"),
    ],
    ids=["wrong-type", "above-maximum", "not-in-enum", "missing-required"],
)
def test_invalid_custom_resource_is_rejected(
    cluster: Cluster, crd: str, namespace: str, spec: str, message: str
):
    proc = cluster.apply(widget("bad", spec), namespace=namespace, check=False)
    assert proc.returncode != 0
    assert "is invalid" in proc.stderr, proc.stderr
    assert message in proc.stderr
    got = cluster.kubectl("get", "widget", "bad", namespace=namespace, check=False)
    assert got.returncode != 0
    assert "NotFound" in got.stderr
