"""Shared pytest configuration: real MinIO and the real local cluster are pytest plugins."""

pytest_plugins = ["tests.fixtures.minio", "tests.cluster.fixtures"]
