"""The one VortexFunction contract equals the CRD: names, every default and bound, and the chart's
runtime image default; `FunctionSpec.parse` applies the CRD's defaults itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from vortex_kube import contract, versions
from vortex_kube.contract import FunctionSpec

ROOT = Path(__file__).resolve().parents[3]
CRD = yaml.safe_load((ROOT / "crds" / "vortexfunction.yaml").read_text())
VERSION = CRD["spec"]["versions"][0]
SPEC = VERSION["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
# CRD spec property -> (default, minimum, maximum) in the contract
NUMBERS: dict[str, tuple[int, int, int]] = {
    "timeoutMs": (contract.DEFAULT_TIMEOUT_MS, contract.MIN_TIMEOUT_MS, contract.MAX_TIMEOUT_MS),
    "memoryMb": (contract.DEFAULT_MEMORY_MB, contract.MIN_MEMORY_MB, contract.MAX_MEMORY_MB),
    "concurrency": (
        contract.DEFAULT_CONCURRENCY,
        contract.MIN_CONCURRENCY,
        contract.MAX_CONCURRENCY,
    ),
    "replicas": (contract.DEFAULT_REPLICAS, contract.MIN_REPLICAS, contract.MAX_REPLICAS),
    "revisionHistoryLimit": (
        versions.DEFAULT_HISTORY_LIMIT,
        versions.MIN_HISTORY_LIMIT,
        versions.MAX_HISTORY_LIMIT,
    ),
}
SCALE = SPEC["scale"]["properties"]
SCALE_NUMBERS: dict[str, tuple[int, int, int]] = {
    "minReplicas": (contract.DEFAULT_MIN_SCALE, contract.MIN_MIN_SCALE, contract.MAX_REPLICAS),
    "maxReplicas": (contract.DEFAULT_MAX_SCALE, contract.MIN_MAX_SCALE, contract.MAX_REPLICAS),
    "scaleToZeroAfterSeconds": (
        contract.DEFAULT_SCALE_TO_ZERO_S,
        contract.MIN_SCALE_TO_ZERO_S,
        contract.MAX_SCALE_TO_ZERO_S,
    ),
}


def test_names_equal_the_crd() -> None:
    assert CRD["spec"]["group"] == contract.GROUP
    assert VERSION["name"] == contract.VERSION
    names = CRD["spec"]["names"]
    assert (names["plural"], names["kind"]) == (contract.PLURAL, contract.KIND)
    assert names["shortNames"] == [contract.SHORT_NAME]
    assert CRD["metadata"]["name"] == f"{contract.PLURAL}.{contract.GROUP}"


@pytest.mark.parametrize(("prop", "bounds"), NUMBERS.items())
def test_numeric_defaults_and_bounds_equal_the_crd(prop: str, bounds: tuple[int, int, int]) -> None:
    crd = SPEC[prop]
    assert (crd["default"], crd["minimum"], crd["maximum"]) == bounds


def test_the_traffic_split_has_the_crds_shape() -> None:
    traffic = SPEC["traffic"]
    assert traffic["maxItems"] == versions.MAX_TRAFFIC_TARGETS
    entry = traffic["items"]["properties"]
    assert set(entry) == {"version", "latest", "percent", "tag"}
    assert entry["tag"]["pattern"] == versions.TAG_PATTERN
    assert (entry["percent"]["minimum"], entry["percent"]["maximum"]) == (0, 100)
    parsed = FunctionSpec.parse({"traffic": [{"latest": True, "percent": 100}]})
    assert parsed.traffic == versions.Traffic.parse([{"latest": True, "percent": 100}])
    assert FunctionSpec.parse({}).revision_history_limit == versions.DEFAULT_HISTORY_LIMIT


def test_the_cpu_limit_has_the_crds_bounds_and_no_default() -> None:
    crd = SPEC["cpuLimitMs"]
    assert (crd["minimum"], crd["maximum"]) == (
        contract.MIN_CPU_LIMIT_MS,
        contract.MAX_CPU_LIMIT_MS,
    )
    assert "default" not in crd
    assert FunctionSpec.parse({"code": "return 1;"}).cpu_limit_ms is None
    assert FunctionSpec.parse({"code": "return 1;", "cpuLimitMs": 50}).cpu_limit_ms == 50


def test_other_bounds_equal_the_crd() -> None:
    assert SPEC["code"]["maxLength"] == contract.MAX_CODE_BYTES
    env = SPEC["env"]
    assert env["maxItems"] == contract.MAX_ENV_ENTRIES
    item = env["items"]["properties"]
    assert item["name"]["maxLength"] == contract.MAX_ENV_NAME_CHARS
    assert item["value"]["maxLength"] == contract.MAX_ENV_VALUE_CHARS
    assert tuple(SPEC["isolation"]["enum"]) == contract.ISOLATIONS
    assert SPEC["isolation"]["default"] == contract.DEFAULT_ISOLATION
    assert SPEC["resources"]["default"] == contract.DEFAULT_RESOURCES


def test_parse_applies_the_crd_defaults() -> None:
    spec = FunctionSpec.parse({"code": "return 1;"})
    assert spec.timeout_ms == SPEC["timeoutMs"]["default"]
    assert spec.memory_mb == SPEC["memoryMb"]["default"]
    assert spec.concurrency == SPEC["concurrency"]["default"]
    assert spec.replicas == SPEC["replicas"]["default"]
    assert spec.isolation == SPEC["isolation"]["default"]
    assert spec.resources == SPEC["resources"]["default"]
    assert spec.given == frozenset({"code"})


def test_one_default_runtime_image_across_api_operator_and_chart() -> None:
    from vortex_api.settings import Settings as ApiSettings
    from vortex_operator.settings import Settings as OperatorSettings

    chart = yaml.safe_load((ROOT / "helm" / "vortex" / "Chart.yaml").read_text())
    values = yaml.safe_load((ROOT / "helm" / "vortex" / "values.yaml").read_text())
    image: dict[str, Any] = values["runtime"]["image"]
    chart_default = f"{image['repository']}:{image['tag'] or chart['appVersion']}"
    assert chart_default == contract.DEFAULT_RUNTIME_IMAGE
    assert ApiSettings().runtime_image == contract.DEFAULT_RUNTIME_IMAGE
    assert OperatorSettings().runtime_image == contract.DEFAULT_RUNTIME_IMAGE


def test_child_names_and_code_keys() -> None:
    assert contract.child_name("hello") == "vf-hello"
    assert contract.function_of_child("vf-hello") == "hello"
    assert contract.function_of_child("other") is None
    key = contract.code_key("a" * 64)
    assert key == f"functions/{'a' * 64}.js"
    assert contract.sha_of_key(key) == "a" * 64
    assert contract.sha_of_key("functions/xyz.js") is None


@pytest.mark.parametrize(("prop", "bounds"), SCALE_NUMBERS.items())
def test_scale_defaults_and_bounds_equal_the_crd(prop: str, bounds: tuple[int, int, int]) -> None:
    crd = SCALE[prop]
    assert (crd["default"], crd["minimum"], crd["maximum"]) == bounds


def test_target_concurrency_bounds_equal_the_crd() -> None:
    target = SCALE["targetConcurrency"]
    assert "default" not in target  # 70% of concurrency, which a CRD default cannot say
    assert (target["minimum"], target["maximum"]) == (
        contract.MIN_TARGET_CONCURRENCY,
        contract.MAX_CONCURRENCY,
    )
    rules = [r["rule"] for r in SPEC["scale"]["x-kubernetes-validations"]]
    assert rules == ["self.minReplicas <= self.maxReplicas"]  # 0 is allowed: scale to zero


def test_parse_without_scale_leaves_replicas_to_the_user() -> None:
    assert FunctionSpec.parse({"code": "x", "isolation": "warm"}).scale is None


def test_parse_applies_the_scale_defaults() -> None:
    spec = FunctionSpec.parse({"code": "x", "isolation": "warm", "concurrency": 10, "scale": {}})
    assert spec.scale == contract.ScaleSpec(
        min_replicas=1, max_replicas=10, target_concurrency=7.0, scale_to_zero_after_s=300
    )
    given = FunctionSpec.parse(
        {
            "code": "x",
            "scale": {
                "minReplicas": 2,
                "maxReplicas": 20,
                "targetConcurrency": 5,
                "scaleToZeroAfterSeconds": 60,
            },
        }
    )
    assert given.scale == contract.ScaleSpec(2, 20, 5.0, 60)


def test_default_target_is_at_least_one() -> None:
    assert contract.default_target_concurrency(1) == 1.0
    assert contract.default_target_concurrency(4) == pytest.approx(2.8)


RETRY = SPEC["retry"]["properties"]
BACKOFF = RETRY["backoff"]["properties"]


def test_retry_defaults_and_bounds_equal_the_crd() -> None:
    for prop, (default, low, high) in {
        "maxAttempts": (
            contract.DEFAULT_MAX_ATTEMPTS,
            contract.MIN_MAX_ATTEMPTS,
            contract.MAX_MAX_ATTEMPTS,
        ),
        "maxAgeSeconds": (
            contract.DEFAULT_MAX_AGE_S,
            contract.MIN_MAX_AGE_S,
            contract.MAX_MAX_AGE_S,
        ),
    }.items():
        assert (RETRY[prop]["default"], RETRY[prop]["minimum"], RETRY[prop]["maximum"]) == (
            default,
            low,
            high,
        )
    assert (BACKOFF["initialSeconds"]["default"], BACKOFF["factor"]["default"]) == (
        contract.DEFAULT_BACKOFF_INITIAL_S,
        contract.DEFAULT_BACKOFF_FACTOR,
    )
    assert BACKOFF["maxSeconds"]["default"] == contract.DEFAULT_BACKOFF_MAX_S
    assert (BACKOFF["factor"]["minimum"], BACKOFF["factor"]["maximum"]) == (
        contract.MIN_BACKOFF_FACTOR,
        contract.MAX_BACKOFF_FACTOR,
    )
    for prop in ("initialSeconds", "maxSeconds"):
        assert (BACKOFF[prop]["minimum"], BACKOFF[prop]["maximum"]) == (
            contract.MIN_BACKOFF_S,
            contract.MAX_BACKOFF_S,
        )
    assert tuple(RETRY["retryOn"]["items"]["enum"]) == contract.RETRYABLE_ERRORS
    assert RETRY["retryOn"]["maxItems"] == len(contract.RETRYABLE_ERRORS)
    for hook in ("onSuccess", "onFailure"):
        assert SPEC[hook]["pattern"] == contract.FUNCTION_NAME_PATTERN


def test_retry_backs_off_exponentially_up_to_its_cap_and_retries_only_what_it_lists() -> None:
    default = FunctionSpec.parse({"code": "return 1;"}).retry
    assert default == contract.RetrySpec()
    assert [default.delay_s(n) for n in (1, 2, 3, 4, 7, 8)] == [1, 2, 4, 8, 60, 60]
    assert default.retries("Timeout", 1)
    assert default.retries("Timeout", 2)
    assert not default.retries("Timeout", 3)  # the third attempt was the last
    assert not default.retries("FunctionError", 1)
    custom = FunctionSpec.parse(
        {
            "code": "return 1;",
            "retry": {
                "maxAttempts": 5,
                "backoff": {"initialSeconds": 0.5, "factor": 3, "maxSeconds": 10},
                "retryOn": ["FunctionError"],
                "maxAgeSeconds": 60,
            },
        }
    ).retry
    assert [custom.delay_s(n) for n in (1, 2, 3, 4)] == [0.5, 1.5, 4.5, 10]
    assert custom.retries("FunctionError", 4)
    assert not custom.retries("Timeout", 1)
    assert custom.max_age_s == 60
    assert contract.RetrySpec.parse(custom.spec()) == custom


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("3", "retry must be an object"),
        ({"tries": 3}, "unknown fields: tries"),
        ({"maxAttempts": 0}, "retry.maxAttempts must be an integer from 1 to 100"),
        ({"maxAttempts": 2.5}, "retry.maxAttempts must be an integer"),
        ({"backoff": {"factor": 0.5}}, "retry.backoff.factor must be a number from 1 to 10"),
        ({"backoff": {"jitter": 1}}, "retry.backoff takes initialSeconds, factor and maxSeconds"),
        ({"retryOn": ["Oops"]}, "retry.retryOn: Oops is not an error type"),
        ({"maxAgeSeconds": 10**7}, "retry.maxAgeSeconds must be an integer from 1 to 604800"),
    ],
)
def test_bad_retry_objects_say_why(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        contract.check_retry(value)
