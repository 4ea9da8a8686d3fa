"""Client quotas: AlterClientQuotas and DescribeClientQuotas on the wire (the Python clients
have no quota API; Kafka's `kafka-configs.sh` sends the same requests), a 1 MB/s produce
quota holding a confluent-kafka producer to about that rate over ten seconds while
librdkafka reports the throttle, a fetch quota slowing a consumer, and Kafka's errors for
bad quota entries."""

from __future__ import annotations

import json
import struct
import time

from confluent_kafka import Consumer, Producer, TopicPartition

import wire
from e2e import create_topic, produce_and_report, unique_topic, wait_for

ALTER_CLIENT_QUOTAS = 49
DESCRIBE_CLIENT_QUOTAS = 48
MB = 1024 * 1024


def alter_quotas(b, entries: list[tuple[list[tuple[str, str | None]], list[tuple[str, float, bool]]]],
                 validate_only: bool = False) -> list[tuple[int, str | None]]:
    """AlterClientQuotas v0: (error code, message) per entry."""
    body = struct.pack(">i", len(entries))
    for entity, ops in entries:
        body += struct.pack(">i", len(entity))
        for kind, name in entity:
            body += wire.string(kind) + wire.string(name)
        body += struct.pack(">i", len(ops))
        for key, value, remove in ops:
            body += wire.string(key) + struct.pack(">d?", value, remove)
    body += struct.pack(">?", validate_only)
    with wire.Conn(b.host, b.port) as c:
        r = wire.Reader(c.request(wire.header_v1(ALTER_CLIENT_QUOTAS, 0, 5) + body))
    assert r.take(">i") == 5
    r.take(">i")  # throttle
    out = []
    for _ in range(r.take(">i")):
        code, message = r.take(">h"), r.string()
        for _ in range(r.take(">i")):
            r.string(), r.string()
        out.append((code, message))
    return out


def describe_quotas(b) -> tuple[int, dict]:
    """DescribeClientQuotas v0 of every entity: (error code, {entity: {key: value}})."""
    body = struct.pack(">i", 0) + struct.pack(">?", False)
    with wire.Conn(b.host, b.port) as c:
        r = wire.Reader(c.request(wire.header_v1(DESCRIBE_CLIENT_QUOTAS, 0, 6) + body))
    assert r.take(">i") == 6
    r.take(">i")
    code, _ = r.take(">h"), r.string()
    out = {}
    for _ in range(max(r.take(">i"), 0)):
        entity = tuple((r.string(), r.string()) for _ in range(r.take(">i")))
        out[entity] = {r.string(): r.take(">d") for _ in range(r.take(">i"))}
    return code, out


def quota_broker(broker_factory):
    # A 3-sample window of 1 s: the first burst a new client may send before throttling
    # is two seconds' worth rather than Kafka's default ten.
    return broker_factory(overrides={"quota.window.num": 3, "quota.window.size.seconds": 1})


def produce_for(b, client_id: str, topic: str, seconds: float) -> tuple[float, float]:
    """Produces 1 KiB records flat out for `seconds`; (acknowledged bytes per second, the
    largest throttle time librdkafka reported)."""
    throttles: list[float] = []

    def stats(raw: str) -> None:
        for broker in json.loads(raw)["brokers"].values():
            throttles.append(broker["throttle"]["max"])
    p = Producer({"bootstrap.servers": b.bootstrap, "client.id": client_id, "linger.ms": 5, "acks": 1,
                  "statistics.interval.ms": 500, "stats_cb": stats, "queue.buffering.max.kbytes": 4096})
    acked = [0]

    def delivered(err, msg) -> None:
        assert err is None, err
        acked[0] += len(msg.value())
    value = b"x" * 1024
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        try:
            p.produce(topic, value=value, partition=0, on_delivery=delivered)
        except BufferError:
            p.poll(0.05)
        p.poll(0)
    elapsed = time.monotonic() - start
    rate = acked[0] / elapsed
    p.flush(30)
    p.poll(0.6)
    return rate, max(throttles, default=0)


def test_produce_quota_holds_a_producer_to_its_rate(broker_factory):
    """Unlimited, the producer goes well past 1 MB/s; with producer_byte_rate=1 MB/s for
    its client id it is held to about that rate over ten seconds, and librdkafka's
    statistics show the broker's throttle times."""
    b = quota_broker(broker_factory)
    topic = unique_topic("quota")
    create_topic(b.bootstrap, topic, 1)
    free_rate, free_throttle = produce_for(b, "unlimited", topic, 2)
    assert free_rate > 3 * MB and free_throttle == 0, (free_rate, free_throttle)

    assert alter_quotas(b, [([("client-id", "limited")], [("producer_byte_rate", MB, False)])]) == [(0, None)]
    rate, throttle = produce_for(b, "limited", topic, 10)
    assert 0.6 * MB <= rate <= 1.5 * MB, f"{rate / MB:.2f} MB/s under a 1 MB/s quota"
    assert throttle > 0, "librdkafka saw no throttle time"


def test_fetch_quota_slows_a_consumer(broker_factory):
    """consumer_byte_rate=1 MB/s for a client id: reading 12 MiB takes at least six
    seconds, every record arrives in order, and librdkafka reports the throttle.

    The bound: the rate is measured over the last 2 to 3 s (3 samples of 1 s), so up to
    3 MB pass before a throttle, and each answer may carry up to fetch.max.bytes (1 MiB)
    more; 12 MiB therefore takes at least (12.6 - 3 - 1.05) / 1 = 8.5 s. Without the
    quota it takes well under a second."""
    b = quota_broker(broker_factory)
    topic = unique_topic("fquota")
    create_topic(b.bootstrap, topic, 1)
    p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 5})
    items = [(topic, None, struct.pack(">i", i) + b"y" * 1020, None, 0) for i in range(12288)]
    assert all(e is None for e, _, _ in produce_and_report(p, items))
    assert alter_quotas(b, [([("client-id", "slow-reader")], [("consumer_byte_rate", MB, False)])]) == [(0, None)]

    throttles: list[float] = []

    def stats(raw: str) -> None:
        for broker in json.loads(raw)["brokers"].values():
            throttles.append(broker["throttle"]["max"])
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "unused", "client.id": "slow-reader",
                  "enable.auto.commit": False, "statistics.interval.ms": 500, "stats_cb": stats,
                  "fetch.max.bytes": 1048576})
    c.assign([TopicPartition(topic, 0, 0)])
    seen: list[int] = []
    start = time.monotonic()

    def read_all() -> bool:
        for m in c.consume(1000, 0.2):
            if not m.error():
                seen.append(struct.unpack(">i", m.value()[:4])[0])
        return len(seen) >= 12288
    wait_for(read_all, 60, "the consumer to read 12 MiB")
    elapsed = time.monotonic() - start
    wait_for(lambda: c.poll(0.6) is None and throttles and max(throttles) > 0, 10,
             "librdkafka to report a fetch throttle")
    c.close()
    assert seen == list(range(12288))
    assert elapsed >= 6, f"12 MiB read in {elapsed:.1f} s under a 1 MB/s fetch quota"


def test_quota_entries_are_checked_described_and_kept(broker_factory):
    """DescribeClientQuotas returns what AlterClientQuotas set, for users, client ids,
    defaults and IP addresses; unknown keys, fractional byte rates, mixed user and IP
    entities and bad addresses get INVALID_REQUEST; a removed key goes; quotas survive a
    restart; validate_only changes nothing."""
    b = quota_broker(broker_factory)
    assert alter_quotas(b, [
        ([("user", "alice")], [("producer_byte_rate", 2048, False), ("request_percentage", 50.5, False)]),
        ([("user", None), ("client-id", "app")], [("consumer_byte_rate", 4096, False)]),
        ([("ip", "10.1.2.3")], [("connection_creation_rate", 10, False)]),
    ]) == [(0, None)] * 3
    errors = alter_quotas(b, [
        ([("user", "bob")], [("bogus_rate", 1, False)]),
        ([("user", "bob")], [("producer_byte_rate", 10.5, False)]),
        ([("user", "bob"), ("ip", "10.0.0.1")], [("producer_byte_rate", 1, False)]),
        ([("ip", "not-an-ip")], [("connection_creation_rate", 1, False)]),
        ([("user", "bob")], [("producer_byte_rate", -5, False)]),
    ])
    assert [code for code, _ in errors] == [42] * 5, errors
    assert alter_quotas(b, [([("user", "carol")], [("producer_byte_rate", 1, False)])], validate_only=True) \
        == [(0, None)]
    assert alter_quotas(b, [([("user", "alice")], [("request_percentage", 0, True)])]) == [(0, None)]
    expected = {
        (("user", "alice"),): {"producer_byte_rate": 2048.0},
        (("user", None), ("client-id", "app")): {"consumer_byte_rate": 4096.0},
        (("ip", "10.1.2.3"),): {"connection_creation_rate": 10.0},
    }
    assert describe_quotas(b) == (0, expected)
    b.restart()
    wait_for(lambda: describe_quotas(b) == (0, expected), 10, "quotas to be described after a restart")
