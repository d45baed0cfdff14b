"""The README quick start, verbatim with curl and jq, against `python -m vortex_api`."""

from __future__ import annotations

import json
import subprocess

from tests.integration.local.conftest import ApiProcess

QUICKSTART = r"""
set -euo pipefail
FUNC_ID=$(curl -s -X POST http://localhost:8080/deploy \
  -H "Content-Type: application/json" \
  -d '{"code": "console.log(\"Hello Vortex!\"); return 42;"}' | jq -r .function_id)

curl -X POST http://localhost:8080/execute/$FUNC_ID
echo
curl http://localhost:8080/health
"""


def test_readme_quick_start(api: ApiProcess) -> None:
    script = QUICKSTART.replace("localhost:8080", f"localhost:{api.port}")
    result = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    executed, health = (json.loads(line) for line in result.stdout.strip().splitlines())

    assert executed["output"] == 42
    assert [(e["message"], e["level"]) for e in executed["logs"]] == [("Hello Vortex!", "log")]
    assert executed["logs"][0]["timestamp"].endswith("Z")
    assert isinstance(executed["execution_time_ms"], int | float)
    assert health == {"status": "healthy", "active_workers": 0, "max_workers": 10}
