"""Topic and broker configs through the admin clients operators and Kafka Connect use:
DescribeConfigs with values, sources and synonyms, IncrementalAlterConfigs (SET, DELETE,
APPEND, SUBTRACT, validate-only) and AlterConfigs, each change in force at once, and
invalid names and values refused with INVALID_CONFIG and a message that names them."""

from __future__ import annotations

import time
import warnings

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewTopic,
)

from e2e import admin, assigned_consumer, produce_and_report, producer, unique_topic, wait_for


def describe(a, topic: str) -> dict:
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return a.describe_configs([res], request_timeout=15)[res].result(20)


def incremental(a, topic: str, *ops, validate_only: bool = False) -> None:
    entries = [ConfigEntry(name, value, incremental_operation=op) for name, value, op in ops]
    res = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=entries)
    a.incremental_alter_configs([res], request_timeout=15, validate_only=validate_only)[res].result(20)


def test_describe_and_alter_topic_configs(broker):
    """confluent-kafka: a topic created with configs describes them back as
    DYNAMIC_TOPIC_CONFIG with their synonyms, the rest as defaults; SET, DELETE, APPEND and
    SUBTRACT change them, validate-only changes nothing, and bad names and values are
    INVALID_CONFIG naming the config."""
    a = admin(broker.bootstrap)
    topic = unique_topic("cfg")
    fs = a.create_topics([NewTopic(topic, 1, 1, config={"cleanup.policy": "compact", "retention.ms": "3600000"})])
    fs[topic].result(20)

    c = describe(a, topic)
    assert (c["cleanup.policy"].value, c["cleanup.policy"].source) == ("compact", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    assert not c["cleanup.policy"].is_read_only
    assert [(s.name, s.value, s.source) for s in c["cleanup.policy"].synonyms.values()] == [
        ("cleanup.policy", "compact", ConfigSource.DYNAMIC_TOPIC_CONFIG.value),
        ("log.cleanup.policy", "delete", ConfigSource.DEFAULT_CONFIG.value),
    ]
    assert (c["retention.ms"].value, c["retention.ms"].source) == ("3600000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    assert (c["segment.bytes"].value, c["segment.bytes"].source) == ("1073741824", ConfigSource.DEFAULT_CONFIG.value)
    assert (c["max.message.bytes"].value, c["max.message.bytes"].is_default) == ("1048588", True)
    assert len(c) == 36, sorted(c)

    incremental(a, topic,
                ("retention.ms", None, AlterConfigOpType.DELETE),
                ("cleanup.policy", "delete", AlterConfigOpType.APPEND),
                ("segment.ms", "600000", AlterConfigOpType.SET))
    c = describe(a, topic)
    assert (c["retention.ms"].value, c["retention.ms"].source) == ("604800000", ConfigSource.DEFAULT_CONFIG.value)
    assert c["cleanup.policy"].value == "compact,delete"
    assert (c["segment.ms"].value, c["segment.ms"].source) == ("600000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)

    incremental(a, topic, ("cleanup.policy", "compact", AlterConfigOpType.SUBTRACT))
    assert describe(a, topic)["cleanup.policy"].value == "delete"

    incremental(a, topic, ("segment.ms", "1000", AlterConfigOpType.SET), validate_only=True)
    assert describe(a, topic)["segment.ms"].value == "600000"

    for ops, words in [
        ((("retention.ms", "forever", AlterConfigOpType.SET),), "retention.ms"),
        ((("retention.msec", "1", AlterConfigOpType.SET),), "retention.msec"),
        ((("retention.ms", "1", AlterConfigOpType.APPEND),), "retention.ms"),
        ((("cleanup.policy", "sometimes", AlterConfigOpType.SET),), "cleanup.policy"),
    ]:
        with pytest.raises(KafkaException) as e:
            incremental(a, topic, *ops)
        err = e.value.args[0]
        assert err.code() == KafkaError.INVALID_CONFIG, err
        assert words in err.str(), err.str()
    # a refused change leaves every config as it was
    c = describe(a, topic)
    assert (c["retention.ms"].value, c["cleanup.policy"].value, c["segment.ms"].value) == ("604800000", "delete", "600000")

    # the legacy AlterConfigs replaces every override with the ones it names
    res = ConfigResource(ConfigResource.Type.TOPIC, topic, set_config={"retention.bytes": "5000000"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the client's, not ours
        a.alter_configs([res], request_timeout=15)[res].result(20)
    c = describe(a, topic)
    assert (c["retention.bytes"].value, c["retention.bytes"].source) == ("5000000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    assert (c["segment.ms"].value, c["segment.ms"].source) == ("604800000", ConfigSource.DEFAULT_CONFIG.value)
    assert c["cleanup.policy"].value == "delete"


def test_broker_configs_are_described_read_only(broker_factory):
    """DescribeConfigs of the broker resource reports its settings, the ones set at start-up
    as STATIC_BROKER_CONFIG, all read-only; altering one is refused with a message."""
    b = broker_factory(overrides={"log.retention.check.interval.ms": 1234})
    a = admin(b.bootstrap)
    res = ConfigResource(ConfigResource.Type.BROKER, "1")
    c = a.describe_configs([res], request_timeout=15)[res].result(20)
    entry = c["log.retention.check.interval.ms"]
    assert (entry.value, entry.source, entry.is_read_only) == ("1234", ConfigSource.STATIC_BROKER_CONFIG.value, True)
    assert (c["num.partitions"].value, c["num.partitions"].source) == ("1", ConfigSource.DEFAULT_CONFIG.value)
    alter = ConfigResource(ConfigResource.Type.BROKER, "1", incremental_configs=[
        ConfigEntry("num.partitions", "3", incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(KafkaException) as e:
        a.incremental_alter_configs([alter], request_timeout=15)[alter].result(20)
    assert e.value.args[0].code() == KafkaError.INVALID_REQUEST
    assert "num.partitions" in e.value.args[0].str()


def test_a_smaller_max_message_bytes_is_enforced_at_once(broker):
    """SET max.message.bytes takes effect on the next produce without a restart: a batch
    larger than it gets MSG_SIZE_TOO_LARGE, a smaller one is appended; DELETE restores the
    default."""
    a = admin(broker.bootstrap)
    topic = unique_topic("cfg-max")
    a.create_topics([NewTopic(topic, 1, 1)])[topic].result(20)
    p = producer(broker.bootstrap, **{"linger.ms": 0, "message.max.bytes": 1_000_000})

    def send(size: int):
        (err, _, offset), = produce_and_report(p, [(topic, None, b"x" * size, None, 0)])
        return (None, offset) if err is None else (err.code(), None)

    assert send(3000) == (None, 0)
    incremental(a, topic, ("max.message.bytes", "2000", AlterConfigOpType.SET))
    assert send(3000) == (KafkaError.MSG_SIZE_TOO_LARGE, None)
    assert send(1000) == (None, 1)
    incremental(a, topic, ("max.message.bytes", None, AlterConfigOpType.DELETE))
    assert send(3000) == (None, 2)


def test_a_shorter_retention_ms_removes_old_segments(broker_factory):
    """SET retention.ms on a topic of several segments makes the next retention check delete
    the expired ones: the log start offset moves to the log end, and a consumer positioned
    before it gets OFFSET_OUT_OF_RANGE handling, resetting to the earliest offset as
    configured."""
    b = broker_factory(overrides={"log.retention.check.interval.ms": 200})
    a = admin(b.bootstrap)
    topic = unique_topic("cfg-ret")
    a.create_topics([NewTopic(topic, 1, 1, config={"segment.bytes": "1024"})])[topic].result(20)
    p = producer(b.bootstrap, **{"linger.ms": 0})
    reports = produce_and_report(p, [(topic, None, b"v" * 300, None, 0) for _ in range(20)])
    assert [off for _, _, off in reports] == list(range(20))
    c = assigned_consumer(b.bootstrap, **{"auto.offset.reset": "earliest"})
    try:
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, 20)
        incremental(a, topic, ("retention.ms", "1", AlterConfigOpType.SET))
        wait_for(lambda: c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False) == (20, 20),
                 15, "retention to delete every segment")
        # back to the default retention, so that the next record stays; an offset below
        # the log start is out of range and the consumer resets to the earliest
        incremental(a, topic, ("retention.ms", None, AlterConfigOpType.DELETE))
        reports = produce_and_report(p, [(topic, None, b"after", None, 0)])
        assert reports[0][2] == 20
        c.assign([TopicPartition(topic, 0, 5)])
        got = None
        for _ in range(100):
            m = c.poll(0.2)
            if m is not None and m.error() is None:
                got = (m.offset(), m.value())
                break
        assert got == (20, b"after")
    finally:
        c.close()


def test_retention_bytes_removes_whole_segments(broker_factory):
    """retention.bytes on a topic of 20 two-record segments: the oldest whole segments go
    until the rest fits (the low watermark lands on a segment boundary, 30), and a consumer
    (kafka-python) positioned at offset 0 is out of range and resets to the latest offset,
    as configured, then receives the next record."""
    b = broker_factory(overrides={"log.retention.check.interval.ms": 200})
    a = admin(b.bootstrap)
    topic = unique_topic("cfg-ret-bytes")
    a.create_topics([NewTopic(topic, 1, 1, config={"segment.bytes": "1024"})])[topic].result(20)
    p = producer(b.bootstrap, **{"linger.ms": 0})
    # one batch per record: each waits for the previous one's acknowledgement
    offsets = [produce_and_report(p, [(topic, None, b"v" * 300, None, 0)])[0][2] for _ in range(40)]
    assert offsets == list(range(40))
    segments = sorted((b.log_dir / f"{topic}-0").glob("*.log"))
    assert [int(s.name[:-4]) for s in segments] == list(range(0, 40, 2))
    from kafka import KafkaConsumer, TopicPartition as KTP

    incremental(a, topic, ("retention.bytes", "3000", AlterConfigOpType.SET))
    c = assigned_consumer(b.bootstrap)
    try:
        wait_for(lambda: c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False) == (30, 40),
                 15, "retention to keep the last 3000 bytes of whole segments")
    finally:
        c.close()
    # as in Kafka, the log start offset moves first and the segment files are removed after it
    wait_for(lambda: sorted(int(s.name[:-4]) for s in (b.log_dir / f"{topic}-0").glob("*.log")) == [30, 32, 34, 36, 38],
             15, "the deleted segments' files to be removed")

    # kafka-python reports the fetch position, so the reset can be awaited before producing
    kc = KafkaConsumer(bootstrap_servers=b.bootstrap, auto_offset_reset="latest", enable_auto_commit=False)
    try:
        tp = KTP(topic, 0)
        kc.assign([tp])
        kc.seek(tp, 0)
        wait_for(lambda: not kc.poll(timeout_ms=100) and kc.position(tp) == 40, 15,
                 "the consumer at offset 0 to reset to the latest offset")
        assert produce_and_report(p, [(topic, None, b"after", None, 0)])[0][2] == 40
        got = wait_for(lambda: [(m.offset, m.value) for ms in kc.poll(timeout_ms=200).values() for m in ms],
                       15, "the record after the reset")
        assert got == [(40, b"after")]
    finally:
        kc.close()


def test_kafka_python_admin_describe_and_alter(broker):
    """kafka-python's admin client: describe_configs of a topic, alter_configs SET and DELETE,
    the new values described back."""
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource as KConfigResource, ConfigResourceType, NewTopic as KNewTopic

    topic = unique_topic("cfg-kpy")
    k = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15000)
    try:
        k.create_topics([KNewTopic(topic, 1, 1, topic_configs={"retention.bytes": "1000000"})])

        def values() -> dict:
            res = k.describe_configs([KConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all")
            return {name: (e["value"], e["config_source"]) for name, e in res["topic"][topic].items()}

        v = values()
        assert v["retention.bytes"] == ("1000000", "DYNAMIC_TOPIC_CONFIG")
        assert v["retention.ms"] == ("604800000", "DEFAULT_CONFIG")
        # kafka-python sends IncrementalAlterConfigs: a SET leaves other overrides alone
        k.alter_configs([KConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "120000"})])
        v = values()
        assert v["retention.ms"] == ("120000", "DYNAMIC_TOPIC_CONFIG")
        assert v["retention.bytes"] == ("1000000", "DYNAMIC_TOPIC_CONFIG")
        k.alter_configs([KConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.bytes": ("DELETE", None)})])
        assert values()["retention.bytes"] == ("-1", "DEFAULT_CONFIG")
    finally:
        k.close()


def test_create_partitions_grows_a_topic(broker):
    """confluent-kafka create_partitions: a topic grows from 2 to 5 partitions at once (the
    new ones take records from offset 0); shrinking, the same count and an unknown topic are
    refused as Kafka refuses them; validate-only changes nothing."""
    from confluent_kafka.admin import NewPartitions

    a = admin(broker.bootstrap)
    topic = unique_topic("grow")
    a.create_topics([NewTopic(topic, 2, 1)])[topic].result(20)

    def grow(count: int, validate_only: bool = False, name: str = topic):
        return a.create_partitions([NewPartitions(name, count)], validate_only=validate_only,
                                   request_timeout=15)[name].result(20)

    grow(5)
    assert len(a.list_topics(topic, timeout=10).topics[topic].partitions) == 5
    reports = produce_and_report(producer(broker.bootstrap), [(topic, None, b"new", None, 4)])
    assert [(e, p, o) for e, p, o in reports] == [(None, 4, 0)]
    for count, code in [(3, KafkaError.INVALID_PARTITIONS), (5, KafkaError.INVALID_PARTITIONS)]:
        with pytest.raises(KafkaException) as e:
            grow(count)
        assert e.value.args[0].code() == code, e.value.args[0]
    grow(8, validate_only=True)
    assert len(a.list_topics(topic, timeout=10).topics[topic].partitions) == 5
    with pytest.raises(KafkaException) as e:
        grow(3, name=unique_topic("missing"))
    assert e.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_delete_records_moves_the_log_start(broker):
    """confluent-kafka delete_records: the low watermark moves to the given offset, the
    earliest offset follows, a consumer from the beginning starts there, an offset beyond
    the high watermark is OFFSET_OUT_OF_RANGE, and the new log start survives a restart."""
    a = admin(broker.bootstrap)
    topic = unique_topic("delrec")
    a.create_topics([NewTopic(topic, 1, 1)])[topic].result(20)
    produce_and_report(producer(broker.bootstrap), [(topic, None, f"v{i}".encode(), None, 0) for i in range(10)])
    tp = TopicPartition(topic, 0, 4)
    assert a.delete_records([tp], request_timeout=15)[tp].result(20).low_watermark == 4
    with pytest.raises(KafkaException) as e:
        beyond = TopicPartition(topic, 0, 11)
        a.delete_records([beyond], request_timeout=15)[beyond].result(20)
    assert e.value.args[0].code() == KafkaError.OFFSET_OUT_OF_RANGE

    def first_record():
        c = assigned_consumer(broker.bootstrap, **{"auto.offset.reset": "earliest"})
        try:
            lo_hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)
            c.assign([TopicPartition(topic, 0, 0)])
            for _ in range(100):
                m = c.poll(0.2)
                if m is not None and m.error() is None:
                    return lo_hi, (m.offset(), m.value())
            return lo_hi, None
        finally:
            c.close()

    assert first_record() == ((4, 10), (4, b"v4"))
    broker.stop()
    broker.start()
    assert first_record() == ((4, 10), (4, b"v4"))


def test_kafka_python_create_partitions_and_delete_records(broker):
    """kafka-python's admin client: create_partitions and delete_records."""
    from kafka import KafkaAdminClient
    from kafka import TopicPartition as KTopicPartition
    from kafka.admin import NewPartitions as KNewPartitions, NewTopic as KNewTopic

    topic = unique_topic("kpy-parts")
    k = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15000)
    try:
        k.create_topics([KNewTopic(topic, 1, 1)])
        k.create_partitions({topic: KNewPartitions(total_count=3)})
        assert len(admin(broker.bootstrap).list_topics(topic, timeout=10).topics[topic].partitions) == 3
        produce_and_report(producer(broker.bootstrap), [(topic, None, b"x", None, 2) for _ in range(6)])
        res = k.delete_records({KTopicPartition(topic, 2): 5})
        assert res[KTopicPartition(topic, 2)]["low_watermark"] == 5
    finally:
        k.close()


def test_describe_log_dirs_reports_partition_sizes(broker):
    """kafka-python describe_log_dirs: the one data directory, and each partition's size on
    disk: 50 records of 1,000 bytes take their bytes plus batch overhead, an empty partition
    takes none."""
    from kafka import KafkaAdminClient

    a = admin(broker.bootstrap)
    topic = unique_topic("logdirs")
    a.create_topics([NewTopic(topic, 2, 1)])[topic].result(20)
    produce_and_report(producer(broker.bootstrap), [(topic, None, b"d" * 1000, None, 0) for _ in range(50)])
    k = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15000)
    try:
        (per_broker,) = k.describe_log_dirs({topic: [0, 1]})
        (d,) = per_broker["log_dirs"]
        assert d["error_code"] == 0
        assert d["log_dir"] == str(broker.log_dir.resolve())
        sizes = {p["partition_index"]: p["partition_size"]
                 for t in d["topics"] if t["name"] == topic for p in t["partitions"]}
        assert sizes[1] == 0
        assert 50_000 < sizes[0] < 55_000, sizes
    finally:
        k.close()


def test_leadership_and_reassignment_as_one_node(broker):
    """kafka-python: a preferred-leader election is never needed (ELECTION_NOT_NEEDED), no
    reassignment is ever in progress, a reassignment to this broker is already done, to
    another broker INVALID_REPLICA_ASSIGNMENT, and a cancel NO_REASSIGNMENT_IN_PROGRESS."""
    from kafka import KafkaAdminClient
    from kafka import TopicPartition as KTopicPartition
    from kafka.errors import InvalidReplicationAssignmentError, NoReassignmentInProgressError

    a = admin(broker.bootstrap)
    topic = unique_topic("leaders")
    a.create_topics([NewTopic(topic, 2, 1)])[topic].result(20)
    k = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15000)
    try:
        r = k.elect_leaders(0, {topic: [0, 1]})
        codes = [(res.topic, p.partition_id, p.error_code)
                 for res in r.replica_election_results for p in res.partition_result]
        assert codes == [(topic, 0, 84), (topic, 1, 84)]
        assert k.list_partition_reassignments() == {}
        tp0, tp1 = KTopicPartition(topic, 0), KTopicPartition(topic, 1)
        assert k.alter_partition_reassignments({tp0: [1], tp1: [1, 2]}) == {
            tp0: None, tp1: InvalidReplicationAssignmentError}
        assert k.alter_partition_reassignments({tp0: None}) == {tp0: NoReassignmentInProgressError}
        assert k.list_partition_reassignments() == {}
    finally:
        k.close()


def test_message_timestamp_type_and_range_are_enforced(broker):
    """message.timestamp.type=LogAppendTime stamps the broker's time on what is appended
    (consumers see TIMESTAMP_LOG_APPEND_TIME); back to CreateTime the producer's time is
    kept; message.timestamp.after.max.ms and before.max.ms refuse records too far in the
    future or the past with INVALID_TIMESTAMP, compressed batches included."""
    from confluent_kafka import TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME

    a = admin(broker.bootstrap)
    topic = unique_topic("ts")
    a.create_topics([NewTopic(topic, 1, 1, config={"message.timestamp.type": "LogAppendTime"})])[topic].result(20)

    def send(ts: int, **conf):
        p = producer(broker.bootstrap, **{"linger.ms": 0, **conf})
        out = []
        p.produce(topic, value=b"v", partition=0, timestamp=ts,
                  on_delivery=lambda err, msg: out.append((err, msg.offset())))
        assert p.flush(20) == 0
        ((err, offset),) = out
        return (None, offset) if err is None else (err.code(), None)

    def timestamp_at(offset: int):
        c = assigned_consumer(broker.bootstrap)
        try:
            c.assign([TopicPartition(topic, 0, offset)])
            for _ in range(100):
                m = c.poll(0.2)
                if m is not None and m.error() is None:
                    return m.timestamp()
            return None
        finally:
            c.close()

    before = int(time.time() * 1000)
    assert send(1000) == (None, 0)
    after = int(time.time() * 1000)
    kind, ts = timestamp_at(0)
    assert kind == TIMESTAMP_LOG_APPEND_TIME and before <= ts <= after, (kind, ts, before, after)

    incremental(a, topic, ("message.timestamp.type", "CreateTime", AlterConfigOpType.SET))
    assert send(1000) == (None, 1)
    assert timestamp_at(1) == (TIMESTAMP_CREATE_TIME, 1000)

    incremental(a, topic, ("message.timestamp.after.max.ms", "60000", AlterConfigOpType.SET),
                ("message.timestamp.before.max.ms", "60000", AlterConfigOpType.SET))
    now = int(time.time() * 1000)
    assert send(now + 3_600_000) == (KafkaError.INVALID_TIMESTAMP, None)
    assert send(now - 3_600_000, **{"compression.type": "lz4"}) == (KafkaError.INVALID_TIMESTAMP, None)
    assert send(now) == (None, 2)


def test_broker_defaults_and_no_unwanted_auto_creation(broker_factory):
    """Kafka Connect's start-up path: CreateTopics with partitions and replication factor -1
    takes the broker's defaults (KIP-464); Metadata from a client that sets
    allow_auto_topic_creation=false (a consumer's default) never creates a topic, while a
    producer's Metadata does, with num.partitions."""
    from confluent_kafka import Consumer

    b = broker_factory(overrides={"num.partitions": 3})
    a = admin(b.bootstrap)
    defaults = unique_topic("defaults")
    a.create_topics([NewTopic(defaults, num_partitions=-1, replication_factor=-1)])[defaults].result(20)
    assert len(a.list_topics(defaults, timeout=10).topics[defaults].partitions) == 3

    missing = unique_topic("never-created")
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "meta-only"})
    try:
        md = c.list_topics(missing, timeout=10)
        assert md.topics[missing].error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    finally:
        c.close()
    assert missing not in a.list_topics(timeout=10).topics

    wanted = unique_topic("auto")
    reports = produce_and_report(producer(b.bootstrap), [(wanted, None, b"v", None, None)])
    assert reports[0][0] is None
    assert len(a.list_topics(wanted, timeout=10).topics[wanted].partitions) == 3


def test_describe_topic_partitions_pages_with_a_cursor(broker):
    """kafka-python describe_topic_partitions (KIP-966): topics sorted by name, at most
    response_partition_limit partitions per response, next_cursor naming where to go on;
    this broker leads every partition in epoch 0; an unknown topic is
    UNKNOWN_TOPIC_OR_PARTITION."""
    from kafka import KafkaAdminClient

    a = admin(broker.bootstrap)
    prefix = unique_topic("dtp")
    first, second, missing = f"{prefix}-a", f"{prefix}-b", f"{prefix}-c"
    for name, n in [(first, 3), (second, 2)]:
        a.create_topics([NewTopic(name, n, 1)])[name].result(20)
    k = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15000)
    try:
        pages, cursor = [], None
        for _ in range(5):
            r = k.describe_topic_partitions([second, missing, first], response_partition_limit=2, cursor=cursor)
            pages.append([(t["name"], t["error_code"], [p["partition_index"] for p in t["partitions"]])
                          for t in r["topics"]])
            cursor = r["next_cursor"]
            if cursor is None:
                break
        assert pages == [
            [(first, 0, [0, 1])],
            [(first, 0, [2]), (second, 0, [0])],
            [(second, 0, [1]), (missing, 3, [])],
        ]
        r = k.describe_topic_partitions([first])
        (t,) = r["topics"]
        assert [(p["leader_id"], p["leader_epoch"], p["replica_nodes"], p["isr_nodes"]) for p in t["partitions"]] \
            == [(1, 0, [1], [1])] * 3
        assert r["next_cursor"] is None
    finally:
        k.close()
