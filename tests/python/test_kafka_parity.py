"""Behaviours of Apache Kafka 4.2 that other projects' client suites depend on, by raw frames
(kafka-python's generated message classes over a socket) and real clients: fetch session ids
and epochs as Kafka's FetchManager.newContext treats them, the session cache's eviction, and
the reset franz-go sends after every rebalance; per-record produce errors (KIP-467);
ListOffsets -4 and -5 (KIP-1005); AlterReplicaLogDirs and DescribeQuorum, which kafka-python
sends without asking ApiVersions."""

from __future__ import annotations

import re
import struct
import time
import uuid
from dataclasses import dataclass

import pytest
from confluent_kafka import KafkaError, TopicPartition
from confluent_kafka.admin import ConfigResource, NewTopic
from kafka.protocol.admin import AlterReplicaLogDirsRequest, DescribeQuorumRequest
from kafka.protocol.consumer import FetchRequest
from kafka.protocol.metadata import MetadataRequest
from kafka.protocol.producer import ProduceResponse

import wire
from e2e import admin, assigned_consumer, create_topic, produce_and_report, producer, unique_topic
from wire import Conn, call, list_offset

NONE = 0
FETCH_SESSION_ID_NOT_FOUND = 70
INVALID_FETCH_SESSION_EPOCH = 71
FETCH_SESSION_TOPIC_ID_ERROR = 106


def watermarks(bootstrap: str, topic: str) -> tuple[int, int]:
    c = assigned_consumer(bootstrap)
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)
    finally:
        c.close()


@dataclass
class RecordError:
    """Kafka's RecordError, printed as its toString."""
    index: int
    message: str

    def __str__(self) -> str:
        return f"RecordError(batchIndex={self.index}, message='{self.message}')"


def produce(bootstrap: str, topic: str, n: int, first: int = 0) -> None:
    """`n` records to partition 0, one batch each (each waits for its report), so a fetch
    from any offset starts exactly there."""
    p = producer(bootstrap, **{"linger.ms": 0})
    for i in range(n):
        reports = produce_and_report(p, [(topic, None, f"v{first + i}".encode(), None, 0)])
        assert [r[0] for r in reports] == [None]


def topic_id(conn: Conn, topic: str) -> uuid.UUID:
    r = call(conn, MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name=topic)],
                                   allow_auto_topic_creation=False), 12)
    (t,) = r.topics
    assert t.error_code == NONE
    return t.topic_id if isinstance(t.topic_id, uuid.UUID) else uuid.UUID(str(t.topic_id))


def offsets(records) -> list[int]:
    """The offsets of the records in a partition's v2 batches (read from batch headers)."""
    data = bytes(records or b"")
    out, pos = [], 0
    while pos + 61 <= len(data):
        base, length = struct.unpack_from(">qi", data, pos)
        (count,) = struct.unpack_from(">i", data, pos + 57)
        out += range(base, base + count)
        pos += 12 + length
    return out


class Fetcher:
    """Raw Fetch requests at one version: by topic name up to v12, by topic id from v13."""

    def __init__(self, conn: Conn, version: int, topic: str, replica_id: int = -1):
        self.conn, self.version, self.topic, self.replica_id = conn, version, topic, replica_id
        self.tid = topic_id(conn, topic)
        self.corr = 10

    def _topic(self, cls, **kw):
        if self.version >= 13:
            return cls(topic="", topic_id=self.tid, **kw)
        return cls(topic=self.topic, **kw)

    def __call__(self, session_id: int, epoch: int, offsets: dict[int, int] | None = None,
                 forget: list[int] | None = None):
        parts = [FetchRequest.FetchTopic.FetchPartition(partition=p, fetch_offset=o, partition_max_bytes=1 << 20)
                 for p, o in (offsets or {}).items()]
        topics = [self._topic(FetchRequest.FetchTopic, partitions=parts)] if parts else []
        forgotten = [self._topic(FetchRequest.ForgottenTopic, partitions=forget)] if forget else []
        req = FetchRequest(replica_id=self.replica_id, max_wait_ms=0, min_bytes=0, max_bytes=1 << 20,
                           isolation_level=0, session_id=session_id, session_epoch=epoch, topics=topics,
                           forgotten_topics_data=forgotten, rack_id="")
        self.corr += 1
        return call(self.conn, req, self.version, self.corr)

    def summary(self, r) -> tuple[int, int, list]:
        """(error_code, session_id, [(partition, error_code, high_watermark, offsets)]) with
        each topic checked to be this one, by name or id as the version has it."""
        parts = []
        for t in r.responses:
            if self.version >= 13:
                assert (uuid.UUID(str(t.topic_id)), t.topic) == (self.tid, "")
            else:
                assert t.topic == self.topic
            parts += [(p.partition_index, p.error_code, p.high_watermark, offsets(p.records)) for p in t.partitions]
        return r.error_code, r.session_id, parts


@pytest.fixture(params=[12, 13], ids=["v12-by-name", "v13-by-id"])
def version(request) -> int:
    return request.param


def test_fetch_session_ids_and_epochs_as_kafka(broker, version):
    """Every (session id, epoch) combination of FetchManager.newContext."""
    topic = unique_topic("fs")
    create_topic(broker.bootstrap, topic, 1)
    produce(broker.bootstrap, topic, 3)
    data = [(0, NONE, 3, [0, 1, 2])]
    with Conn(broker.host, broker.port) as c:
        f = Fetcher(c, version, topic)
        ask = lambda sid, epoch, **kw: f.summary(f(sid, epoch, **kw))  # noqa: E731
        # (0, -1): sessionless; (0, 0): full, a new session.
        assert ask(0, -1, offsets={0: 0}) == (NONE, 0, data)
        err, s1, parts = ask(0, 0, offsets={0: 0})
        assert (err, parts) == (NONE, data) and s1 > 0
        # (id, n>0): incremental; nothing changed, so no partitions.
        assert ask(s1, 1, offsets={0: 3}) == (NONE, s1, [])
        # A wrong epoch is refused without partitions and without using the epoch up.
        assert ask(s1, 1) == (INVALID_FETCH_SESSION_EPOCH, 0, [])
        assert ask(s1, 3) == (INVALID_FETCH_SESSION_EPOCH, 0, [])
        assert ask(s1, 2) == (NONE, s1, [])
        # (id, 0): closes id, answers in full and opens a new session.
        err, s2, parts = ask(s1, 0, offsets={0: 1})
        assert (err, parts) == (NONE, [(0, NONE, 3, [1, 2])]) and s2 > 0 and s2 != s1
        assert ask(s1, 3) == (FETCH_SESSION_ID_NOT_FOUND, 0, [])
        assert ask(s2, 1, offsets={0: 3}) == (NONE, s2, [])
        # (id, -1): closes id and answers sessionless.
        assert ask(s2, -1, offsets={0: 0}) == (NONE, 0, data)
        assert ask(s2, 2) == (FETCH_SESSION_ID_NOT_FOUND, 0, [])
        # (0, n>0): Kafka looks session 0 up, which never exists.
        assert ask(0, 1, offsets={0: 0}) == (FETCH_SESSION_ID_NOT_FOUND, 0, [])
        assert ask(0, 7) == (FETCH_SESSION_ID_NOT_FOUND, 0, [])
        # An unknown id with epoch 0 or -1 is no error: it is a full or sessionless fetch.
        err, s3, parts = ask(12345, 0, offsets={0: 0})
        assert (err, parts) == (NONE, data) and s3 > 0
        assert ask(12345, -1, offsets={0: 0}) == (NONE, 0, data)
        # An incremental request that forgets the last partition closes the session and is
        # answered sessionless, with only what the request named (here nothing).
        assert ask(s3, 1, forget=[0]) == (NONE, 0, [])
        assert ask(s3, 2) == (FETCH_SESSION_ID_NOT_FOUND, 0, [])
        # Named and forgotten in one request: Kafka adds, then forgets, then closes; the
        # sessionless answer carries the partition the request named.
        _, s4, _ = ask(0, 0, offsets={0: 0})
        assert ask(s4, 1, offsets={0: 2}, forget=[0]) == (NONE, 0, [(0, NONE, 3, [2])])
        assert ask(s4, 2) == (FETCH_SESSION_ID_NOT_FOUND, 0, [])


def test_fetch_session_of_names_refuses_ids_and_back(broker):
    """A session opened by Fetch v12 (names) continued by v13 (ids), or the reverse, is
    FETCH_SESSION_TOPIC_ID_ERROR, as in Kafka."""
    topic = unique_topic("fsv")
    create_topic(broker.bootstrap, topic, 1)
    with Conn(broker.host, broker.port) as c:
        by_name, by_id = Fetcher(c, 12, topic), Fetcher(c, 13, topic)
        _, s_name, _ = by_name.summary(by_name(0, 0, offsets={0: 0}))
        _, s_id, _ = by_id.summary(by_id(0, 0, offsets={0: 0}))
        assert by_id.summary(by_id(s_name, 1)) == (FETCH_SESSION_TOPIC_ID_ERROR, 0, [])
        assert by_name.summary(by_name(s_id, 1)) == (FETCH_SESSION_TOPIC_ID_ERROR, 0, [])
        assert by_name.summary(by_name(s_name, 1)) == (NONE, s_name, [])
        assert by_id.summary(by_id(s_id, 1)) == (NONE, s_id, [])


def test_go_client_session_reset_after_rebalance(broker, version):
    """franz-go's sequence: a full fetch, incremental fetches, then after a rebalance the same
    session id with epoch 0 from the committed offset: a new session and the data, and the
    old id is gone."""
    topic = unique_topic("reset")
    create_topic(broker.bootstrap, topic, 2)
    produce(broker.bootstrap, topic, 3)
    with Conn(broker.host, broker.port) as c:
        f = Fetcher(c, version, topic)
        ask = lambda sid, epoch, **kw: f.summary(f(sid, epoch, **kw))  # noqa: E731
        err, s1, parts = ask(0, 0, offsets={0: 0, 1: 0})
        assert (err, parts) == (NONE, [(0, NONE, 3, [0, 1, 2]), (1, NONE, 0, [])]) and s1 > 0
        produce(broker.bootstrap, topic, 2, first=3)
        assert ask(s1, 1, offsets={0: 3}) == (NONE, s1, [(0, NONE, 5, [3, 4])])
        assert ask(s1, 2, offsets={0: 5}) == (NONE, s1, [])
        # The rebalance: same id, epoch 0, from the committed offset 1.
        err, s2, parts = ask(s1, 0, offsets={0: 1, 1: 0})
        assert (err, parts) == (NONE, [(0, NONE, 5, [1, 2, 3, 4]), (1, NONE, 0, [])])
        assert s2 > 0 and s2 != s1
        assert ask(s1, 3, offsets={0: 5}) == (FETCH_SESSION_ID_NOT_FOUND, 0, [])
        assert ask(s2, 1, offsets={0: 5}) == (NONE, s2, [])
        produce(broker.bootstrap, topic, 1, first=5)
        assert ask(s2, 2) == (NONE, s2, [(0, NONE, 6, [5])])


def test_fetch_session_cache_evicts_as_kafka(broker_factory):
    """max.incremental.fetch.session.cache.slots=2: consumers cannot evict each other's fresh
    sessions (the third gets its data and session id 0); a follower fetch (replica id >= 0)
    evicts the least valuable consumer session (fewest partitions, then lowest id); fresh
    follower sessions are evicted by no one."""
    b = broker_factory(overrides={"max.incremental.fetch.session.cache.slots": 2})
    topic = unique_topic("evict")
    create_topic(b.bootstrap, topic, 3)
    produce(b.bootstrap, topic, 1)
    res = ConfigResource("BROKER", "1")
    a = admin(b.bootstrap)  # kept alive until its future resolves
    (entries,) = [f.result(30) for f in a.describe_configs([res]).values()]
    assert entries["max.incremental.fetch.session.cache.slots"].value == "2"
    with Conn(b.host, b.port) as c:
        consumer, follower = Fetcher(c, 12, topic), Fetcher(c, 12, topic, replica_id=2)
        ask = lambda f, sid, epoch, **kw: f.summary(f(sid, epoch, **kw))  # noqa: E731
        # Sessions at the end of the log, so that their incremental answers are empty.
        _, big, _ = ask(consumer, 0, 0, offsets={0: 1, 1: 0, 2: 0})
        _, small, _ = ask(consumer, 0, 0, offsets={0: 1})
        assert big > 0 and small > 0
        # A full cache and nothing evictable: the answer in full, without a session.
        assert ask(consumer, 0, 0, offsets={0: 0, 1: 0, 2: 0}) == (
            NONE, 0, [(0, NONE, 1, [0]), (1, NONE, 0, []), (2, NONE, 0, [])])
        assert ask(consumer, big, 1) == (NONE, big, [])
        assert ask(consumer, small, 1) == (NONE, small, [])
        # A follower evicts the smaller consumer session.
        _, f1, _ = ask(follower, 0, 0, offsets={0: 1})
        assert f1 > 0
        assert ask(consumer, small, 2) == (FETCH_SESSION_ID_NOT_FOUND, 0, [])
        assert ask(consumer, big, 2) == (NONE, big, [])
        _, f2, _ = ask(follower, 0, 0, offsets={0: 1})
        assert f2 > 0
        assert ask(consumer, big, 3) == (FETCH_SESSION_ID_NOT_FOUND, 0, [])
        # Two fresh follower sessions: a third follower gets none.
        assert ask(follower, 0, 0, offsets={0: 1})[1] == 0
        assert ask(follower, f1, 1) == (NONE, f1, [])
        assert ask(follower, f2, 1) == (NONE, f2, [])


# --- per-record produce errors (KIP-467) ---------------------------------------------------

INVALID_TIMESTAMP = 32
INVALID_RECORD = 87


def compacted_topic(bootstrap: str, prefix: str) -> str:
    topic = unique_topic(prefix)
    a = admin(bootstrap)
    fs = a.create_topics([NewTopic(topic, 1, 1, config={"cleanup.policy": "compact"})])
    assert fs[topic].result(30) is None
    return topic


def produce_v8(conn: Conn, topic: str, batch: bytes):
    """A raw Produce v8 of one batch to partition 0; its one partition answer."""
    payload = conn.request(wire.produce_request(8, 3, topic, 0, batch))
    r = ProduceResponse.decode(payload, version=8, header=True)
    (t,) = r.responses
    (p,) = t.partition_responses
    return p


def keyless(topic: str) -> str:
    return f"Compacted topic cannot accept message without key in topic partition {topic}-0"


def test_keyless_records_get_record_errors(broker):
    """Produce v8 of keyed and keyless records to a compacted topic: INVALID_RECORD with each
    keyless record's batch index and Kafka's message, the summary naming at most three, the
    log start offset, and nothing appended; a keyed batch then lands at offset 0."""
    topic = compacted_topic(broker.bootstrap, "kip467")
    now = int(time.time() * 1000)
    v = b"v"
    with Conn(broker.host, broker.port) as c:
        p = produce_v8(c, topic, wire.record_batch([(b"k0", v), (None, v), (b"k2", v), (None, v)], now))
        errors = [RecordError(1, keyless(topic)), RecordError(3, keyless(topic))]
        assert (p.error_code, p.base_offset, p.log_start_offset) == (INVALID_RECORD, -1, 0)
        assert [(e.batch_index, e.batch_index_error_message) for e in p.record_errors] == [
            (e.index, e.message) for e in errors]
        assert p.error_message == ("One or more records have been rejected due to 2 record errors in total, "
                                   f"and only showing the first three errors at most: [{errors[0]}, {errors[1]}]")
        p = produce_v8(c, topic, wire.record_batch([(None, v)] * 4, now))
        assert (p.error_code, [e.batch_index for e in p.record_errors]) == (INVALID_RECORD, [0, 1, 2, 3])
        shown = ", ".join(str(RecordError(i, keyless(topic))) for i in range(3))
        assert p.error_message == ("One or more records have been rejected due to 4 record errors in total, "
                                   f"and only showing the first three errors at most: [{shown}]")
        assert watermarks(broker.bootstrap, topic) == (0, 0)
        p = produce_v8(c, topic, wire.record_batch([(b"k0", v), (b"k1", v)], now))
        assert (p.error_code, p.base_offset, list(p.record_errors), p.error_message) == (0, 0, [], None)
    assert watermarks(broker.bootstrap, topic) == (0, 2)


def test_out_of_range_timestamps_get_record_errors(broker):
    """Records past message.timestamp.after.max.ms (1 h by default): INVALID_TIMESTAMP, each
    named with its timestamp, offset and the allowed range as Kafka words it."""
    topic = unique_topic("kip467ts")
    create_topic(broker.bootstrap, topic, 1)
    now = int(time.time() * 1000)
    late = now + 7_200_000
    with Conn(broker.host, broker.port) as c:
        batch = wire.record_batch([(b"a", b"1"), (b"b", b"2"), (b"c", b"3")], now, timestamps=[now, late, late + 1])
        p = produce_v8(c, topic, batch)
    assert (p.error_code, p.base_offset, p.log_start_offset) == (INVALID_TIMESTAMP, -1, 0)
    assert p.error_message == "One or more records have been rejected due to invalid timestamp"
    pattern = re.compile(r"Timestamp (\d+) of message with offset (\d+) is out of range\. "
                         r"The timestamp should be within \[(-?\d+), (\d+)\]")
    got = []
    for e in p.record_errors:
        m = pattern.fullmatch(e.batch_index_error_message)
        assert m, e.batch_index_error_message
        ts, offset, low, high = map(int, m.groups())
        # The bounds are the broker's now minus before.max.ms (Long.MAX_VALUE) and plus 1 h.
        assert low == high - 3_600_000 - (2**63 - 1)
        assert now - 60_000 <= high - 3_600_000 <= now + 60_000
        got.append((e.batch_index, ts, offset))
    assert got == [(1, late, 1), (2, late + 1, 2)]
    assert watermarks(broker.bootstrap, topic) == (0, 0)


def test_confluent_reports_record_errors_per_message(broker):
    """confluent-kafka producing one batch of keyed and keyless records to a compacted topic:
    librdkafka fails each keyless record with INVALID_RECORD, the others with
    _INVALID_DIFFERENT_RECORD, without retrying; a keyed batch then lands at offset 0."""
    topic = compacted_topic(broker.bootstrap, "kip467rd")
    p = producer(broker.bootstrap, **{"linger.ms": 500, "batch.num.messages": 100})
    keys = [b"k0", None, b"k2", None, b"k4"]
    reports = produce_and_report(p, [(topic, k, b"v", None, 0) for k in keys])
    # librdkafka keeps each record's broker message to itself (confluent-kafka's KafkaError
    # shows the code's description): rd_kafka_msgbatch_handle_Produce_result_record_errors.
    invalid = (KafkaError.INVALID_RECORD, "Broker: Broker failed to validate record")
    other = (KafkaError._INVALID_DIFFERENT_RECORD,
             "Local: an invalid record in the same batch caused the failure of this message too")
    assert [(err.code(), err.str()) if err else None for err, _, _ in reports] == [
        other, invalid, other, invalid, other]
    assert watermarks(broker.bootstrap, topic) == (0, 0)
    reports = produce_and_report(p, [(topic, k, b"v", None, 0) for k in (b"k0", b"k1")])
    assert [(err, offset) for err, _, offset in reports] == [(None, 0), (None, 1)]


# --- KIP-1005 ListOffsets ---------------------------------------------------------------------

UNSUPPORTED_VERSION = 35


def test_list_offsets_earliest_local_and_latest_tiered(broker):
    """KIP-1005 on a broker without tiered storage, after DeleteRecords moved the log start
    to 3 of 5: -4 (earliest local, v8+) is the log start offset, -5 (latest tiered, v9+) is
    offset -1 with leader epoch -1; each below its version, and any unknown negative
    timestamp, is UNSUPPORTED_VERSION, checked before the partition is looked up."""
    topic = unique_topic("kip1005")
    create_topic(broker.bootstrap, topic, 1)
    produce(broker.bootstrap, topic, 5)
    a = admin(broker.bootstrap)
    (f,) = a.delete_records([TopicPartition(topic, 0, 3)]).values()
    assert f.result(30).low_watermark == 3
    unsupported = (UNSUPPORTED_VERSION, -1, -1, -1)
    with Conn(broker.host, broker.port) as c:
        for version in (9, 10):
            assert list_offset(c, topic, version, -4) == (NONE, -1, 3, 0)
            assert list_offset(c, topic, version, -5) == (NONE, -1, -1, -1)
            assert list_offset(c, topic, version, -2) == (NONE, -1, 3, 0)
            assert list_offset(c, topic, version, -1) == (NONE, -1, 5, 0)
        assert list_offset(c, topic, 8, -4) == (NONE, -1, 3, 0)
        assert list_offset(c, topic, 8, -5) == unsupported
        assert list_offset(c, topic, 7, -4) == unsupported
        assert list_offset(c, topic, 6, -3) == unsupported
        assert list_offset(c, topic, 7, -3)[0] == NONE
        assert list_offset(c, topic, 10, -6) == unsupported
        assert list_offset(c, topic, 10, -7) == unsupported
        assert list_offset(c, "no-such-topic", 10, -7) == unsupported
        assert list_offset(c, "no-such-topic", 10, -4) == (3, -1, -1, -1)


# --- APIs a client may send without asking ApiVersions -----------------------------------------

LOG_DIR_NOT_FOUND = 57


def test_alter_replica_log_dirs_with_kafka_python(broker):
    """kafka-python's alter_replica_log_dirs (AlterReplicaLogDirs v2, sent without looking at
    ApiVersions): the replica's own directory succeeds, another directory is
    LOG_DIR_NOT_FOUND, a partition that does not exist UNKNOWN_TOPIC_OR_PARTITION; the
    connection stays open throughout."""
    from kafka import KafkaAdminClient, TopicPartitionReplica
    from kafka import errors as Errors

    topic = unique_topic("logdirs")
    create_topic(broker.bootstrap, topic, 1)
    ka = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        ((dirs,),) = [d["log_dirs"] for d in ka.describe_log_dirs()]
        here = dirs["log_dir"]
        r = ka.alter_replica_log_dirs({
            TopicPartitionReplica(topic, 0, 1): here,
            TopicPartitionReplica(topic, 5, 1): here,
            TopicPartitionReplica("no-such-topic", 0, 1): here,
        })
        assert r == {
            TopicPartitionReplica(topic, 0, 1): Errors.NoError,
            TopicPartitionReplica(topic, 5, 1): Errors.UnknownTopicOrPartitionError,
            TopicPartitionReplica("no-such-topic", 0, 1): Errors.UnknownTopicOrPartitionError,
        }
        r = ka.alter_replica_log_dirs({TopicPartitionReplica(topic, 0, 1): "/elsewhere"})
        assert r == {TopicPartitionReplica(topic, 0, 1): Errors.LogDirNotFoundError}
    finally:
        ka.close()
    with Conn(broker.host, broker.port) as c:
        _Dir = AlterReplicaLogDirsRequest.AlterReplicaLogDir
        req = AlterReplicaLogDirsRequest(dirs=[
            _Dir(path=here, topics=[_Dir.AlterReplicaLogDirTopic(name=topic, partitions=[0])]),
            _Dir(path=here + "-not", topics=[_Dir.AlterReplicaLogDirTopic(name="x" * 249, partitions=[0])]),
        ])
        for version in (1, 2):
            got = [(t.topic_name, [(p.partition_index, p.error_code) for p in t.partitions])
                   for t in call(c, req, version).results]
            # A name too long for Kafka's "-future" directory is INVALID_TOPIC_EXCEPTION (17).
            assert got == [(topic, [(0, NONE)]), ("x" * 249, [(0, 17)])]


def test_describe_quorum_names_the_single_node(broker):
    """DescribeQuorum by raw frame (v0-v2) and kafka-python's describe_metadata_quorum: the
    node is the one voter and the leader of __cluster_metadata-0, its offsets -1 (there is
    no metadata log), its endpoints the advertised listeners; another partition or topic is
    UNKNOWN_TOPIC_OR_PARTITION, as Kafka answers."""
    from kafka import KafkaAdminClient

    _Topic = DescribeQuorumRequest.TopicData
    with Conn(broker.host, broker.port) as c:
        for version in (0, 1, 2):
            req = DescribeQuorumRequest(topics=[_Topic(topic_name="__cluster_metadata",
                                                       partitions=[_Topic.PartitionData(partition_index=0)])])
            before = int(time.time() * 1000)
            r = call(c, req, version)
            assert r.error_code == NONE
            ((t, (p,)),) = [(t.topic_name, t.partitions) for t in r.topics]
            assert (t, p.partition_index, p.error_code, p.leader_id, p.leader_epoch, p.high_watermark) == (
                "__cluster_metadata", 0, NONE, 1, 0, -1)
            (v,) = p.current_voters
            assert (v.replica_id, v.log_end_offset, list(p.observers)) == (1, -1, [])
            if version >= 1:
                assert before - 1000 <= v.last_fetch_timestamp == v.last_caught_up_timestamp <= before + 60_000
            if version >= 2:
                # Kafka's NO_DIRECTORY_ID, the zero uuid, which kafka-python reads as None.
                assert v.replica_directory_id is None
                ((node_id, listeners),) = [(n.node_id, [(l.name, l.host, l.port) for l in n.listeners])
                                           for n in r.nodes]
                assert (node_id, listeners) == (1, [("PLAINTEXT", broker.host, broker.port)])
            req = DescribeQuorumRequest(topics=[_Topic(topic_name="__cluster_metadata",
                                                       partitions=[_Topic.PartitionData(partition_index=1)])])
            r = call(c, req, version)
            assert [(t.topic_name, [(p.partition_index, p.error_code) for p in t.partitions]) for t in r.topics] == [
                ("__cluster_metadata", [(1, 3)])]
    ka = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        q = ka.describe_metadata_quorum()
    finally:
        ka.close()
    (p,) = q["topics"][0]["partitions"]
    assert (p["leader_id"], p["error"], [v["replica_id"] for v in p["current_voters"]]) == (1, None, [1])
