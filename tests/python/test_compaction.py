"""Log compaction with real clients: a million records over a thousand keys on a compacted
topic with small segments, the broker killed with SIGKILL in the middle of cleaning and
aborted inside a segment swap, tombstones that go after delete.retention.ms; keyless
records refused on compacted topics; compression.type recompressing what producers send."""

from __future__ import annotations

import signal
import threading

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
    """Bytes in the partition's segment files; a file the cleaner removes between the
    listing and its stat counts as gone."""
    total = 0
    for p in partition_dir(b, topic).glob("*.log"):
        try:
            total += p.stat().st_size
        except FileNotFoundError:
            pass
    return total


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


def test_keyless_records_are_refused_on_compacted_topics(broker):
    """kafka-python and confluent-kafka: a record without a key on a compacted topic fails
    with INVALID_RECORD and is not stored; keyed records around it take consecutive
    offsets. On a topic with cleanup.policy=delete the same record is accepted."""
    from kafka import KafkaProducer
    from kafka.errors import InvalidRecordError

    a = admin(broker.bootstrap)
    topic, plain = unique_topic("compact-keyless"), unique_topic("delete-keyless")
    fs = a.create_topics([NewTopic(topic, 1, 1, config={"cleanup.policy": "compact"}),
                          NewTopic(plain, 1, 1)])
    for f in fs.values():
        f.result(20)

    kp = KafkaProducer(bootstrap_servers=broker.bootstrap, retries=0, linger_ms=0)
    try:
        assert kp.send(topic, key=b"a", value=b"1").get(20).offset == 0
        try:
            kp.send(topic, value=b"no key").get(20)
            raise AssertionError("a keyless record was accepted on a compacted topic")
        except InvalidRecordError:
            pass
        assert kp.send(topic, key=b"b", value=b"2").get(20).offset == 1
        assert kp.send(plain, value=b"no key").get(20).offset == 0
    finally:
        kp.close()

    p = producer(broker.bootstrap, **{"linger.ms": 0})
    reports: list = []
    # One at a time: a batch holding a keyless record is refused whole, as in Kafka.
    p.produce(topic, value=b"no key either", on_delivery=lambda err, m: reports.append(err))
    assert p.flush(30) == 0
    p.produce(topic, key=b"c", value=b"3", on_delivery=lambda err, m: reports.append((err, m.offset())))
    assert p.flush(30) == 0
    assert reports[0] is not None and reports[0].code() == KafkaError.INVALID_RECORD, reports[0]
    assert reports[1] == (None, 2)

    records, hw = read_from_start(broker.bootstrap, topic)
    assert hw == 3
    assert records == [(0, b"a", b"1"), (1, b"b", b"2"), (2, b"c", b"3")]


def batch_codecs(b, topic: str) -> list[int]:
    """The codec bits of every stored batch, in log order, read from the segment files
    (they hold batches exactly as Kafka's wire format has them)."""
    codecs = []
    for base in segment_bases(b, topic):
        data = (partition_dir(b, topic) / f"{base:020d}.log").read_bytes()
        pos = 0
        while pos + 61 <= len(data):
            length = int.from_bytes(data[pos + 8:pos + 12], "big")
            codecs.append(int.from_bytes(data[pos + 21:pos + 23], "big") & 0x07)
            pos += 12 + length
    return codecs


def test_compression_type_recompresses_what_producers_send(broker):
    """kafka-python: a topic with compression.type=gzip stores an uncompressed producer's
    batches gzip-compressed (a fraction of the size) and a consumer reads every value back
    exactly; switched to zstd with IncrementalAlterConfigs, the next batches are zstd; and
    with `producer`, a snappy producer's batches stay snappy."""
    from kafka import KafkaAdminClient, KafkaProducer
    from kafka.admin import ConfigResource as KConfigResource, ConfigResourceType, NewTopic as KNewTopic

    topic = unique_topic("recompress")
    k = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15000)
    kp = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=50, compression_type=None)
    try:
        k.create_topics([KNewTopic(topic, 1, 1, topic_configs={"compression.type": "gzip"})])
        values = [f"record {i:05d} ".encode() + b"compressible " * 40 for i in range(400)]
        for v in values[:200]:
            kp.send(topic, key=b"k", value=v)
        kp.flush(30)
        raw = sum(len(v) for v in values[:200])
        assert log_bytes(broker, topic) < raw // 5, (log_bytes(broker, topic), raw)
        assert set(batch_codecs(broker, topic)) == {1}

        k.alter_configs([KConfigResource(ConfigResourceType.TOPIC, topic, configs={"compression.type": "zstd"})])
        first_zstd = len(batch_codecs(broker, topic))
        for v in values[200:]:
            kp.send(topic, key=b"k", value=v)
        kp.flush(30)
        codecs = batch_codecs(broker, topic)
        assert set(codecs[:first_zstd]) == {1} and set(codecs[first_zstd:]) == {4}, codecs

        # kafka-python reads gzip but has no zstd without an extra package: librdkafka reads.
        records, _ = read_from_start(broker.bootstrap, topic)
        got = [(o, v) for o, _, v in records]
        assert got == list(enumerate(values))
    finally:
        kp.close()
        k.close()

    kept = unique_topic("producer-codec")
    p = producer(broker.bootstrap, **{"compression.codec": "snappy", "linger.ms": 20})
    for i in range(100):
        p.produce(kept, key=b"k", value=b"snappy " * 30, partition=0)
    assert p.flush(30) == 0
    assert set(batch_codecs(broker, kept)) == {2}


def test_kcat_reads_a_compacted_topic(broker_factory, tmp_path):
    """kcat produces ten rounds of 50 keys and a tombstone into a compacted topic with small
    segments; once cleaned, kcat reading from the beginning gets each key's latest value
    once below the active segment, and the tombstone as a NULL value."""
    import sys
    sys.path.insert(0, str(Path(__file__).parent))
    from test_kcat import kcat

    b = broker_factory(overrides={"log.cleaner.backoff.ms": 100})
    topic = unique_topic("kcat-compact")
    a = admin(b.bootstrap)
    a.create_topics([NewTopic(topic, 1, 1, config={
        "cleanup.policy": "compact", "segment.bytes": "4096", "min.cleanable.dirty.ratio": "0.01"})])[topic].result(20)
    lines = [f"k{k:02d}:round-{r}-of-k{k:02d}" for r in range(10) for k in range(50)]
    lines.append("k07:")  # with -Z: a NULL value, the tombstone of k07
    lines += [f"filler-{i % 5}:{'x' * 100}-{i}" for i in range(200)]
    src = tmp_path / "in.txt"
    src.write_text("\n".join(lines) + "\n")
    kcat("-P", "-b", b.bootstrap, "-t", topic, "-p", "0", "-K:", "-Z", "-X", "batch.num.messages=20", "-l", str(src))

    expected = {f"k{k:02d}": f"round-9-of-k{k:02d}" for k in range(50)}
    expected["k07"] = None
    expected.update({f"filler-{i}": f"{'x' * 100}-{195 + i}" for i in range(5)})

    def cleaned():
        out = kcat("-C", "-b", b.bootstrap, "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q",
                   "-f", "%o %k %S %s\n", timeout=60).stdout.decode()
        rows = []
        for line in out.splitlines():
            o, k, size, *rest = line.split(" ", 3)
            rows.append((int(o), k, None if size == "-1" else (rest[0] if rest else "")))
        active = segment_bases(b, topic)[-1]
        below = [k for o, k, _ in rows if o < active]
        return rows if len(below) == len(set(below)) and len(rows) < len(lines) else None

    rows = wait_for(cleaned, 60, "kcat to read a compacted log", interval=0.2)
    last = {}
    for _, k, v in rows:
        last[k] = v
    assert last == expected
    assert rows[-1][0] == len(lines) - 1


def test_compaction_lags_must_be_ordered(broker):
    """confluent-kafka: min.compaction.lag.ms above max.compaction.lag.ms is INVALID_CONFIG
    at creation, naming the config."""
    from confluent_kafka import KafkaException

    a = admin(broker.bootstrap)
    topic = unique_topic("lags")
    f = a.create_topics([NewTopic(topic, 1, 1, config={
        "cleanup.policy": "compact", "min.compaction.lag.ms": "10000", "max.compaction.lag.ms": "5000"})])[topic]
    try:
        f.result(20)
        raise AssertionError("accepted min.compaction.lag.ms > max.compaction.lag.ms")
    except KafkaException as e:
        err = e.args[0]
        assert err.code() == KafkaError.INVALID_CONFIG, err
        assert "min.compaction.lag.ms" in err.str(), err.str()
