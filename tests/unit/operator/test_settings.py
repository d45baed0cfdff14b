"""Settings from the environment: the MinIO names the runtime uses, lists from plain strings."""

from __future__ import annotations

import pytest

from vortex_operator.settings import Settings


def test_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINIO_ENDPOINT", "minio.storage.svc:9000")
    monkeypatch.setenv("MINIO_ACCESS_KEY", "ak")
    monkeypatch.setenv("MINIO_SECRET_KEY", "sk")
    monkeypatch.setenv("MINIO_BUCKET", "code")
    monkeypatch.setenv("VORTEX_OPERATOR_NAMESPACES", "team-a, team-b")
    monkeypatch.setenv("VORTEX_OPERATOR_RUNTIME_IMAGE", "localhost/vortex-runtime:dev-1")
    monkeypatch.setenv("VORTEX_OPERATOR_MINIO_PEERS", '[{"ipBlock": {"cidr": "10.0.0.0/8"}}]')
    settings = Settings()
    assert settings.minio.endpoint == "minio.storage.svc:9000"
    assert settings.minio.bucket == "code"
    assert settings.namespaces == ["team-a", "team-b"]
    assert settings.runtime_image == "localhost/vortex-runtime:dev-1"
    assert settings.minio_peers == [{"ipBlock": {"cidr": "10.0.0.0/8"}}]
    assert settings.runtime_credentials() == ("ak", "sk")
    assert "sk" not in repr(settings)


def test_defaults() -> None:
    settings = Settings()
    assert settings.namespaces == []
    assert settings.leader_election is True
    assert settings.health_port == 8081
