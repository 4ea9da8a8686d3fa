"""confluent-kafka (librdkafka) Producer, Consumer and AdminClient against sluice."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import NewTopic

from e2e import (
    admin,
    consume_exact,
    create_topic,
    err_code,
    produce_and_report,
    producer,
    unique_topic,
    wait_for,
)

N = 3000
PARTITIONS = 3


def headers_for(i: int):
    h = [("seq", str(i).encode()), ("dup", b"first"), ("dup", b"second")]
    if i % 7 == 0:
        h.append(("nullable", None))
    if i % 11 == 0:
        h.append(("empty", b""))
    return h


def message(i: int):
    key = f"key-{i:05d}".encode()
    value = (f"value-{i:05d}-" + "x" * (i % 97)).encode()
    return key, value, headers_for(i)


@pytest.mark.parametrize("idempotent", [False, True], ids=["default", "idempotent"])
def test_produce_consume_3_partitions(broker, idempotent):
    topic = unique_topic("cfk")
    a = admin(broker.bootstrap)
    fs = a.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)], operation_timeout=30)
    assert fs[topic].result(30) is None

    # again: TOPIC_ALREADY_EXISTS
    fs = a.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)], operation_timeout=30)
    with pytest.raises(KafkaException) as ei:
        fs[topic].result(30)
    assert ei.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS, ei.value

    md = a.list_topics(timeout=30)
    assert topic in md.topics
    assert md.topics[topic].error is None
    assert sorted(md.topics[topic].partitions) == list(range(PARTITIONS))
    broker_ids = list(md.brokers)
    assert len(broker_ids) == 1 and str(md.brokers[broker_ids[0]]) == f"{broker.bootstrap}/{broker_ids[0]}"
    for pm in md.topics[topic].partitions.values():
        assert pm.leader == broker_ids[0] and pm.replicas == broker_ids and pm.isrs == broker_ids

    conf = {"enable.idempotence": True} if idempotent else {}
    p = producer(broker.bootstrap, **conf)
    msgs = [message(i) for i in range(N)]
    reports = produce_and_report(p, [(topic, k, v, h, None) for k, v, h in msgs])

    # delivery reports: no errors, every partition used, offsets 0.. per partition in produce order
    assert [err_code(e) for e, _, _ in reports] == [None] * N
    per_part: dict[int, list[int]] = {q: [] for q in range(PARTITIONS)}
    for i, (_, part, off) in enumerate(reports):
        per_part[part].append(i)
        assert off == len(per_part[part]) - 1, f"message {i}: partition {part} offset {off}"
    assert all(per_part[q] for q in range(PARTITIONS)), {q: len(v) for q, v in per_part.items()}
    # same key -> same partition (the partitioner is deterministic), across a second round
    again = produce_and_report(p, [(topic, msgs[i][0], b"again", None, None) for i in range(0, N, 100)])
    for j, i in enumerate(range(0, N, 100)):
        assert again[j][0] is None and again[j][1] == reports[i][1]
        per_part[again[j][1]].append(("again", i))

    counts = {q: len(v) for q, v in per_part.items()}
    got = consume_exact(broker.bootstrap, topic, counts)
    for q in range(PARTITIONS):
        for off, (rec, ref) in enumerate(zip(got[q], per_part[q])):
            assert rec.offset == off
            if isinstance(ref, tuple):
                assert (rec.key, rec.value, rec.headers) == (msgs[ref[1]][0], b"again", ()), rec
            else:
                k, v, h = msgs[ref]
                assert (rec.key, rec.value, rec.headers) == (k, v, tuple(h)), f"partition {q} offset {off}"

    # delete the topic: gone from metadata
    fs = a.delete_topics([topic], operation_timeout=30)
    assert fs[topic].result(30) is None
    wait_for(lambda: topic not in a.list_topics(timeout=10).topics, 15, f"{topic} to leave metadata")


def test_delete_unknown_topic_errors(broker):
    a = admin(broker.bootstrap)
    topic = unique_topic("cfk-nope")
    fs = a.delete_topics([topic], operation_timeout=30)
    with pytest.raises(KafkaException) as ei:
        fs[topic].result(30)
    assert ei.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_unknown_topic_without_auto_create(broker_factory):
    b = broker_factory(overrides={"auto.create.topics.enable": "false"})
    topic = unique_topic("cfk-missing")
    p = producer(b.bootstrap, **{"topic.metadata.propagation.max.ms": 1000, "message.timeout.ms": 30000})
    reports = []
    p.produce(topic, value=b"v", on_delivery=lambda err, msg: reports.append(err))
    assert p.flush(40) == 0
    assert len(reports) == 1
    assert err_code(reports[0]) == KafkaError.UNKNOWN_TOPIC_OR_PART, reports[0]
    # and the topic was not created by the attempt
    assert topic not in admin(b.bootstrap).list_topics(timeout=10).topics


def test_auto_create_on_metadata(broker_factory):
    b = broker_factory(overrides={"num.partitions": 2})
    topic = unique_topic("cfk-auto")
    p = producer(b.bootstrap)
    reports = produce_and_report(p, [(topic, None, f"v{i}".encode(), None, i % 2) for i in range(10)])
    assert [(err_code(e), part, off) for e, part, off in reports] == [(None, i % 2, i // 2) for i in range(10)]
    md = admin(b.bootstrap).list_topics(timeout=10)
    assert sorted(md.topics[topic].partitions) == [0, 1]


def test_offsets_for_times_and_watermarks(broker):
    topic = unique_topic("cfk-times")
    create_topic(broker.bootstrap, topic, 1)
    base = (int(time.time()) - 3600) * 1000  # an hour ago, CreateTime chosen by the producer
    n = 50
    p = producer(broker.bootstrap)
    reports = []
    for i in range(n):
        p.produce(topic, value=f"t{i}".encode(), partition=0, timestamp=base + 10 * i,
                  on_delivery=lambda err, msg: reports.append((err, msg.offset())))
    assert p.flush(30) == 0
    assert reports == [(None, i) for i in range(n)]

    from e2e import assigned_consumer
    c = assigned_consumer(broker.bootstrap)
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)
        assert (lo, hi) == (0, n)

        def lookup(ts):
            res = c.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=10)
            assert res[0].error is None, res[0].error
            return res[0].offset

        assert lookup(base - 1000) == 0          # before the first record
        assert lookup(base) == 0                 # exactly the first
        assert lookup(base + 250) == 25          # exactly record 25
        assert lookup(base + 245) == 25          # between 24 and 25 -> the first at or after
        assert lookup(base + 10 * (n - 1)) == n - 1
        assert lookup(base + 10 * n) == -1       # after the last: no such offset (-1)

        # a second batch moves the high watermark exactly
        p.produce(topic, value=b"late", partition=0)
        assert p.flush(30) == 0
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False) == (0, n + 1)
    finally:
        c.close()


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compressed_produce_consume(broker, codec):
    topic = unique_topic(f"cfk-{codec}")
    p = producer(broker.bootstrap, **{"compression.type": codec, "linger.ms": 50})
    msgs = [message(i) for i in range(2000)]
    reports = produce_and_report(p, [(topic, k, v, h, 0) for k, v, h in msgs])
    assert [(err_code(e), part, off) for e, part, off in reports] == [(None, 0, i) for i in range(len(msgs))]
    got = consume_exact(broker.bootstrap, topic, {0: len(msgs)})
    assert [(r.offset, r.key, r.value, r.headers) for r in got[0]] == \
        [(i, k, v, tuple(h)) for i, (k, v, h) in enumerate(msgs)]


def test_acks_0_and_acks_1(broker):
    topic = unique_topic("cfk-acks")
    create_topic(broker.bootstrap, topic, 1)
    for acks, start in ((0, 0), (1, 100)):
        p = producer(broker.bootstrap, **{"acks": acks})
        reports = produce_and_report(p, [(topic, None, f"acks{acks}-{i}".encode(), None, 0) for i in range(100)])
        assert [err_code(e) for e, _, _ in reports] == [None] * 100
        if acks == 1:
            assert [o for _, _, o in reports] == list(range(start, start + 100))
        # with acks=0 there is no response, so no offset; the data must still be there, in order
        # (the acks=1 round after it can only start at 100 if all 100 were appended)
    got = consume_exact(broker.bootstrap, topic, {0: 200})
    assert [r.value for r in got[0]] == [f"acks0-{i}".encode() for i in range(100)] + \
        [f"acks1-{i}".encode() for i in range(100)]


def test_message_larger_than_message_max_bytes_is_rejected(broker_factory):
    b = broker_factory(overrides={"message.max.bytes": 10000})
    topic = unique_topic("cfk-big")
    create_topic(b.bootstrap, topic, 1)
    p = producer(b.bootstrap, **{"linger.ms": 0})
    # one message per batch: the broker's limit applies to a whole batch
    reports = [produce_and_report(p, [(topic, None, v, None, 0)])[0] for v in (b"s" * 100, b"B" * 20000, b"t" * 100)]
    assert [(err_code(e), o if e is None else None) for e, _, o in reports] == \
        [(None, 0), (KafkaError.MSG_SIZE_TOO_LARGE, None), (None, 1)]
    got = consume_exact(b.bootstrap, topic, {0: 2})
    assert [r.value for r in got[0]] == [b"s" * 100, b"t" * 100]


def test_describe_cluster(broker):
    a = admin(broker.bootstrap)
    desc = a.describe_cluster(request_timeout=30).result(30)
    assert desc.cluster_id
    assert [(n.host, n.port) for n in desc.nodes] == [(broker.host, broker.port)]
    assert desc.controller is not None and desc.controller.id == desc.nodes[0].id
    md = a.list_topics(timeout=10)
    assert md.cluster_id == desc.cluster_id


def test_fetch_from_the_middle_of_a_compressed_batch(broker):
    topic = unique_topic("cfk-mid")
    p = producer(broker.bootstrap, **{"compression.type": "zstd", "linger.ms": 100})
    reports = produce_and_report(p, [(topic, None, b"m%04d" % i, None, 0) for i in range(1000)])
    assert [o for _, _, o in reports] == list(range(1000))
    from e2e import assigned_consumer
    c = assigned_consumer(broker.bootstrap)
    try:
        c.assign([TopicPartition(topic, 0, 777)])
        got = []
        deadline = time.monotonic() + 30
        while len(got) < 223 and time.monotonic() < deadline:
            for m in c.consume(223 - len(got), 0.5):
                assert m.error() is None, m.error()
                got.append((m.offset(), m.value()))
        assert got == [(i, b"m%04d" % i) for i in range(777, 1000)]
    finally:
        c.close()


def test_fetch_beyond_log_end_is_out_of_range(broker):
    topic = unique_topic("cfk-oor")
    p = producer(broker.bootstrap)
    produce_and_report(p, [(topic, None, b"a", None, 0), (topic, None, b"b", None, 0)])
    from e2e import assigned_consumer
    c = assigned_consumer(broker.bootstrap, **{"auto.offset.reset": "error"})
    try:
        c.assign([TopicPartition(topic, 0, 50)])
        deadline = time.monotonic() + 30
        err = None
        while err is None and time.monotonic() < deadline:
            m = c.poll(0.5)
            assert m is None or m.error() is not None, f"unexpected message at {m.offset()}"
            if m is not None:
                err = m.error()
        assert err is not None, "no error for a fetch at offset 50 of a 2-record log"
        # librdkafka reports the broker's OFFSET_OUT_OF_RANGE as a failed auto offset reset
        assert err.code() == KafkaError._AUTO_OFFSET_RESET, err
        assert "Broker: Offset out of range" in err.str(), err.str()
    finally:
        c.close()
