"""Kafka's internal topics: `__consumer_offsets` and `__transaction_state` appear when their
coordinator is first used, are listed and described with is_internal=true, and refuse
producers, as on Apache Kafka."""

from __future__ import annotations

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

    # Nothing was appended.
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "g-watermarks"})
    try:
        low, high = c.get_watermark_offsets(TopicPartition("__consumer_offsets", 0), timeout=30)
    finally:
        c.close()
    assert (low, high) == (0, 0)
