"""Fuzz the OpenAPI schema of a real local-mode API: no 5xx that is not a function's own error.

Every operation in `/openapi.json` is called with generated valid and invalid input; answers must
match the documented statuses, content types and schemas, and a 5xx is acceptable only when it is
the function's own failure (it threw, did not compile, ran out of memory or time).
"""

from __future__ import annotations

import json

import httpx
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.local.conftest import ApiProcess
from vortex_api.app import create_app
from vortex_api.settings import Settings

FUNCTION_OWN_ERRORS = {"FunctionError", "CompileError", "MemoryLimitExceeded", "Timeout"}


@schemathesis.check
def only_functions_own_server_errors(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """A 5xx must be the JSON error shape and a function's own failure."""
    if response.status_code < 500:
        return None
    try:
        error = json.loads(response.content)["error"]
    except (ValueError, KeyError, TypeError) as exc:
        raise AssertionError(f"{response.status_code} without the JSON error shape") from exc
    assert "Traceback" not in response.text
    assert error["type"] in FUNCTION_OWN_ERRORS, f"{response.status_code} {error}"
    return None


# The schema the served app publishes (building the app starts nothing).
schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi())


def test_served_schema_is_the_fuzzed_one(api: ApiProcess) -> None:
    served = httpx.get(f"{api.url}/openapi.json", timeout=10).json()
    assert served == create_app(Settings()).openapi()


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case: schemathesis.Case, api: ApiProcess) -> None:
    if case.query and "follow" in case.query:
        # A followed log stream ends only when its client goes (test_logs.py follows one).
        case.query["follow"] = False
    case.call_and_validate(
        base_url=api.url,
        timeout=30,
        checks=[
            only_functions_own_server_errors,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
            negative_data_rejection,
        ],
    )
