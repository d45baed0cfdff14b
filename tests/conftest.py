"""Shared pytest configuration: real MinIO, NATS and the real local cluster are pytest plugins."""

pytest_plugins = ["tests.fixtures.minio", "tests.fixtures.nats", "tests.cluster.fixtures"]
