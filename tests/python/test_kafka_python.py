"""kafka-python (a pure-Python client with its own protocol code) against sluice."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError

from e2e import unique_topic, wait_for

N = 600
PARTITIONS = 3


def admin(bootstrap):
    return KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)


def read_back(bootstrap, topic, counts: dict[int, int], timeout=60):
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                      auto_offset_reset="none", request_timeout_ms=30000)
    try:
        tps = [TopicPartition(topic, p) for p in counts]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        got = {p: [] for p in counts}
        deadline = time.monotonic() + timeout
        while any(len(got[p]) < n for p, n in counts.items()):
            assert time.monotonic() < deadline, f"timed out: have {({p: len(v) for p, v in got.items()})}, want {counts}"
            for tp, recs in c.poll(timeout_ms=500).items():
                got[tp.partition].extend(recs)
        ends = c.end_offsets(tps)
        assert {tp.partition: off for tp, off in ends.items()} == counts
        return got
    finally:
        c.close()


@pytest.mark.parametrize("producer_conf", [{}, {"enable_idempotence": False}, {"enable_idempotence": True}],
                         ids=["default", "plain", "idempotent"])
def test_produce_consume_admin(broker, producer_conf):
    """kafka-python's default producer is idempotent from 3.0 on; all three are run."""
    topic = unique_topic("kpy")
    a = admin(broker.bootstrap)
    try:
        res = a.create_topics({topic: {"num_partitions": PARTITIONS, "replication_factor": 1}})
        assert [(t["name"], t["error_code"]) for t in res["topics"]] == [(topic, 0)]
        with pytest.raises(TopicAlreadyExistsError):
            a.create_topics({topic: {"num_partitions": PARTITIONS, "replication_factor": 1}})
        assert topic in a.list_topics()

        p = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5, **producer_conf)
        try:
            futures = []
            for i in range(N):
                key = f"k{i:04d}".encode()
                value = f"kafka-python value {i}".encode() * (1 + i % 5)
                headers = [("i", str(i).encode()), ("h", b"x")]
                futures.append((i, key, value, headers, p.send(topic, key=key, value=value, headers=headers,
                                                             partition=i % PARTITIONS)))
            p.flush(timeout=60)
            for i, key, value, headers, f in futures:
                md = f.get(timeout=60)
                assert (md.topic, md.partition, md.offset) == (topic, i % PARTITIONS, i // PARTITIONS)
        finally:
            p.close(timeout=10)

        counts = {q: len(range(q, N, PARTITIONS)) for q in range(PARTITIONS)}
        got = read_back(broker.bootstrap, topic, counts)
        for q in range(PARTITIONS):
            want = [(i // PARTITIONS, key, value, headers) for i, key, value, headers, _ in futures
                    if i % PARTITIONS == q]
            assert [(r.offset, r.key, r.value, list(r.headers)) for r in got[q]] == want

        res = a.delete_topics([topic])
        assert [(t["name"], t["error_code"]) for t in res["topics"]] == [(topic, 0)]
        wait_for(lambda: topic not in a.list_topics(), 15, f"{topic} to leave metadata")
        with pytest.raises(UnknownTopicOrPartitionError):
            a.delete_topics([topic])
    finally:
        a.close()


def test_gzip_and_auto_create(broker):
    topic = unique_topic("kpy-gzip")
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, compression_type="gzip", linger_ms=20)
    try:
        fs = [p.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode() * 20) for i in range(500)]
        p.flush(timeout=60)
        assert [(f.get(timeout=30).partition, f.get(timeout=30).offset) for f in fs] == [(0, i) for i in range(500)]
    finally:
        p.close(timeout=10)
    got = read_back(broker.bootstrap, topic, {0: 500})
    assert [(r.offset, r.key, r.value) for r in got[0]] == \
        [(i, f"k{i}".encode(), f"v{i}".encode() * 20) for i in range(500)]
