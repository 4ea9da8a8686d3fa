"""Kafka's internal topics: `__consumer_offsets` and `__transaction_state` appear when their
coordinator is first used, are listed and described with is_internal=true, refuse
producers, and hold the coordinators' state in Kafka's record format, as on Apache Kafka."""

from __future__ import annotations

import struct

from confluent_kafka import Consumer, KafkaError, TopicCollection, TopicPartition
from confluent_kafka.admin import ConfigResource, ResourceType
from kafka.admin import KafkaAdminClient

from e2e import admin, create_topic, producer, unique_topic


def committed_offset(bootstrap: str, group: str, topic: str) -> None:
    """A consumer of `group` commits offset 0 of `topic` (FindCoordinator, OffsetCommit)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(topic, 0, 0)], asynchronous=False)
    finally:
        c.close()


def describe(bootstrap: str, names: list[str]) -> dict:
    a = admin(bootstrap)
    fs = a.describe_topics(TopicCollection(names), request_timeout=30)
    return {name: f.result(30) for name, f in fs.items()}


def test_consumer_offsets_created_on_first_group_use_and_listed_internal(broker_factory):
    b = broker_factory(overrides={"offsets.topic.num.partitions": 7})
    topic = unique_topic("plain")
    create_topic(b.bootstrap, topic, 1)
    # Like Kafka, the topic does not exist before a group coordinator is looked for.
    assert "__consumer_offsets" not in admin(b.bootstrap).list_topics(timeout=30).topics

    committed_offset(b.bootstrap, "g-internal", topic)

    md = admin(b.bootstrap).list_topics(timeout=30)
    assert "__consumer_offsets" in md.topics
    assert sorted(md.topics["__consumer_offsets"].partitions) == list(range(7))

    d = describe(b.bootstrap, ["__consumer_offsets", topic])
    assert d["__consumer_offsets"].is_internal is True
    assert len(d["__consumer_offsets"].partitions) == 7
    assert d[topic].is_internal is False

    # kafka-python reads the same flag from Metadata.
    kp = KafkaAdminClient(bootstrap_servers=b.bootstrap)
    try:
        by_name = {t["name"]: t for t in kp.describe_topics(["__consumer_offsets", topic])}
    finally:
        kp.close()
    assert by_name["__consumer_offsets"]["is_internal"] is True
    assert len(by_name["__consumer_offsets"]["partitions"]) == 7
    assert by_name[topic]["is_internal"] is False

    # Compacted, as Kafka configures it.
    res = ConfigResource(ResourceType.TOPIC, "__consumer_offsets")
    a = admin(b.bootstrap)  # kept alive until its future resolves
    configs = a.describe_configs([res])[res].result(30)
    assert configs["cleanup.policy"].value == "compact"
    assert configs["segment.bytes"].value == "104857600"

    # The committed offset is still there after the topic appeared.
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "g-internal"})
    try:
        got = c.committed([TopicPartition(topic, 0)], timeout=30)
    finally:
        c.close()
    assert [(p.topic, p.partition, p.offset) for p in got] == [(topic, 0, 0)]


def test_transaction_state_created_by_transactional_producer(broker):
    assert "__transaction_state" not in admin(broker.bootstrap).list_topics(timeout=30).topics
    p = producer(broker.bootstrap, **{"transactional.id": "tx-internal"})
    p.init_transactions(30)
    d = describe(broker.bootstrap, ["__transaction_state"])
    assert d["__transaction_state"].is_internal is True
    assert len(d["__transaction_state"].partitions) == 50


def test_produce_to_internal_topic_refused(broker):
    topic = unique_topic("plain")
    create_topic(broker.bootstrap, topic, 1)
    committed_offset(broker.bootstrap, "g-refuse", topic)
    assert "__consumer_offsets" in admin(broker.bootstrap).list_topics(timeout=30).topics
    p = producer(broker.bootstrap, **{"message.send.max.retries": 0})
    errors = []
    p.produce("__consumer_offsets", b"v", key=b"k", partition=0,
              on_delivery=lambda err, msg: errors.append(err))
    p.flush(30)
    assert len(errors) == 1 and errors[0] is not None
    # INVALID_TOPIC_EXCEPTION (17): "Cannot append to internal topic".
    assert errors[0].code() == KafkaError.TOPIC_EXCEPTION, errors[0]

    # Nothing was appended: partition 0 holds no group's state ("g-refuse" is in 22).
    assert java_hash_partition("g-refuse") == 22
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "g-watermarks"})
    try:
        low, high = c.get_watermark_offsets(TopicPartition("__consumer_offsets", 0), timeout=30)
    finally:
        c.close()
    assert (low, high) == (0, 0)


def java_hash_partition(key: str, partitions: int = 50) -> int:
    """Kafka's partitionFor: abs(String.hashCode) % partitions."""
    h = 0
    for unit in struct.unpack(f"<{len(key.encode('utf-16-le')) // 2}H", key.encode("utf-16-le")):
        h = (h * 31 + unit) & 0xFFFFFFFF
    h = h - (1 << 32) if h >= 1 << 31 else h
    return (0 if h == -(1 << 31) else abs(h)) % partitions


def read_partition(bootstrap: str, topic: str, partition: int) -> list[tuple[bytes, bytes | None]]:
    """Every record of one partition, as a tool reading the internal topic gets them."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "g-reader", "enable.auto.commit": False,
                  "isolation.level": "read_uncommitted"})
    try:
        _, high = c.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)
        c.assign([TopicPartition(topic, partition, 0)])
        out = []
        while len(out) < high:
            m = c.poll(30)
            assert m is not None, f"{topic}-{partition}: {len(out)} of {high} records"
            assert m.error() is None, m.error()
            out.append((m.key(), m.value()))
        return out
    finally:
        c.close()


def kafka_string(b: bytes, at: int) -> tuple[str, int]:
    (n,) = struct.unpack_from(">h", b, at)
    return b[at + 2:at + 2 + n].decode(), at + 2 + n


def test_a_single_node_keeps_coordinator_state_in_the_internal_topics(broker_factory):
    """On a single node, as in a cluster, commits and transactions are records of the
    internal topics in Kafka's schemas, which tools that read those topics decode, and
    they are what a restart loads."""
    b = broker_factory()
    topic = unique_topic("state")
    create_topic(b.bootstrap, topic, 2)
    group = "g-state-in-topic"
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(topic, 1, 41, metadata="checkpoint")], asynchronous=False)
    finally:
        c.close()

    records = read_partition(b.bootstrap, "__consumer_offsets", java_hash_partition(group))
    commits = []
    for key, value in records:
        (version,) = struct.unpack_from(">h", key, 0)
        if version != 1:  # 1: OffsetCommitKey; 2: GroupMetadataKey
            continue
        g, at = kafka_string(key, 2)
        t, at = kafka_string(key, at)
        (p,) = struct.unpack_from(">i", key, at)
        (value_version, offset, leader_epoch) = struct.unpack_from(">hqi", value, 0)
        metadata, _ = kafka_string(value, 14)
        commits.append((g, t, p, value_version, offset, leader_epoch, metadata))
    # confluent-kafka sends the metadata as a C string with its terminating NUL; the broker
    # stores the bytes it is sent.
    assert commits == [(group, topic, 1, 3, 41, -1, "checkpoint\x00")]

    tx = producer(b.bootstrap, **{"transactional.id": "tx-state-in-topic"})
    tx.init_transactions(30)
    tx.begin_transaction()
    tx.produce(topic, b"v", partition=0)
    tx.commit_transaction(30)
    records = read_partition(b.bootstrap, "__transaction_state", java_hash_partition("tx-state-in-topic"))
    ids = set()
    for key, _ in records:
        (version,) = struct.unpack_from(">h", key, 0)
        ids.add((version, kafka_string(key, 2)[0]))
    assert ids == {(0, "tx-state-in-topic")}

    b.restart()
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group})
    try:
        got = c.committed([TopicPartition(topic, 1)], timeout=30)
    finally:
        c.close()
    assert [(p.partition, p.offset, p.metadata) for p in got] == [(1, 41, "checkpoint")]
