"""Null versus empty strings in answers, and the feature levels ApiVersions advertises:
what clients that check `is None` or read `metadata.version` see, as Kafka 4.2 sends it."""

from __future__ import annotations

import struct

import wire
from e2e import unique_topic

API_FIND_COORDINATOR = 10


def compact_nullable(r: wire.Reader) -> str | None:
    n = r.uvarint() - 1
    if n < 0:
        return None
    s = r.data[r.pos:r.pos + n].decode()
    r.pos += n
    return s


def test_kafka_python_create_and_delete_topics_have_null_messages(broker):
    """kafka-python's admin results: a created and a deleted topic carry error_message
    None (Kafka's null), a refused one Kafka's message."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic as KNewTopic

    k = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15000)
    try:
        t = unique_topic("null")
        created = k.create_topics([KNewTopic(t, 2, 1)])
        (res,) = created["topics"]
        topic_id = res["topic_id"]
        res.pop("configs")
        assert res == {"name": t, "topic_id": topic_id, "error_code": 0, "error_message": None,
                       "topic_config_error_code": 0, "num_partitions": 2, "replication_factor": 1}
        again = k.create_topics([KNewTopic(t, 2, 1)], raise_errors=False)
        assert [(x["name"], x["error_code"], x["error_message"]) for x in again["topics"]] == [
            (t, 36, f"Topic '{t}' already exists.")]
        deleted = k.delete_topics([t])
        assert deleted == {"topics": [{"name": t, "topic_id": topic_id, "error_code": 0, "error_message": None}]}
    finally:
        k.close()


def test_find_coordinator_success_message_is_none(broker):
    """FindCoordinator v3 answers a success with error_message "NONE", as Kafka's
    `Errors.NONE.message()` fills it (not null, not empty)."""
    body = wire.compact_string("g-null") + struct.pack(">b", 0) + wire.uvarint(0)
    with wire.Conn(broker.host, broker.port) as c:
        payload = c.request(wire.header_v2(API_FIND_COORDINATOR, 3, 11) + body)
    r = wire.Reader(payload)
    assert r.take(">i") == 11
    r.skip_tagged_fields()
    r.take(">i")  # throttle
    error_code = r.take(">h")
    message = compact_nullable(r)
    node_id = r.take(">i")
    assert (error_code, message, node_id) == (0, "NONE", 1)


def parse_features(payload: bytes, correlation_id: int) -> tuple[dict, int, dict]:
    """ApiVersions v3 -> ({name: (min, max)} supported, finalized epoch,
    {name: (min_level, max_level)} finalized), read from the response's tagged fields."""
    r = wire.Reader(payload)
    assert r.take(">i") == correlation_id
    assert r.take(">h") == 0
    for _ in range(r.uvarint() - 1):
        r.take(">hhh")
        r.skip_tagged_fields()
    r.take(">i")  # throttle
    supported, epoch, finalized = {}, None, {}
    for _ in range(r.uvarint()):
        tag, size = r.uvarint(), r.uvarint()
        end = r.pos + size
        if tag == 0:
            for _ in range(r.uvarint() - 1):
                name = compact_nullable(r)
                supported[name] = r.take(">hh")
                r.skip_tagged_fields()
        elif tag == 1:
            epoch = r.take(">q")
        elif tag == 2:
            for _ in range(r.uvarint() - 1):
                name = compact_nullable(r)
                max_level, min_level = r.take(">hh")
                finalized[name] = (min_level, max_level)
                r.skip_tagged_fields()
        r.pos = end
    assert r.done()
    return supported, epoch, finalized


def test_api_versions_v3_advertises_metadata_version(broker):
    """ApiVersions v3: metadata.version 28 (4.2-IV0, the level share.version 1 needs)
    supported and finalized beside group.version 1, transaction.version 2 and
    share.version 1, with the finalized epoch."""
    with wire.Conn(broker.host, broker.port) as c:
        supported, epoch, finalized = parse_features(c.request(wire.api_versions_request(3, 21)), 21)
    assert supported == {
        "metadata.version": (28, 28),
        "group.version": (0, 1),
        "transaction.version": (0, 2),
        "share.version": (0, 1),
    }
    assert finalized == {
        "metadata.version": (28, 28),
        "group.version": (1, 1),
        "transaction.version": (2, 2),
        "share.version": (1, 1),
    }
    assert epoch == 1
