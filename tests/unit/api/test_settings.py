"""Settings come from VORTEX_* variables, plus the seed's MINIO_* names."""

from __future__ import annotations

from pathlib import Path

import pytest

from vortex_api.settings import Settings


def test_defaults() -> None:
    settings = Settings()
    assert settings.backend == "local"
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.max_workers == 10
    assert settings.data_dir == Path(".vortex")
    assert settings.admin_key is None
    assert settings.invoke_key_list == []


def test_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VORTEX_PORT", "9999")
    monkeypatch.setenv("VORTEX_MAX_WORKERS", "3")
    monkeypatch.setenv("VORTEX_DATA_DIR", "/tmp/v")
    monkeypatch.setenv("VORTEX_ADMIN_KEY", "adm")
    monkeypatch.setenv("VORTEX_INVOKE_KEYS", "a, b,,c")
    monkeypatch.setenv("VORTEX_BACKEND", "kubernetes")
    monkeypatch.setenv("MINIO_ENDPOINT", "minio:9000")
    monkeypatch.setenv("MINIO_ACCESS_KEY", "ak")
    monkeypatch.setenv("MINIO_SECRET_KEY", "sk")
    monkeypatch.setenv("MINIO_BUCKET", "b")

    settings = Settings()

    assert settings.port == 9999
    assert settings.max_workers == 3
    assert settings.data_dir == Path("/tmp/v")
    assert settings.admin_key is not None
    assert settings.admin_key.get_secret_value() == "adm"
    assert settings.invoke_key_list == ["a", "b", "c"]
    assert settings.backend == "kubernetes"
    assert settings.minio.endpoint == "minio:9000"
    assert settings.minio.access_key.get_secret_value() == "ak"
    assert settings.minio.secret_key.get_secret_value() == "sk"
    assert settings.minio.bucket == "b"


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VORTEX_MAX_WORKERS", "0")
    with pytest.raises(ValueError, match="max_workers"):
        Settings()


def test_logs_are_text_in_local_mode_and_json_in_a_cluster() -> None:
    assert Settings().log_format == "text"
    assert Settings(backend="kubernetes").log_format == "json"
    assert Settings().access_log is True


def test_log_format_and_access_log_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VORTEX_BACKEND", "kubernetes")
    monkeypatch.setenv("VORTEX_LOG_FORMAT", "text")
    monkeypatch.setenv("VORTEX_ACCESS_LOG", "false")

    settings = Settings()

    assert (settings.log_format, settings.access_log) == ("text", False)


def test_unknown_log_format_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VORTEX_LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="log_format"):
        Settings()
