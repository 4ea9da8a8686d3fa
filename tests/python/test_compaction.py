"""Log compaction with real clients: a million records over a thousand keys on a compacted
topic with small segments, the broker killed with SIGKILL in the middle of cleaning and
aborted inside a segment swap, tombstones that go after delete.retention.ms; keyless
records refused on compacted topics; compression.type recompressing what producers send."""

from __future__ import annotations

import signal
import threading
import subprocess
import time
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition
from confluent_kafka.admin import NewTopic

from e2e import admin, assigned_consumer, producer, unique_topic, wait_for

KEYS = 1000


def key(k: int) -> bytes:
    return f"key-{k:04d}".encode()


def partition_dir(b, topic: str) -> Path:
    return b.log_dir / f"{topic}-0"


def segment_bases(b, topic: str) -> list[int]:
    return sorted(int(p.name[:-4]) for p in partition_dir(b, topic).glob("*.log"))


def log_bytes(b, topic: str) -> int:
    return sum(p.stat().st_size for p in partition_dir(b, topic).glob("*.log"))


def read_from_start(bootstrap: str, topic: str, timeout: float = 120) -> tuple[list, int]:
    """Every record from the log start to the high watermark as (offset, key, value), and
    the high watermark."""
    c = assigned_consumer(bootstrap, **{"fetch.max.bytes": 8 << 20})
    try:
        c.list_topics(topic, timeout=10)
        _, hw = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        out: list = []
        deadline = time.monotonic() + timeout
        # The last record is in the active segment, which the cleaner never touches.
        while not out or out[-1][0] < hw - 1:
            assert time.monotonic() < deadline, f"read {len(out)} records of {topic} up to {hw}"
            for m in c.consume(num_messages=100_000, timeout=0.5):
                assert not m.error(), m.error()
                out.append((m.offset(), m.key(), m.value()))
        return out, hw
    finally:
        c.close()


def produce_all(bootstrap: str, topic: str, items: list[tuple[bytes, bytes | None]],
                restart=None) -> None:
    """Produces (key, value) pairs with an idempotent producer and waits until every one is
    acknowledged; `restart`, if given, is called once the first 10% are acknowledged."""
    p = producer(bootstrap, **{"enable.idempotence": True, "acks": "all", "linger.ms": 20,
                               "batch.size": 16384, "message.timeout.ms": 120_000})
    acked = 0
    errors: list = []

    def cb(err, _msg):
        nonlocal acked
        if err is not None:
            errors.append(err)
        else:
            acked += 1

    for i, (k, v) in enumerate(items):
        while True:
            try:
                p.produce(topic, key=k, value=v, partition=0, on_delivery=cb)
                break
            except BufferError:
                p.poll(0.05)
        if i % 1000 == 0:
            p.poll(0)
    assert p.flush(180) == 0, "undelivered records"
    assert not errors, errors[:5]
    assert acked == len(items)


def assert_compacted(records: list, hw: int, active_base: int, expected: dict) -> None:
    """What a consumer from the start must see: every key's latest acknowledged value (a
    tombstoned key either as its tombstone or not at all), each key at most once below the
    active segment, offsets rising and the last one at the high watermark."""
    offsets = [o for o, _, _ in records]
    assert offsets == sorted(set(offsets))
    assert offsets[-1] == hw - 1
    seen_below: set = set()
    for o, k, _ in records:
        if o < active_base:
            assert k not in seen_below, f"{k!r} twice below the active segment {active_base}"
            seen_below.add(k)
    last: dict = {}
    for _, k, v in records:
        last[k] = v
    for k, v in expected.items():
        if v is None:
            assert last.get(k) is None, (k, last.get(k))
        else:
            assert last.get(k) == v, (k, last.get(k), v)
    assert set(last) <= set(expected)


def wait_compacted(b, topic: str, expected: dict, timeout: float = 240) -> list:
    """Waits until the cleaner has compacted everything below the active segment."""
    wait_for(lambda: log_bytes(b, topic) < 1_000_000, timeout, f"{topic} to shrink below 1 MB")

    def done():
        records, hw = read_from_start(b.bootstrap, topic)
        active = segment_bases(b, topic)[-1]
        keys = [k for o, k, _ in records if o < active]
        return (records, hw, active) if len(keys) == len(set(keys)) else None

    records, hw, active = wait_for(done, timeout, f"{topic} compacted below the active segment",
                                   interval=0.5)
    assert_compacted(records, hw, active, expected)
    return records


def test_a_million_records_compacted_through_kill_and_crash(broker_factory):
    """1,000,000 records over 1,000 keys with 64 KiB segments. The broker is SIGKILLed while
    the cleaner writes a cleaned segment, then aborted inside a swap (after the cleaned
    file is renamed, before the index names it) while a producer is writing; after each
    restart a consumer from the start sees every key's latest acknowledged value, each key
    once below the active segment, and the high watermark equals the records acknowledged.
    Tombstones then go once delete.retention.ms has passed."""
    b = broker_factory(overrides={"log.cleaner.enable": "false", "log.cleaner.backoff.ms": 100})
    topic = unique_topic("compact")
    a = admin(b.bootstrap)
    config = {"cleanup.policy": "compact", "segment.bytes": "65536",
              "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "2000"}
    a.create_topics([NewTopic(topic, 1, 1, config=config)])[topic].result(30)

    items = [(key(i % KEYS), f"{i % KEYS}:{i}".encode()) for i in range(1_000_000)]
    produce_all(b.bootstrap, topic, items)
    expected = {k: v for k, v in items}
    total = len(items)
    assert len(segment_bases(b, topic)) > 300

    # Cleaner on; SIGKILL as soon as it is writing a cleaned copy.
    b.stop()
    b.overrides["log.cleaner.enable"] = "true"
    b.start()
    wait_for(lambda: any(partition_dir(b, topic).glob("*.cleaned")), 120,
             "the cleaner to write a cleaned segment", interval=0.001)
    b.kill()
    b.start()
    records = wait_compacted(b, topic, expected)
    assert len(records) < 100_000
    _, hw = read_from_start(b.bootstrap, topic)
    assert hw == total

    # Abort inside the next swap while 100,000 more records are being produced; the
    # producer's retries land on the restarted broker without loss or duplication.
    b.stop()
    b.env["SLUICE_CRASH_POINT"] = "cleaner-after-swap-file"
    b.start()
    more = [(key(i % KEYS), f"{i % KEYS}:{i}".encode()) for i in range(total, total + 100_000)]

    def restart_after_abort():
        code = wait_for(lambda: b.proc.poll(), 180, "the broker to abort at the crash point")
        assert code == -signal.SIGABRT, code
        del b.env["SLUICE_CRASH_POINT"]
        b.start()

    restarter = threading.Thread(target=restart_after_abort)
    restarter.start()
    try:
        produce_all(b.bootstrap, topic, more)
    finally:
        restarter.join()
    assert "stopped at crash point cleaner-after-swap-file" in b.stderr.read_text()
    expected.update(dict(more))
    total += len(more)
    wait_compacted(b, topic, expected)
    _, hw = read_from_start(b.bootstrap, topic)
    assert hw == total

    # Tombstones for 100 keys, then enough updates of other keys to seal their segment.
    tombstones = [(key(k), None) for k in range(100)]
    filler = [(key(500 + i % 500), f"{500 + i % 500}:{total + 100 + i}".encode()) for i in range(20_000)]
    produce_all(b.bootstrap, topic, tombstones + filler)
    expected.update(dict(tombstones))
    expected.update(dict(filler))
    total += len(tombstones) + len(filler)

    def tombstoned_keys_gone():
        records, hw = read_from_start(b.bootstrap, topic)
        present = {k for _, k, _ in records}
        return (records, hw) if not present & {key(k) for k in range(100)} else None

    records, hw = wait_for(tombstoned_keys_gone, 120, "tombstoned keys to disappear", interval=0.5)
    assert hw == total
    assert_compacted(records, hw, segment_bases(b, topic)[-1],
                     {k: v for k, v in expected.items() if v is not None})
    assert {k for _, k, _ in records} == {key(k) for k in range(100, KEYS)}
