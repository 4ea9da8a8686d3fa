"""Transactions v2 (KIP-890 part 2): every transaction end bumps the producer epoch, and
partitions and a group's offsets join a transaction with the first Produce (v12) or
TxnOffsetCommit (v5), without AddPartitionsToTxn or AddOffsetsToTxn.

No client in this suite speaks it (librdkafka stops at EndTxn v1, kafka-python at v4,
kafkajs at v1), so kafka-python's generated request classes drive the protocol over a raw
connection, independent of the broker's own encoders. A confluent-kafka transactional
producer (the v1 protocol) runs against the same broker in the same test."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from kafka.protocol.admin import DescribeProducersRequest
from kafka.protocol.consumer import OffsetFetchRequest
from kafka.protocol.metadata import FindCoordinatorRequest
from kafka.protocol.producer import (
    EndTxnRequest,
    InitProducerIdRequest,
    ProduceRequest,
    TxnOffsetCommitRequest,
)

import wire
from e2e import create_topic, unique_topic

NONE = 0
INVALID_PRODUCER_EPOCH = 47
INVALID_TXN_STATE = 48
PRODUCER_FENCED = 90
# COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR
RETRIABLE = (14, 15, 16)


class RawTv2Producer:
    """A transactional producer speaking transactions v2 over one raw connection."""

    def __init__(self, conn: wire.Conn, transactional_id: str):
        self.conn = conn
        self.id = transactional_id
        self.correlation = 0
        self.producer_id = -1
        self.epoch = -1

    def call(self, request, version: int, conn: wire.Conn | None = None):
        self.correlation += 1
        return wire.call(conn or self.conn, request, version, self.correlation)

    def find_coordinator(self, key: str, key_type: int, timeout: float = 30) -> int:
        """The coordinator's node id, asked until it is available (a cluster creates the
        internal topic on the first ask)."""
        deadline = time.monotonic() + timeout
        while True:
            (c,) = self.call(FindCoordinatorRequest(key_type=key_type, coordinator_keys=[key]), 4).coordinators
            if c.error_code == NONE:
                return c.node_id
            assert c.error_code in RETRIABLE and time.monotonic() < deadline, c
            time.sleep(0.1)

    def init(self, timeout: float = 30) -> None:
        """InitProducerId v5, retried while the coordinator loads its partition."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.call(InitProducerIdRequest(transactional_id=self.id, transaction_timeout_ms=60000,
                                                producer_id=-1, producer_epoch=-1), 5)
            if r.error_code == NONE:
                break
            assert r.error_code in RETRIABLE and time.monotonic() < deadline, r
            time.sleep(0.1)
        self.producer_id, self.epoch = r.producer_id, r.producer_epoch

    def produce(self, topic: str, partition: int, values: list[bytes], sequence: int,
                epoch: int | None = None, conn: wire.Conn | None = None) -> tuple[int, int]:
        """One transactional batch with Produce v12; -> (error code, base offset)."""
        batch = wire.record_batch([(None, v) for v in values], int(time.time() * 1000),
                                  producer_id=self.producer_id,
                                  producer_epoch=self.epoch if epoch is None else epoch,
                                  base_sequence=sequence, transactional=True)
        data = ProduceRequest.TopicProduceData(
            name=topic, partition_data=[ProduceRequest.TopicProduceData.PartitionProduceData(index=partition,
                                                                                             records=batch)])
        r = self.call(ProduceRequest(transactional_id=self.id, acks=-1, timeout_ms=10000, topic_data=[data]), 12,
                      conn)
        (t,) = r.responses
        (p,) = t.partition_responses
        return p.error_code, p.base_offset

    def commit_offsets(self, group: str, topic: str, offsets: dict[int, int],
                       conn: wire.Conn | None = None) -> list[int]:
        """TxnOffsetCommit v5 with no AddOffsetsToTxn before it; -> the error codes."""
        partitions = [TxnOffsetCommitRequest.TxnOffsetCommitRequestTopic.TxnOffsetCommitRequestPartition(
            partition_index=p, committed_offset=o, committed_leader_epoch=-1, committed_metadata="tv2")
            for p, o in offsets.items()]
        r = self.call(TxnOffsetCommitRequest(
            transactional_id=self.id, group_id=group, producer_id=self.producer_id, producer_epoch=self.epoch,
            generation_id=-1, member_id="", group_instance_id=None,
            topics=[TxnOffsetCommitRequest.TxnOffsetCommitRequestTopic(name=topic, partitions=partitions)]), 5, conn)
        return [p.error_code for t in r.topics for p in t.partitions]

    def end(self, commit: bool, epoch: int | None = None) -> tuple[int, int, int]:
        """EndTxn v5; -> (error code, producer id, producer epoch) as answered."""
        r = self.call(EndTxnRequest(transactional_id=self.id, producer_id=self.producer_id,
                                    producer_epoch=self.epoch if epoch is None else epoch,
                                    committed=commit), 5)
        return r.error_code, r.producer_id, r.producer_epoch

    def partition_epoch(self, topic: str, partition: int, conn: wire.Conn | None = None) -> int:
        """The producer epoch partition `partition` has on record for this producer."""
        request = DescribeProducersRequest(topics=[DescribeProducersRequest.TopicRequest(
            name=topic, partition_indexes=[partition])])
        (t,) = self.call(request, 0, conn).topics
        (p,) = t.partitions
        assert p.error_code == NONE, p
        [epoch] = [a.producer_epoch for a in p.active_producers if a.producer_id == self.producer_id]
        return epoch


def read_all(bootstrap: str, topic: str, partitions: int, isolation: str) -> dict[int, list[tuple[int, bytes]]]:
    """Every record of the topic as a consumer of `isolation` sees it, to the end."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-{uuid.uuid4().hex[:8]}",
                  "enable.auto.commit": False, "isolation.level": isolation})
    try:
        ends = {}
        for p in range(partitions):
            # read_committed: the last stable offset, which equals the high watermark once
            # no transaction is open.
            ends[p] = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1]
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        got: dict[int, list[tuple[int, bytes]]] = {p: [] for p in range(partitions)}
        position = {p: 0 for p in range(partitions)}
        deadline = time.monotonic() + 30
        while any(position[p] < ends[p] for p in range(partitions)):
            assert time.monotonic() < deadline, f"reading {topic}: at {position}, ends {ends}"
            for m in c.consume(num_messages=1000, timeout=0.2):
                assert not m.error(), m.error()
                got[m.partition()].append((m.offset(), m.value()))
            for p in range(partitions):
                (tp,) = c.position([TopicPartition(topic, p)])
                position[p] = max(tp.offset, 0)
        return got
    finally:
        c.close()


def committed(conn: wire.Conn, group: str, topic: str, partitions: int) -> dict[int, tuple[int, str]]:
    """The group's committed offsets and metadata, by OffsetFetch v7 (stable offsets)."""
    topics = [OffsetFetchRequest.OffsetFetchRequestTopic(name=topic, partition_indexes=list(range(partitions)))]
    r = wire.call(conn, OffsetFetchRequest(group_id=group, topics=topics, require_stable=True), 7, 900)
    assert r.error_code == NONE, r
    return {p.partition_index: (p.committed_offset, p.metadata) for t in r.topics for p in t.partitions}


def test_v2_commit_and_abort_bump_the_epoch_and_add_partitions_implicitly(broker):
    topic = unique_topic("tv2")
    create_topic(broker.bootstrap, topic, 2)
    group = f"tv2-group-{uuid.uuid4().hex[:8]}"
    with wire.Conn(broker.host, broker.port) as conn:
        p = RawTv2Producer(conn, f"tv2-{uuid.uuid4().hex[:8]}")
        p.find_coordinator(p.id, 1)
        p.init()
        pid, e0 = p.producer_id, p.epoch

        # First transaction: two partitions and a group's offsets, none added beforehand.
        assert p.produce(topic, 0, [b"c-0", b"c-1"], sequence=0) == (NONE, 0)
        assert p.produce(topic, 1, [b"c-2"], sequence=0) == (NONE, 0)
        assert p.produce(topic, 0, [b"c-3"], sequence=2) == (NONE, 2)
        p.find_coordinator(group, 0)
        assert p.commit_offsets(group, topic, {0: 3, 1: 1}) == [NONE, NONE]
        assert p.end(commit=True) == (NONE, pid, e0 + 1)
        # The markers carried the bumped epoch: each partition has it on record now.
        assert [p.partition_epoch(topic, i) for i in (0, 1)] == [e0 + 1, e0 + 1]
        # A retried EndTxn with the old epoch gets the same answer; a straggling batch of
        # the ended transaction is refused instead of opening a hanging one.
        assert p.end(commit=True, epoch=e0) == (NONE, pid, e0 + 1)
        assert p.produce(topic, 1, [b"late"], sequence=1, epoch=e0)[0] == INVALID_PRODUCER_EPOCH
        p.epoch = e0 + 1

        # Second transaction, aborted: it starts with the first Produce at the new epoch.
        assert p.produce(topic, 1, [b"a-0", b"a-1"], sequence=0) == (NONE, 2)
        assert p.end(commit=False) == (NONE, pid, e0 + 2)
        assert p.end(commit=False, epoch=e0 + 1) == (NONE, pid, e0 + 2)
        p.epoch = e0 + 2
        # Committing what is not open is refused; an abort with nothing added bumps again.
        assert p.end(commit=True)[0] == INVALID_TXN_STATE
        assert p.end(commit=False) == (NONE, pid, e0 + 3)
        # An epoch from the future is fenced.
        assert p.end(commit=False, epoch=e0 + 9)[0] == PRODUCER_FENCED

    assert read_all(broker.bootstrap, topic, 2, "read_committed") == {
        0: [(0, b"c-0"), (1, b"c-1"), (2, b"c-3")],
        1: [(0, b"c-2")],
    }
    # Offsets 1 and 4 of partition 1 hold the markers.
    assert read_all(broker.bootstrap, topic, 2, "read_uncommitted")[1] == [(0, b"c-2"), (2, b"a-0"), (3, b"a-1")]
    with wire.Conn(broker.host, broker.port) as conn:
        assert committed(conn, group, topic, 2) == {0: (3, "tv2"), 1: (1, "tv2")}


def test_v1_client_works_beside_v2(broker):
    """confluent-kafka (transactions v1: AddPartitionsToTxn, EndTxn v1, an epoch for the
    producer's life) commits and aborts on the broker a v2 producer uses at the same time."""
    from confluent_kafka import Producer

    topic = unique_topic("tv1")
    create_topic(broker.bootstrap, topic, 1)
    with wire.Conn(broker.host, broker.port) as conn:
        v2 = RawTv2Producer(conn, f"tv2-{uuid.uuid4().hex[:8]}")
        v2.find_coordinator(v2.id, 1)
        v2.init()
        assert v2.produce(topic, 0, [b"v2-open"], sequence=0) == (NONE, 0)

        v1 = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": f"tv1-{uuid.uuid4().hex[:8]}"})
        v1.init_transactions(30)
        v1.begin_transaction()
        v1.produce(topic, b"v1-committed", partition=0)
        v1.commit_transaction(30)
        v1.begin_transaction()
        v1.produce(topic, b"v1-aborted", partition=0)
        v1.abort_transaction(30)
        v1.begin_transaction()
        v1.produce(topic, b"v1-second", partition=0)
        v1.commit_transaction(30)

        assert v2.end(commit=True) == (NONE, v2.producer_id, v2.epoch + 1)

    values = [v for _, v in read_all(broker.bootstrap, topic, 1, "read_committed")[0]]
    assert values == [b"v2-open", b"v1-committed", b"v1-second"]
