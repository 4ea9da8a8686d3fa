"""Producer id expiry (`producer.id.expiration.ms`), with raw InitProducerId and Produce
frames: 10,000 short-lived idempotent producers are counted by the sluice_producer_ids gauge
(Kafka's ProducerIdCount), keep duplicate detection across a restart while live, and are
removed from memory and from the index once idle for the expiration, measured from their
last batch's timestamp; an expired producer that starts again at sequence 0 is appended,
not answered as a duplicate; rounds of 10,000 more do not grow the broker's memory."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from conftest import free_port
from e2e import create_topic, unique_topic, wait_for
from wire import (Conn, frame, init_producer_id_request, parse_init_producer_id_response,
                  parse_produce_response, produce_request_to, record_batch)

PRODUCERS = 10_000
PARTITIONS = 100
PRODUCE_VERSION = 8


def now_ms() -> int:
    return int(time.time() * 1000)


def gauge(base: str, name: str) -> float:
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as r:
        text = r.read().decode()
    values = [s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name]
    assert len(values) == 1, f"{name}: {values}"
    return values[0]


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def init_producer_ids(conn: Conn, n: int) -> list[int]:
    """`n` idempotent producer ids, asked for 500 requests at a time on one connection."""
    pids: list[int] = []
    while len(pids) < n:
        chunk = min(500, n - len(pids))
        conn.send(b"".join(frame(init_producer_id_request(len(pids) + i)) for i in range(chunk)))
        for _ in range(chunk):
            corr, err, pid, epoch = parse_init_producer_id_response(conn.recv_frame())
            assert (corr, err, epoch) == (len(pids), 0, 0)
            pids.append(pid)
    assert len(set(pids)) == n
    return pids


def produce(conn: Conn, topic: str, batches: dict[int, bytes], corr: int = 0) -> dict[int, tuple[int, int]]:
    """{partition: (error_code, base_offset)} of one acks=1 Produce request."""
    _, results = parse_produce_response(PRODUCE_VERSION, conn.request(
        produce_request_to(PRODUCE_VERSION, corr, topic, batches)))
    return {p: (err, base) for _, p, err, base in results}


def batch(pid: int, seq: int, value: bytes, timestamp: int | None = None) -> bytes:
    return record_batch([(None, value)], now_ms() if timestamp is None else timestamp,
                        producer_id=pid, producer_epoch=0, base_sequence=seq)


def produce_one_batch_each(conn: Conn, topic: str, pids: list[int], log_ends: list[int],
                           timestamp: int | None = None) -> None:
    """Producer i writes one batch at sequence 0 to partition i % 100 (100 requests of 100
    batches), each at its partition's log end."""
    for r in range(len(pids) // PARTITIONS):
        batches = {p: batch(pids[r * PARTITIONS + p], 0, b"v%d" % (r * PARTITIONS + p), timestamp)
                   for p in range(PARTITIONS)}
        assert produce(conn, topic, batches, r) == {p: (0, log_ends[p] + r) for p in range(PARTITIONS)}


def test_idle_producer_ids_expire_from_memory_and_the_index(broker_factory):
    metrics_port = free_port()
    base = f"http://127.0.0.1:{metrics_port}"
    # The default expiration (a day) while the state is built and restarted.
    b = broker_factory(overrides={"metrics.listener": f"127.0.0.1:{metrics_port}",
                                  "producer.id.expiration.check.interval.ms": 200})
    topic = unique_topic("pid-expiry")
    create_topic(b.bootstrap, topic, PARTITIONS)
    assert gauge(base, "sluice_producer_ids") == 0

    started = now_ms()
    with Conn(b.host, b.port) as conn:
        pids = init_producer_ids(conn, PRODUCERS)
        produce_one_batch_each(conn, topic, pids, [0] * PARTITIONS)
        # pids[0] wrote offset 0 of partition 0 at sequence 0; it writes sequence 1 too.
        first = pids[0]
        second = batch(first, 1, b"second")
        assert produce(conn, topic, {0: second}) == {0: (0, 100)}
        assert gauge(base, "sluice_producer_ids") == PRODUCERS
        # A retried batch is answered with its original offset and not appended again.
        assert produce(conn, topic, {0: second}) == {0: (0, 100)}

    b.restart()
    assert gauge(base, "sluice_producer_ids") == PRODUCERS
    with Conn(b.host, b.port) as conn:
        assert produce(conn, topic, {0: second}) == {0: (0, 100)}, "the state came back from the index"
        assert produce(conn, topic, {0: batch(first, 0, b"v0")}) == {0: (0, 0)}

    # An expiration that ends 20 s from now for the oldest batch: live after this restart
    # (which takes a few seconds on a loaded machine, so the margin is wide), then removed
    # by the periodic check.
    expiration = now_ms() - started + 20_000
    b.overrides["producer.id.expiration.ms"] = str(expiration)
    b.restart()
    assert gauge(base, "sluice_producer_ids") == PRODUCERS
    wait_for(lambda: gauge(base, "sluice_producer_ids") == 0, 60, "every producer id to expire")
    assert "expired producer ids removed" in b.stderr.read_text()
    with Conn(b.host, b.port) as conn:
        # The expired producer starts again at sequence 0: appended at the log end.
        assert produce(conn, topic, {0: batch(first, 0, b"again")}) == {0: (0, 101)}
    wait_for(lambda: gauge(base, "sluice_producer_ids") == 0, 30, "the restarted producer to expire")

    # Four more rounds of 10,000 with a 1 s expiration. What the broker keeps beyond the
    # index's memtable (which RocksDB bounds by its write buffer size and frees on flush)
    # must not grow with the rounds: one round's producer state is ~2.3 MiB (measured with
    # expiry off: +6.8 MiB over three rounds), so 3 MiB over three rounds means none stayed.
    b.overrides["producer.id.expiration.ms"] = "1000"
    b.restart()
    log_ends = [102] + [100] * (PARTITIONS - 1)
    retained = []
    for _ in range(4):
        with Conn(b.host, b.port) as conn:
            produce_one_batch_each(conn, topic, init_producer_ids(conn, PRODUCERS), log_ends)
        log_ends = [e + PRODUCERS // PARTITIONS for e in log_ends]
        wait_for(lambda: gauge(base, "sluice_producer_ids") == 0, 30, "the round's producer ids to expire")
        retained.append(rss_bytes(b.pid) - gauge(base, "sluice_rocksdb_memtable_bytes"))
    assert retained[-1] - retained[0] <= 3 * 1024 * 1024, retained

    # Back to a day: what expired is gone from the index, not only skipped at start-up.
    del b.overrides["producer.id.expiration.ms"]
    b.restart()
    assert gauge(base, "sluice_producer_ids") == 0
