"""Shared helpers for the end-to-end suites: polling with deadlines, confluent-kafka
producers/consumers with the settings these tests need, and exact read-back."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def unique_topic(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_for(cond, timeout: float, what: str, interval: float = 0.05):
    """Polls `cond()` until it returns a truthy value; fails with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = cond()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


# --- confluent-kafka ----------------------------------------------------------------

def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def create_topic(bootstrap: str, topic: str, partitions: int, timeout: float = 30) -> None:
    a = admin(bootstrap)  # keep the client alive until its futures resolve
    fs = a.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)],
                         operation_timeout=timeout, request_timeout=timeout)
    assert fs[topic].result(timeout) is None


def producer(bootstrap: str, **conf) -> Producer:
    base = {"bootstrap.servers": bootstrap, "linger.ms": 5}
    base.update(conf)
    return Producer(base)


def assigned_consumer(bootstrap: str, **conf) -> Consumer:
    """A consumer for manual assignment: a group.id is set (the client requires one) but
    no offsets are ever committed or fetched from a coordinator."""
    base = {
        "bootstrap.servers": bootstrap,
        "group.id": "sluice-e2e-unused",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "error",
    }
    base.update(conf)
    return Consumer(base)


@dataclass(frozen=True)
class Rec:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple

    @staticmethod
    def of(m) -> "Rec":
        return Rec(m.partition(), m.offset(), m.key(), m.value(), tuple(m.headers() or ()))


def consume_exact(bootstrap: str, topic: str, counts: dict[int, int], timeout: float = 60, **conf) -> dict[int, list]:
    """Reads partitions `counts` keys from the beginning until each holds `counts[p]` records;
    returns {partition: [Rec, ...]} in offset order. Fails on an error, on a timeout and on
    any record beyond the expected count (the high watermark must equal the count), so call
    it once everything expected has been acknowledged."""
    c = assigned_consumer(bootstrap, **conf)
    try:
        # learn the leaders first, else librdkafka parks the offset lookup on a 500 ms timer
        c.list_topics(topic, timeout=10)
        # watermarks before fetching starts: behind a long-polling Fetch on the same
        # connection, these ListOffsets would wait for it (responses are in request order)
        for p, n in counts.items():
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)
            assert (lo, hi) == (0, n), f"{topic}[{p}] watermarks {(lo, hi)}, expected (0, {n})"
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in counts])
        got: dict[int, list] = {p: [] for p in counts}
        deadline = time.monotonic() + timeout
        while any(len(got[p]) < n for p, n in counts.items()):
            if time.monotonic() > deadline:
                have = {p: len(v) for p, v in got.items()}
                raise AssertionError(f"timed out reading {topic}: have {have}, want {counts}")
            # ask for exactly what is missing: consume() returns as soon as that many arrived
            missing = sum(n - len(got[p]) for p, n in counts.items())
            for m in c.consume(num_messages=min(missing, 100_000), timeout=0.5):
                if m.error():
                    raise AssertionError(f"consume error on {topic}: {m.error()}")
                got[m.partition()].append(Rec.of(m))
        for p, n in counts.items():
            assert len(got[p]) == n, f"{topic}[{p}]: read {len(got[p])} records, expected {n}"
        return got
    finally:
        c.close()


def produce_and_report(p: Producer, items, timeout: float = 60) -> list:
    """Produces (topic, key, value, headers, partition) tuples in order; returns the delivery
    reports in produce order as (err, partition, offset)."""
    reports: list = [None] * len(items)

    def cb_for(i):
        def cb(err, msg):
            reports[i] = (err, msg.partition(), msg.offset())
        return cb

    for i, (topic, key, value, headers, partition) in enumerate(items):
        kw = {"key": key, "value": value, "headers": headers, "on_delivery": cb_for(i)}
        if partition is not None:
            kw["partition"] = partition
        while True:
            try:
                p.produce(topic, **kw)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    remaining = p.flush(timeout)
    assert remaining == 0, f"{remaining} messages still undelivered after {timeout}s"
    assert all(r is not None for r in reports)
    return reports


def err_code(err) -> int | None:
    return None if err is None else err.code()


__all__ = [
    "KafkaError", "OFFSET_BEGINNING", "TopicPartition", "Rec", "admin", "assigned_consumer",
    "consume_exact", "create_topic", "err_code", "produce_and_report", "producer", "unique_topic",
    "wait_for",
]


def roundtrip(bootstrap: str, conf: dict, n: int = 200, prefix: str = "rt") -> None:
    """Produces n keyed records to a new topic over `conf` (a security setup, say) and
    reads them back exactly over it."""
    topic = unique_topic(prefix)
    p = producer(bootstrap, **conf)
    items = [(topic, f"k{i}".encode(), f"value-{i}".encode(), None, 0) for i in range(n)]
    reports = produce_and_report(p, items)
    assert [(e, off) for e, _, off in reports] == [(None, i) for i in range(n)]
    got = consume_exact(bootstrap, topic, {0: n}, **conf)[0]
    assert [(r.offset, r.key, r.value) for r in got] == [(i, f"k{i}".encode(), f"value-{i}".encode())
                                                         for i in range(n)]
