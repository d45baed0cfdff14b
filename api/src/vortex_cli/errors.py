"""The CLI's error tree: each error knows its exit code and its one-line form.

    CliError                    exit 1
    ├── ApiError                exit 1  the API answered an error (`{"error": {"type", ...}}`)
    │   └── AuthError           exit 4  401 Unauthorized or 403 Forbidden
    └── ApiUnreachable          exit 3  no answer from the URL (refused, timed out, broken)

Bad usage is Click's own `UsageError`/`BadParameter` (exit 2). `client.py` raises these, mapping
httpx's exceptions at that one seam; `commands/common.py` prints them (`output.py`) and exits with
their code.
"""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_AUTH = 4


class CliError(Exception):
    """An error a command ends with: `error_type` and `message`, as the API's error body has."""

    exit_code = EXIT_ERROR

    def __init__(self, error_type: str, message: str, **extra: Any) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message
        self.extra = extra

    def line(self) -> str:
        """The one readable line: `<type>: <message>` (a thrown JS error's name before it)."""
        name = self.extra.get("name")
        if isinstance(name, str) and name and not self.message.startswith(name):
            return f"{self.error_type}: {name}: {self.message}"
        return f"{self.error_type}: {self.message}"

    def document(self) -> dict[str, Any]:
        """The error as the API's JSON shape, for `-o json`."""
        return {"error": {"type": self.error_type, "message": self.message, **self.extra}}


class ApiError(CliError):
    """The API answered with an error status; `logs` are the function's, when it ran."""

    def __init__(
        self,
        status: int,
        error_type: str,
        message: str,
        *,
        logs: list[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(error_type, message, **extra)
        self.status = status
        self.logs = logs or []

    def document(self) -> dict[str, Any]:
        doc = super().document()
        if self.logs:
            doc["logs"] = self.logs
        return doc


class AuthError(ApiError):
    exit_code = EXIT_AUTH


class ApiUnreachable(CliError):
    exit_code = EXIT_UNREACHABLE

    def __init__(self, url: str, reason: str) -> None:
        super().__init__("ApiUnreachable", f"cannot reach the Vortex API at {url}: {reason}")
        self.url = url


def api_error(status: int, body: Any, reason: str) -> ApiError:
    """The error of an API answer with `status` and its parsed JSON `body` (or None when the
    body was not JSON, as from a proxy in front of the API)."""
    kind = AuthError if status in (401, 403) else ApiError
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("type"), str):
        return kind(status, "HTTPError", f"{status} {reason}".strip())
    extra = {k: v for k, v in error.items() if k not in ("type", "message")}
    logs = body.get("logs")
    return kind(
        status,
        error["type"],
        str(error.get("message", "")),
        logs=logs if isinstance(logs, list) else None,
        **extra,
    )
