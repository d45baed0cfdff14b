"""`vortex init`'s starters: code that compiles, and a manifest that is a valid VortexFunction
carrying the same code."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vortex_cli.templates import FUNCTION_FILE, MANIFEST_FILE, TEMPLATES, starter_files
from vortex_kube.contract import FunctionSpec
from vortex_runtime import check

ROOT = Path(__file__).resolve().parents[3]
CRD = yaml.safe_load((ROOT / "crds" / "vortexfunction.yaml").read_text())
SPEC = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def test_there_are_two_templates() -> None:
    assert sorted(TEMPLATES) == ["handler", "hello"]


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_the_starter_compiles(template: str) -> None:
    check(starter_files(template, "x")[FUNCTION_FILE])


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_the_manifest_is_a_vortex_function_with_the_same_code(template: str) -> None:
    files = starter_files(template, "my-fn")
    doc = yaml.safe_load(files[MANIFEST_FILE])

    assert doc["apiVersion"] == "vortex.dev/v1alpha1"
    assert doc["kind"] == "VortexFunction"
    assert doc["metadata"] == {"name": "my-fn"}
    assert set(doc["spec"]) <= set(SPEC["properties"])
    assert doc["spec"]["code"] == files[FUNCTION_FILE]
    assert FunctionSpec.parse(doc["spec"]).code == files[FUNCTION_FILE]


def test_only_the_handler_template_is_a_module() -> None:
    assert "export default" in TEMPLATES["handler"]
    assert "export" not in TEMPLATES["hello"]
