"""Tiered storage (KIP-405) against real S3-compatible servers (SeaweedFS and moto, see
s3.py): sealed segments of a topic with remote.storage.enable=true go to the bucket, the
local directory keeps about local.retention.bytes, and consumers (confluent-kafka, kcat)
read the whole log back byte for byte, ListOffsets included."""

from __future__ import annotations

import hashlib
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import NewTopic

from broker_http import metric, ready_status
from conftest import free_port, start_up_error
from e2e import admin, producer, unique_topic, wait_for
from test_cli import out, sluice
from wire import Conn, list_offset

MIB = 1024 * 1024
# Batches of up to 1 MiB, uncompressed: the bytes stored are the bytes produced.
BIG_BATCHES = {"linger.ms": 20, "batch.size": MIB, "compression.type": "none"}
# An hour ago: older timestamps would fall to retention.ms (7 days) as soon as they are copied.
BASE_TS = int(time.time() * 1000) - 3_600_000


def tier_overrides(store, **extra) -> dict[str, object]:
    """Broker properties that turn tiered storage on against `store`, with short intervals."""
    props: dict[str, object] = {
        "remote.log.storage.system.enable": "true",
        "remote.storage.s3.endpoint": store.endpoint,
        "remote.storage.s3.bucket": store.bucket,
        "remote.storage.s3.region": store.region,
        "remote.storage.s3.access.key": store.access_key,
        "remote.storage.s3.secret.key": store.secret_key,
        "remote.storage.s3.path.style.access": "true",
        "remote.log.manager.task.interval.ms": 200,
        "remote.log.manager.task.retry.backoff.ms": 200,
        "remote.log.manager.task.retry.backoff.max.ms": 2000,
        "log.retention.check.interval.ms": 200,
        "metrics.listener": f"127.0.0.1:{free_port()}",
    }
    props.update(extra)
    return props


def metrics_port(b) -> int:
    return int(str(b.overrides["metrics.listener"]).rsplit(":", 1)[1])


def value(i: int, size: int) -> bytes:
    """Record i's value: deterministic, incompressible, `size` bytes."""
    seed = hashlib.sha256(i.to_bytes(8, "big")).digest()
    return (seed * (size // len(seed) + 1))[:size]


def local_bytes(b, topic: str) -> int:
    total = 0
    for f in (b.log_dir / f"{topic}-0").glob("*.log"):
        try:
            total += f.stat().st_size
        except FileNotFoundError:
            pass  # local retention removed it after the listing: it holds no bytes now
    return total


def remote_logs(store, topic: str) -> dict[str, int]:
    """The segment objects of `topic` in the bucket, by key."""
    return {k: v for k, v in store.objects().items() if f"/{topic}-" in f"/{k}" and k.endswith(".log")}


def list_offset_of(b, topic: str, timestamp: int) -> int:
    """The offset a raw ListOffsets v9 answers for partition 0 (-4: earliest-local, KIP-1005)."""
    with Conn(b.host, b.port) as c:
        err, _, offset, _ = list_offset(c, topic, 9, timestamp)
    assert err == 0, err
    return offset


def produce_values(b, topic: str, start: int, n: int, size: int, stamped: bool = False, **conf) -> None:
    """Produces records start..start+n of `size` bytes, keyed by their number (and with
    `stamped`, timestamped BASE_TS + number), waiting out a full local queue; fails unless
    all are delivered."""
    p = producer(b.bootstrap, **conf)
    for i in range(start, start + n):
        extra = {"timestamp": BASE_TS + i} if stamped else {}
        while True:
            try:
                p.produce(topic, value=value(i, size), key=str(i).encode(), **extra)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    assert p.flush(120) == 0


def consume_all(bootstrap: str, topic: str, n: int, **conf) -> list[tuple[int, bytes, int]]:
    """(offset, value, timestamp) of the first `n` records from the beginning."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic("g"),
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "fetch.max.bytes": 8 * MIB, **conf})
    out = []
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + 240
        while len(out) < n and time.monotonic() < deadline:
            for m in c.consume(500, timeout=1.0):
                if m.error():
                    raise KafkaException(m.error())
                out.append((m.offset(), m.value(), m.timestamp()[1]))
    finally:
        c.close()
    return out


@pytest.mark.timeout(300)
def test_segments_past_8_mib_go_up_in_parts(broker_factory, s3_store):
    """Segments of 12 MiB are uploaded as multipart uploads (8 MiB parts), which each
    server accepts: the objects in the bucket are whole, and the records read back from
    them byte for byte."""
    b = broker_factory(overrides=tier_overrides(s3_store))
    a = admin(b.bootstrap)
    topic = unique_topic("tiered-parts")
    a.create_topics([NewTopic(topic, 1, 1, config={
        "remote.storage.enable": "true", "segment.bytes": str(12 * MIB),
        "local.retention.bytes": str(12 * MIB)})])[topic].result(30)
    size, count = 10_000, 4_000  # 40 MB: three sealed segments
    produce_values(b, topic, 0, count, size, **BIG_BATCHES)
    remote = wait_for(lambda: (r := remote_logs(s3_store, topic)) and len(r) >= 3 and r, 120,
                      "three segments in the bucket")
    assert all(8 * MIB < size_ <= 12 * MIB for size_ in remote.values()), remote
    wait_for(lambda: list_offset_of(b, topic, -4) > 2_000, 60, "the copied segments to leave the disk")
    got = consume_all(b.bootstrap, topic, count)
    assert [o for o, _, _ in got] == list(range(count))
    assert [v for _, v, _ in got] == [value(i, size) for i in range(count)]


@pytest.mark.timeout(900)
def test_200_mb_go_to_the_bucket_and_read_back_byte_for_byte(broker_factory, s3_store):
    """200 MB into a topic of 4 MiB segments with local.retention.bytes=8 MiB: the data
    directory shrinks to about the local retention while the bucket holds the rest, and
    confluent-kafka and kcat read all 200 MB from offset 0 byte for byte; ListOffsets by
    timestamp lands in a remote segment; earliest and earliest-local differ."""
    b = broker_factory(overrides=tier_overrides(s3_store))
    a = admin(b.bootstrap)
    topic = unique_topic("tiered")
    a.create_topics([NewTopic(topic, 1, 1, config={
        "remote.storage.enable": "true", "segment.bytes": str(4 * MIB),
        "local.retention.bytes": str(8 * MIB)})])[topic].result(30)
    size, count = 10_000, 20_000  # 200 MB
    produce_values(b, topic, 0, count, size, stamped=True, **BIG_BATCHES)

    wait_for(lambda: local_bytes(b, topic) <= 16 * MIB, 180,
             "the local log to shrink to about local.retention.bytes")
    remote = wait_for(lambda: (r := remote_logs(s3_store, topic)) and sum(r.values()) >= 180 * MIB and r, 120,
                      "the bucket to hold the rest")
    assert all(size_ <= 4 * MIB for size_ in remote.values()), remote
    port = metrics_port(b)
    wait_for(lambda: metric(port, "sluice_remote_copy_lag_segments") == 0, 60, "every sealed segment copied")
    local_start = list_offset_of(b, topic, -4)
    assert local_start > 15_000, local_start
    assert list_offset_of(b, topic, -2) == 0
    # latest-tiered: the last offset in the bucket, just below the local log
    assert local_start - 1 <= list_offset_of(b, topic, -5) < count

    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": unique_topic("g")})
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        assert (lo, hi) == (0, count)
        # Offset 1234 is in a remote segment: found through the uploaded index.
        found = c.offsets_for_times([TopicPartition(topic, 0, BASE_TS + 1234)], timeout=20)
        assert found[0].offset == 1234
    finally:
        c.close()

    got = consume_all(b.bootstrap, topic, count)
    assert [o for o, _, _ in got] == list(range(count))
    bad = [o for o, v, _ in got if v != value(o, size)]
    assert bad == [], f"{len(bad)} records differ, first {bad[:5]}"
    assert [t for _, _, t in got] == [BASE_TS + i for i in range(count)]

    digest = hashlib.sha256()
    kcat = subprocess.Popen(["kcat", "-C", "-b", b.bootstrap, "-t", topic, "-p", "0", "-o", "beginning",
                             "-e", "-q", "-f", "%s"], stdout=subprocess.PIPE)
    assert kcat.stdout is not None
    read = 0
    while chunk := kcat.stdout.read(MIB):
        digest.update(chunk)
        read += len(chunk)
    assert kcat.wait(60) == 0
    expected = hashlib.sha256()
    for i in range(count):
        expected.update(value(i, size))
    assert read == count * size
    assert digest.hexdigest() == expected.hexdigest()

    assert metric(port, "sluice_remote_storage_available") == 1
    assert ready_status(port) == 200

    # sluice topic describe: the partition's bytes on disk and in the bucket
    def described():
        r = sluice(b, "topic", "describe", topic)
        line = next(l for l in out(r).splitlines() if "Partition: 0" in l)
        fields = dict(f.split(": ", 1) for f in line.strip().split("\t"))
        # local retention may still be removing a segment between the two looks
        same = (int(fields["LocalSize"]) == local_bytes(b, topic)
                and int(fields["RemoteSize"]) == sum(remote_logs(s3_store, topic).values()))
        return fields if same else None
    fields = wait_for(described, 30, "the described sizes to match the disk and the bucket")
    assert fields["LogStartOffset"] == "0" and fields["LogEndOffset"] == str(count)


def test_remote_storage_needs_the_broker_setting_and_a_delete_policy(broker_factory):
    """remote.storage.enable=true is INVALID_CONFIG on a broker without
    remote.log.storage.system.enable, and on a compacted topic; local retention may not
    exceed the total."""
    b = broker_factory()
    a = admin(b.bootstrap)
    topic = unique_topic("no-tier")
    f = a.create_topics([NewTopic(topic, 1, 1, config={"remote.storage.enable": "true"})])[topic]
    with pytest.raises(KafkaException) as e:
        f.result(20)
    assert e.value.args[0].name() == "INVALID_CONFIG"
    assert "remote.log.storage.system.enable" in e.value.args[0].str()


def test_tiered_topic_configs_are_checked(broker_factory, tmp_path):
    b = broker_factory(overrides={"remote.log.storage.system.enable": "true",
                                  "remote.storage.local.dir": str(tmp_path / "remote")})
    a = admin(b.bootstrap)
    for config, words in [
        ({"remote.storage.enable": "true", "cleanup.policy": "compact"}, "compacted"),
        ({"remote.storage.enable": "true", "retention.bytes": "1000", "local.retention.bytes": "2000"},
         "retention.bytes"),
        ({"remote.storage.enable": "true", "retention.ms": "1000", "local.retention.ms": "2000"},
         "retention.ms"),
    ]:
        topic = unique_topic("bad-tier")
        f = a.create_topics([NewTopic(topic, 1, 1, config=config)])[topic]
        with pytest.raises(KafkaException) as e:
            f.result(20)
        assert e.value.args[0].name() == "INVALID_CONFIG", config
        assert words in e.value.args[0].str(), (config, e.value.args[0].str())


def test_start_up_names_a_missing_bucket_setting(tmp_path):
    out = start_up_error({"log.dirs": str(tmp_path / "d"), "listeners": f"PLAINTEXT://127.0.0.1:{free_port()}",
                          "remote.log.storage.system.enable": "true"})
    assert "remote.storage.s3.bucket" in out, out


def test_wrong_credentials_stop_start_up(seaweedfs, tmp_path):
    """A secret key the store refuses is a start-up error naming the settings."""
    props = tier_overrides(seaweedfs, **{"remote.storage.s3.secret.key": "not-the-secret"})
    props.update({"log.dirs": str(tmp_path / "d"), "listeners": f"PLAINTEXT://127.0.0.1:{free_port()}"})
    out = start_up_error(props)
    assert "remote.storage.s3.secret.key" in out, out
    assert "refused the credentials" in out, out
