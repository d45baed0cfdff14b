"""The CRD: structural schema, defaults and bounds, CEL rules, subresources, examples."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vortex_kube.contract import DEFAULT_RESOURCES, FunctionSpec
from vortex_runtime import check

ROOT = Path(__file__).resolve().parents[3]
CRD = yaml.safe_load((ROOT / "crds" / "vortexfunction.yaml").read_text())
VERSION = CRD["spec"]["versions"][0]
SCHEMA = VERSION["schema"]["openAPIV3Schema"]
SPEC = SCHEMA["properties"]["spec"]
EXAMPLES = sorted((ROOT / "crds" / "examples").glob("*.yaml"))


def test_names() -> None:
    assert CRD["metadata"]["name"] == "vortexfunctions.vortex.dev"
    assert CRD["spec"]["group"] == "vortex.dev"
    assert CRD["spec"]["scope"] == "Namespaced"
    assert CRD["spec"]["names"]["kind"] == "VortexFunction"
    assert CRD["spec"]["names"]["shortNames"] == ["vf"]
    assert VERSION["name"] == "v1alpha1"


def test_subresources() -> None:
    assert VERSION["subresources"]["status"] == {}
    assert VERSION["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }


def test_printer_columns() -> None:
    columns = {c["name"]: c["jsonPath"] for c in VERSION["additionalPrinterColumns"]}
    assert list(columns)[:4] == ["Ready", "Isolation", "Replicas", "Code"]
    assert columns["Isolation"] == ".spec.isolation"
    assert all("priority" not in c for c in VERSION["additionalPrinterColumns"][:4])
    assert columns["Ready"] == '.status.conditions[?(@.type=="Ready")].status'
    assert columns["Code"] == ".status.codeShortSha256"
    assert columns["Age"] == ".metadata.creationTimestamp"
    wide = {c["name"]: c for c in VERSION["additionalPrinterColumns"] if c.get("priority") == 1}
    assert wide["Desired"]["jsonPath"] == ".status.desiredReplicas"
    assert wide["In-Flight"]["jsonPath"] == ".status.observedConcurrency"


def test_exactly_one_of_code_and_code_ref() -> None:
    rules = [r["rule"] for r in SPEC["x-kubernetes-validations"]]
    assert rules[0] == "has(self.code) != has(self.codeRef)"
    ref_rules = [r["rule"] for r in SPEC["properties"]["codeRef"]["x-kubernetes-validations"]]
    assert ref_rules == ["has(self.configMapKeyRef) != has(self.s3)"]
    assert SPEC["properties"]["code"]["maxLength"] == 1 << 20


def test_defaults_match_the_operator() -> None:
    props = SPEC["properties"]
    parsed = FunctionSpec.parse({"code": "x"})
    assert props["timeoutMs"]["default"] == parsed.timeout_ms == 5000
    assert props["memoryMb"]["default"] == parsed.memory_mb == 128
    assert props["replicas"]["default"] == parsed.replicas == 1
    assert props["concurrency"]["default"] == parsed.concurrency
    assert props["isolation"]["default"] == parsed.isolation == "shared"
    assert props["isolation"]["enum"] == ["shared", "warm", "pod"]
    assert props["resources"]["default"] == DEFAULT_RESOURCES == parsed.resources


@pytest.mark.parametrize(
    ("field", "low", "high"),
    [
        ("timeoutMs", 1, 300000),
        ("memoryMb", 16, 4096),
        ("replicas", 0, 100),
        ("concurrency", 1, 64),
    ],
)
def test_bounds(field: str, low: int, high: int) -> None:
    assert SPEC["properties"][field]["minimum"] == low
    assert SPEC["properties"][field]["maximum"] == high


def _walk(schema: dict, path: str = "") -> list[str]:
    """Paths where a structural schema lacks a type (allowed only with int-or-string)."""
    bad = []
    if "type" not in schema and not schema.get("x-kubernetes-int-or-string"):
        bad.append(path)
    for name, sub in (schema.get("properties") or {}).items():
        bad += _walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        bad += _walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        bad += _walk(schema["additionalProperties"], f"{path}{{}}")
    return bad


def test_schema_is_structural() -> None:
    assert _walk(SCHEMA) == []
    assert "x-kubernetes-preserve-unknown-fields" not in SCHEMA["properties"]["status"]


def test_condition_shape() -> None:
    item = SCHEMA["properties"]["status"]["properties"]["conditions"]["items"]
    assert set(item["properties"]) >= {
        "type",
        "status",
        "reason",
        "message",
        "lastTransitionTime",
        "observedGeneration",
    }


def test_examples_exist() -> None:
    assert {p.stem for p in EXAMPLES} >= {"hello", "async", "event"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_is_a_valid_function(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    assert doc["apiVersion"] == "vortex.dev/v1alpha1"
    assert doc["kind"] == "VortexFunction"
    assert ("code" in doc["spec"]) != ("codeRef" in doc["spec"])
    assert set(doc["spec"]) <= set(SPEC["properties"])
    check(doc["spec"]["code"])


def test_scale_applies_to_warm_functions_and_stays_within_concurrency() -> None:
    rules = {r["rule"]: r["message"] for r in SPEC["x-kubernetes-validations"]}
    assert rules["!has(self.scale) || self.isolation == 'warm'"] == (
        "spec.scale applies to isolation warm only"
    )
    assert any("targetConcurrency <= self.concurrency" in rule for rule in rules)


def test_scale_rejects_min_over_max_and_allows_zero() -> None:
    scale = SPEC["properties"]["scale"]
    rules = {r["rule"]: r["message"] for r in scale["x-kubernetes-validations"]}
    assert rules == {
        "self.minReplicas <= self.maxReplicas": "spec.scale.minReplicas must not exceed"
        " spec.scale.maxReplicas"
    }
    assert scale["properties"]["minReplicas"]["minimum"] == 0
    assert "VORTEX_COLD_START_WAIT_S" in scale["properties"]["minReplicas"]["description"]
    assert all(prop.get("description") for prop in scale["properties"].values())


def test_autoscaler_status_fields() -> None:
    status = SCHEMA["properties"]["status"]["properties"]
    assert status["desiredReplicas"]["type"] == "integer"
    assert status["observedConcurrency"]["type"] == "number"
    assert status["lastScaleReason"]["type"] == "string"
    assert status["lastScaleTime"]["format"] == "date-time"
