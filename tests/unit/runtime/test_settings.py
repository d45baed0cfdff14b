"""The runtime's settings: the only place it reads the environment (log format, MinIO, env)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vortex_runtime.__main__ import _parser, settings_from, shutdown_grace_s
from vortex_runtime.loader import S3Loader
from vortex_runtime.service import ManyFunctionService, build_service
from vortex_runtime.settings import (
    MinioSettings,
    RuntimeSettings,
    get_minio_settings,
    get_settings,
)


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test reads the environment anew, and leaves no cached settings behind."""
    for name in ("LOG_FORMAT", "CODE_FILE", "STORE_DIR", "CODE_KEY", "USE_MINIO"):
        monkeypatch.delenv(f"VORTEX_{name}", raising=False)
    monkeypatch.delenv("MINIO_ENDPOINT", raising=False)
    get_settings.cache_clear()
    get_minio_settings.cache_clear()
    yield
    get_settings.cache_clear()
    get_minio_settings.cache_clear()


def serve(*flags: str) -> RuntimeSettings:
    return settings_from(_parser().parse_args(["serve", *flags]))


def test_log_format_defaults_to_json() -> None:
    assert serve().log_format == "json"


def test_log_format_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VORTEX_LOG_FORMAT", "text")
    assert serve().log_format == "text"


def test_log_format_flag_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VORTEX_LOG_FORMAT", "text")
    assert serve("--log-format", "json").log_format == "json"


def test_function_env_strips_the_prefix_and_reads_the_environment_when_called(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = RuntimeSettings()
    monkeypatch.setenv("VORTEX_ENV_GREETING", "hi")
    monkeypatch.setenv("VORTEX_ENV_", "empty name")
    monkeypatch.setenv("VORTEX_TIMEOUT_MS", "1000")
    env = settings.function_env()
    assert env["GREETING"] == "hi"
    assert env[""] == "empty name"
    assert not any(name.startswith("TIMEOUT") for name in env)


def test_minio_is_configured_only_by_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not MinioSettings().configured
    monkeypatch.setenv("MINIO_BUCKET", "b")
    assert not MinioSettings().configured
    monkeypatch.setenv("MINIO_ENDPOINT", "localhost:9000")  # even when it is the default
    assert MinioSettings().configured


def test_minio_endpoint_alone_selects_many_functions_from_s3(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MINIO_ENDPOINT", "minio.example:9000")
    service = build_service(RuntimeSettings())
    assert isinstance(service, ManyFunctionService)
    assert isinstance(service._loader, S3Loader)
    assert service._loader.endpoint == "minio.example:9000"


def test_no_code_source_is_an_exit() -> None:
    with pytest.raises(SystemExit, match="no code source"):
        build_service(RuntimeSettings())


def test_sigterm_waits_for_the_longest_invocation_in_flight() -> None:
    base = settings_from(_parser().parse_args(["serve", "--code-file", "f.js"]))
    long = base.model_copy(update={"timeout_ms": 120_000, "drain_timeout_ms": 30_000})
    short = base.model_copy(update={"timeout_ms": 5_000, "drain_timeout_ms": 30_000})
    assert shutdown_grace_s(long) == 121
    assert shutdown_grace_s(short) == 31
