"""Restarts and crashes: what was acknowledged survives, exactly once where idempotence
promises it, and offsets carry on where they left off."""

from __future__ import annotations

import struct
import threading
import time
from collections import Counter

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import NewTopic

import wire
from e2e import (
    admin,
    assigned_consumer,
    consume_exact,
    create_topic,
    err_code,
    produce_and_report,
    producer,
    unique_topic,
    wait_for,
)


def watermarks(bootstrap, topic, partitions):
    c = assigned_consumer(bootstrap)
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)
                for p in range(partitions)}
    finally:
        c.close()


@pytest.mark.parametrize("segment_bytes", [None, 16384], ids=["default-segments", "16KiB-segments"])
def test_sigterm_restart_keeps_everything(broker_factory, segment_bytes):
    overrides = {"log.segment.bytes": segment_bytes} if segment_bytes else {}
    b = broker_factory(overrides=overrides)
    multi, single = unique_topic("dur-multi"), unique_topic("dur-single")
    create_topic(b.bootstrap, multi, 3)

    # small batches, so that small segments roll many times
    plain = producer(b.bootstrap, **{"batch.size": 8192})
    packed = producer(b.bootstrap, **{"compression.type": "lz4", "linger.ms": 20, "batch.size": 8192})
    r1 = produce_and_report(plain, [(multi, f"k{i}".encode(), f"multi-{i}".encode() * 8, [("i", str(i).encode())],
                                     i % 3) for i in range(3000)])
    r2 = produce_and_report(packed, [(single, f"k{i}".encode(), f"single-{i}".encode() * 8, None, None)
                                     for i in range(3000)])
    assert all(e is None for e, _, _ in r1 + r2)
    before_marks = {multi: watermarks(b.bootstrap, multi, 3), single: watermarks(b.bootstrap, single, 1)}
    assert before_marks == {multi: {0: (0, 1000), 1: (0, 1000), 2: (0, 1000)}, single: {0: (0, 3000)}}
    before = {multi: consume_exact(b.bootstrap, multi, {0: 1000, 1: 1000, 2: 1000}),
              single: consume_exact(b.bootstrap, single, {0: 3000})}

    if segment_bytes:
        segments = sorted(f.name for f in b.log_dir.rglob("*.log") if f.parent.name.startswith(multi))
        assert len(segments) > 6, f"expected rolled segments, found {segments}"
    code = b.stop()
    assert code == 0, f"broker exited {code} on SIGTERM"
    b.start()

    after_marks = {multi: watermarks(b.bootstrap, multi, 3), single: watermarks(b.bootstrap, single, 1)}
    assert after_marks == before_marks
    after = {multi: consume_exact(b.bootstrap, multi, {0: 1000, 1: 1000, 2: 1000}),
             single: consume_exact(b.bootstrap, single, {0: 3000})}
    assert after == before

    # appends continue at the old log end offsets
    r3 = produce_and_report(producer(b.bootstrap), [(multi, None, b"next", None, q) for q in range(3)] +
                            [(single, None, b"next", None, 0)])
    assert [(err_code(e), p, o) for e, p, o in r3] == [(None, 0, 1000), (None, 1, 1000), (None, 2, 1000),
                                                       (None, 0, 3000)]


class StreamProducer(threading.Thread):
    """Produces values 00000000, 00000001, ... to partition 0 at a bounded rate until told
    to stop; records every acknowledged value and every failed one."""

    RATE_CHUNK = 50        # messages per pacing step
    PACE = 0.01            # seconds per pacing step: at most 5,000 messages/s
    MAX = 400_000

    def __init__(self, bootstrap, topic, idempotent):
        super().__init__(daemon=True)
        self.topic = topic
        self.p = producer(bootstrap, **{
            "acks": "all",
            "enable.idempotence": idempotent,
            "linger.ms": 2,
            "message.timeout.ms": 120_000,
            "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 500,
        })
        self.acked: list[bytes] = []
        self.failed: list[tuple[bytes, object]] = []
        self.sent = 0
        self.remaining = None
        self.halt = threading.Event()
        self.error: BaseException | None = None

    def _cb(self, err, msg):
        if err is None:
            self.acked.append(msg.value())
        else:
            self.failed.append((msg.value(), err))

    def run(self):
        try:
            i = 0
            while not self.halt.is_set() and i < self.MAX:
                try:
                    self.p.produce(self.topic, value=b"%08d" % i, partition=0, on_delivery=self._cb)
                except BufferError:
                    self.p.poll(0.05)
                    continue
                i += 1
                self.sent = i
                self.p.poll(0)
                if i % self.RATE_CHUNK == 0:
                    time.sleep(self.PACE)  # pacing the load, not waiting for a condition
            self.remaining = self.p.flush(150)
        except BaseException as e:  # surfaced by finish()
            self.error = e

    def finish(self, timeout=180):
        self.halt.set()
        self.join(timeout)
        assert not self.is_alive(), "producer thread did not finish"
        if self.error:
            raise self.error
        assert self.remaining == 0, f"{self.remaining} messages undelivered at flush"


def read_all_values(bootstrap, topic) -> list[bytes]:
    marks = watermarks(bootstrap, topic, 1)
    lo, hi = marks[0]
    assert lo == 0
    return [r.value for r in consume_exact(bootstrap, topic, {0: hi}, timeout=120)[0]]


@pytest.mark.parametrize("idempotent", [True, False], ids=["idempotent", "plain"])
def test_kill9_keeps_acknowledged_acks_all(broker_factory, idempotent):
    b = broker_factory(overrides={"log.flush.interval.messages": 1})
    topic = unique_topic("dur-kill")
    create_topic(b.bootstrap, topic, 1)
    prod = StreamProducer(b.bootstrap, topic, idempotent)
    prod.start()
    try:
        wait_for(lambda: len(prod.acked) >= 3000 or prod.error, 60, "3000 acknowledged messages")
        b.kill()
        acked_at_kill = len(prod.acked)
        b.start()
        wait_for(lambda: len(prod.acked) >= acked_at_kill + 3000 or prod.error, 90,
                 "3000 more acknowledged messages after the restart")
    finally:
        prod.finish()

    assert prod.failed == [], f"{len(prod.failed)} failed deliveries, first: {prod.failed[:3]}"
    values = read_all_values(b.bootstrap, topic)
    counts = Counter(values)
    missing = [v for v in prod.acked if counts[v] == 0]
    assert missing == [], f"{len(missing)} acknowledged messages lost, first: {missing[:5]}"
    unknown = set(counts) - {b"%08d" % i for i in range(prod.sent)}
    assert unknown == set()
    if idempotent:
        dups = sorted(v for v, n in counts.items() if n > 1)
        assert dups == [], f"{len(dups)} duplicated values, first: {dups[:5]}"
        assert values == sorted(values), "values out of order"
    # everything was acknowledged in the end (no failures), so nothing sent is missing
    assert set(counts) == {b"%08d" % i for i in range(prod.sent)}


@pytest.mark.parametrize("how", ["kill", "sigterm"])
def test_idempotent_producer_across_restarts(broker_factory, how):
    b = broker_factory()
    topic = unique_topic(f"dur-idem-{how}")
    create_topic(b.bootstrap, topic, 1)
    prod = StreamProducer(b.bootstrap, topic, idempotent=True)
    prod.start()
    try:
        target = 2000
        for _ in range(2):
            wait_for(lambda: len(prod.acked) >= target or prod.error, 90, f"{target} acknowledged messages")
            if how == "kill":
                b.kill()
            else:
                assert b.stop() == 0
            b.start()
            target = len(prod.acked) + 2000
        wait_for(lambda: len(prod.acked) >= target or prod.error, 90, f"{target} acknowledged messages")
    finally:
        prod.finish()

    assert prod.failed == [], f"{len(prod.failed)} failed deliveries, first: {prod.failed[:3]}"
    expected = [b"%08d" % i for i in range(prod.sent)]
    assert sorted(prod.acked) == expected
    values = read_all_values(b.bootstrap, topic)
    if values != expected:
        counts = Counter(values)
        dups = [v for v, n in counts.items() if n > 1]
        gaps = [v for v in expected if v not in counts]
        pytest.fail(f"read {len(values)} values, sent {len(expected)}: {len(dups)} duplicates (first {dups[:5]}), "
                    f"{len(gaps)} missing (first {gaps[:5]})")


def test_pipelined_produces_waiting_for_fsyncs_are_answered_in_order(broker_factory):
    """flush.messages=1: six acks=all Produce requests and an ApiVersions sent back to back
    on one connection (raw frames, as a pipelining client sends them) are answered in the
    order sent, with offsets 0..5; an acks=0 Produce among them gets no answer, as ever."""
    b = broker_factory()
    topic = unique_topic("pipelined")
    a = admin(b.bootstrap)
    fs = a.create_topics([NewTopic(topic, 1, 1, config={"flush.messages": "1"})])
    fs[topic].result(timeout=30)
    requests = []
    for i in range(6):
        batch = wire.record_batch([(None, b"v%d" % i)], 1_000 + i)
        acks = 0 if i == 3 else -1
        requests.append(wire.produce_request(7, 100 + i, topic, 0, batch, acks=acks))
    requests.append(wire.api_versions_request(0, 200))
    with wire.Conn(b.host, b.port) as c:
        c.send(b"".join(wire.frame(r) for r in requests))
        answers = [c.recv_frame() for _ in range(6)]
    produced = [wire.parse_produce_response(7, p) for p in answers[:5]]
    assert [corr for corr, _ in produced] == [100, 101, 102, 104, 105]
    assert [parts[0][2:] for _, parts in produced] == [(0, 0), (0, 1), (0, 2), (0, 4), (0, 5)]
    assert struct.unpack(">i", answers[5][:4])[0] == 200
    values = [r.value for r in consume_exact(b.bootstrap, topic, {0: 6})[0]]
    assert values == [b"v%d" % i for i in range(6)]
