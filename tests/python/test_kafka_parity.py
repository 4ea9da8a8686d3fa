"""Behaviours of Apache Kafka 4.2 that other projects' client suites depend on, by raw frames
(kafka-python's generated message classes over a socket): fetch session ids and epochs as
Kafka's FetchManager.newContext treats them, the session cache's eviction, and the reset
franz-go sends after every rebalance."""

from __future__ import annotations

import struct
import uuid

import pytest
from confluent_kafka.admin import ConfigResource
from kafka.protocol.consumer import FetchRequest
from kafka.protocol.metadata import MetadataRequest

from e2e import admin, create_topic, produce_and_report, producer, unique_topic
from wire import Conn, call

NONE = 0
FETCH_SESSION_ID_NOT_FOUND = 70
INVALID_FETCH_SESSION_EPOCH = 71
FETCH_SESSION_TOPIC_ID_ERROR = 106


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
