"""The NATS fixture is a real nats-server with JetStream, through nats-py: a stream, a durable
consumer and a KV bucket work; what was stored, and what a consumer acknowledged, survive a
restart on the same store; while it is stopped, clients are refused; and a server that was never
built fails naming the command that builds it."""

from __future__ import annotations

from pathlib import Path

import pytest
from nats.errors import NoServersError
from nats.js.api import AckPolicy, ConsumerConfig, StorageType

from tests.fixtures import nats as nats_fixture
from tests.fixtures.nats import NatsServer

pytestmark = pytest.mark.nats


async def test_a_stream_a_consumer_and_a_kv_bucket(nats_server: NatsServer) -> None:
    nc = await nats_server.connect()
    try:
        js = nc.jetstream()
        await js.add_stream(name="fixture-orders", subjects=["fixture.orders.>"])
        ack = await js.publish("fixture.orders.1", b"first order")
        assert ack.stream == "fixture-orders"
        stored = await js.get_msg("fixture-orders", ack.seq)
        assert (stored.subject, stored.data) == ("fixture.orders.1", b"first order")

        consumer = await js.pull_subscribe("fixture.orders.>", durable="worker")
        [msg] = await consumer.fetch(1, timeout=5)
        assert msg.data == b"first order"
        await msg.ack()

        kv = await js.create_key_value(bucket="fixture-config")
        revision = await kv.put("limit", b"10")
        entry = await kv.get("limit")
        assert (entry.value, entry.revision) == (b"10", revision)
    finally:
        await nc.close()


async def test_what_was_stored_survives_a_restart(fresh_nats: NatsServer) -> None:
    nc = await fresh_nats.connect()
    js = nc.jetstream()
    await js.add_stream(name="jobs", subjects=["jobs.>"], storage=StorageType.FILE)
    for n in (1, 2):
        await js.publish(f"jobs.{n}", f"job {n}".encode())
    config = ConsumerConfig(durable_name="worker", ack_policy=AckPolicy.EXPLICIT)
    consumer = await js.pull_subscribe("jobs.>", durable="worker", config=config)
    [first] = await consumer.fetch(1, timeout=5)
    await first.ack_sync()
    kv = await js.create_key_value(bucket="state")
    await kv.put("cursor", b"1")
    await nc.close()

    fresh_nats.stop()
    with pytest.raises(NoServersError):
        await fresh_nats.connect()
    fresh_nats.start()

    nc = await fresh_nats.connect()
    try:
        js = nc.jetstream()
        assert (await js.stream_info("jobs")).state.messages == 2
        assert (await js.get_msg("jobs", 1)).data == b"job 1"
        consumer = await js.pull_subscribe("jobs.>", durable="worker")
        [second] = await consumer.fetch(1, timeout=5)
        assert second.data == b"job 2"  # the acknowledged first job is not delivered again
        await second.ack()
        kv = await js.key_value("state")
        assert (await kv.get("cursor")).value == b"1"
    finally:
        await nc.close()


def test_a_missing_binary_fails_naming_the_build(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(nats_fixture, "BIN_DIR", tmp_path / "bin")
    with pytest.raises(RuntimeError, match=r"run `tests/cluster/build nats`"):
        NatsServer(tmp_path / "nats").start()
