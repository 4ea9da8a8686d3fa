"""Tiered storage when things go wrong: the broker killed (kill -9) while it copies and
while it deletes remote segments, the object store unreachable for a minute under load,
and transactions aborted in segments that now live only in the bucket."""

from __future__ import annotations

import re
import threading
import time
import urllib.request

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AlterConfigOpType, NewTopic

from broker_http import metric, ready_status
from e2e import admin, unique_topic, wait_for
from test_configs import incremental
from test_tiered_storage import (
    produce_values, consume_all, list_offset_of, local_bytes, metrics_port, remote_logs, tier_overrides, value,
)

KIB = 1024
SEGMENT = 256 * KIB
SMALL_TOPIC = {"remote.storage.enable": "true", "segment.bytes": str(SEGMENT),
               "local.retention.bytes": str(2 * SEGMENT)}


def produce_n(b, topic: str, start: int, n: int, size: int = 4000) -> None:
    # Small batches, so that segments hold many of them and roll near segment.bytes.
    produce_values(b, topic, start, n, size, **{"linger.ms": 5, "batch.size": 16384, "compression.type": "none"})


def tiered_topic_with_remote_data(b, prefix: str, n: int, past: int) -> str:
    """A new topic of small tiered segments holding records 0..n, once its local log
    starts past offset `past` (what lies below is only in the bucket)."""
    topic = unique_topic(prefix)
    a = admin(b.bootstrap)  # held until the answer: a destroyed client fails its futures
    a.create_topics([NewTopic(topic, 1, 1, config=dict(SMALL_TOPIC))])[topic].result(30)
    produce_n(b, topic, 0, n)
    wait_for(lambda: list_offset_of(b, topic, -4) > past, 60, "segments to leave the local log")
    return topic


def segments_in_bucket(store, topic: str) -> dict[int, set[str]]:
    """Base offset -> the upload ids of its segment objects (one once the queue drained)."""
    out: dict[int, set[str]] = {}
    for key in store.objects():
        m = re.search(rf"/{re.escape(topic)}-[0-9a-f-]+/0/(\d{{20}})-([0-9a-f-]{{36}})\.(log|index|txnindex|snapshot)$", "/" + key)
        if m:
            out.setdefault(int(m.group(1)), set()).add(m.group(2))
    return out


def complete_and_unique(store, topic: str) -> dict[int, set[str]] | None:
    """The bucket's segments when each base offset has exactly one upload with all four
    objects (no partial copy left behind), else None."""
    objects = store.objects()
    by_base = segments_in_bucket(store, topic)
    for base, ids in by_base.items():
        if len(ids) != 1:
            return None
        (sid,) = ids
        kinds = [k for k in objects if f"{base:020d}-{sid}." in k]
        if len(kinds) != 4:
            return None
    return by_base


def stderr_has(b, text: str) -> bool:
    return text in b.stderr.read_text(errors="replace")


@pytest.mark.timeout(600)
def test_kill_9_while_copying_and_while_deleting_loses_nothing_and_leaves_nothing(broker_factory, seaweedfs):
    """kill -9 right after the first segment copy, restart: every segment ends up in the
    bucket once, with its four objects, and the interrupted upload's objects are deleted.
    Then retention.bytes makes remote segments go; kill -9 after the first deletion,
    restart: the deletions finish, the bucket holds only what the log still has, and every
    record from the log start offset reads back byte for byte. Deleting the topic empties
    its part of the bucket."""
    b = broker_factory(overrides=tier_overrides(seaweedfs, **{"remote.log.manager.copier.thread.pool.size": 1}))
    a = admin(b.bootstrap)
    topic = unique_topic("tier-kill")
    a.create_topics([NewTopic(topic, 1, 1, config=SMALL_TOPIC)])[topic].result(30)
    count = 3000  # 12 MB in about 48 segments
    produce_n(b, topic, 0, count)
    wait_for(lambda: stderr_has(b, "segment copied to the remote tier"), 60, "the first copy")
    b.kill()
    b.restart()
    port = metrics_port(b)
    wait_for(lambda: metric(port, "sluice_remote_copy_lag_segments") == 0, 120, "every sealed segment copied")
    by_base = wait_for(lambda: complete_and_unique(seaweedfs, topic), 60,
                       "one complete upload per segment, the interrupted one deleted")
    assert len(by_base) >= 40, sorted(by_base)
    # local retention runs every log.retention.check.interval.ms, after the copies
    wait_for(lambda: local_bytes(b, topic) <= 4 * SEGMENT, 30, "local retention to drop the copied segments")

    incremental(a, topic, ("retention.bytes", str(6 * SEGMENT), AlterConfigOpType.SET))
    wait_for(lambda: stderr_has(b, "remote segment deleted"), 60, "the first remote deletion")
    b.kill()
    b.restart()
    wait_for(lambda: (r := complete_and_unique(seaweedfs, topic)) is not None and len(r) <= 6, 120,
             "total retention to leave a few segments in the bucket")
    start = list_offset_of(b, topic, -2)
    assert start > count // 2, start
    remaining = segments_in_bucket(seaweedfs, topic)
    assert min(remaining) <= start, (start, sorted(remaining))
    got = consume_all(b.bootstrap, topic, count - start)
    assert [o for o, _, _ in got] == list(range(start, count))
    assert all(v == value(o, 4000) for o, v, _ in got)

    a.delete_topics([topic])[topic].result(30)
    wait_for(lambda: not segments_in_bucket(seaweedfs, topic), 60, "the deleted topic's objects to go")


@pytest.mark.timeout(600)
def test_object_store_offline_for_a_minute_under_load(broker_factory, seaweedfs):
    """The store goes away for 60 s while a producer (acks=all) keeps writing: produce goes
    on, the broker reports the store in /ready, its metrics and its log, local segments
    stay past local.retention.bytes until they are copied, and once the store is back
    every acknowledged record is read back from offset 0."""
    b = broker_factory(overrides=tier_overrides(seaweedfs))
    a = admin(b.bootstrap)
    topic = unique_topic("tier-offline")
    a.create_topics([NewTopic(topic, 1, 1, config=SMALL_TOPIC)])[topic].result(30)
    port = metrics_port(b)
    acked: list[int] = []
    stop = threading.Event()

    def produce_forever():
        p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "linger.ms": 5})
        i = 0
        while not stop.is_set():
            try:
                p.produce(topic, value=value(i, 2000), key=str(i).encode(),
                          on_delivery=lambda err, m: err is None and acked.append(m.offset()))
                i += 1
            except BufferError:
                p.poll(0.1)
            p.poll(0)
            if i % 50 == 0:
                time.sleep(0.02)  # about 2-4 MB/s
        p.flush(60)

    t = threading.Thread(target=produce_forever, daemon=True)
    t.start()
    try:
        wait_for(lambda: stderr_has(b, "segment copied to the remote tier"), 60, "copies to begin")
        seaweedfs.take_offline()
        offline_at = time.monotonic()
        wait_for(lambda: ready_status(port) == 503, 60, "/ready to report the store")
        assert metric(port, "sluice_remote_storage_available") == 0
        before = len(acked)
        while time.monotonic() - offline_at < 60:
            time.sleep(1)
        assert len(acked) > before + 1000, (before, len(acked))
        assert local_bytes(b, topic) > 4 * SEGMENT
        assert stderr_has(b, "copy to the remote tier failed")
        seaweedfs.bring_back()
        wait_for(lambda: ready_status(port) == 200, 90, "/ready once the store answers")
    finally:
        stop.set()
        t.join(120)
    wait_for(lambda: metric(port, "sluice_remote_copy_lag_segments") == 0, 120, "the backlog copied")
    wait_for(lambda: local_bytes(b, topic) <= 4 * SEGMENT, 60, "local retention to apply again")
    n = len(acked)
    assert sorted(acked) == list(range(n))
    got = consume_all(b.bootstrap, topic, n)
    assert [o for o, _, _ in got] == list(range(n))
    assert all(v == value(o, 2000) for o, v, _ in got)


def test_read_committed_over_remote_segments(broker_factory, moto_s3):
    """Transactions committed and aborted in turn, in segments that then leave the local
    disk: a read_committed consumer from offset 0 gets exactly the committed records (the
    remote transaction index drops the aborted ones), read_uncommitted gets all."""
    b = broker_factory(overrides=tier_overrides(moto_s3))
    a = admin(b.bootstrap)
    topic = unique_topic("tier-txn")
    a.create_topics([NewTopic(topic, 1, 1, config={
        "remote.storage.enable": "true", "segment.bytes": str(64 * KIB),
        "local.retention.bytes": str(64 * KIB)})])[topic].result(30)
    p = Producer({"bootstrap.servers": b.bootstrap, "transactional.id": unique_topic("tx"), "linger.ms": 0})
    p.init_transactions(30)
    committed = []
    i = 0
    for round_ in range(12):
        p.begin_transaction()
        batch = []
        for _ in range(40):
            v = value(i, 1000)
            p.produce(topic, value=v)
            batch.append(v)
            i += 1
        p.flush(30)
        if round_ % 3 == 1:
            p.abort_transaction(30)
        else:
            p.commit_transaction(30)
            committed += batch
    wait_for(lambda: list_offset_of(b, topic, -4) > 300, 60, "the transactions to leave the local log")
    got = consume_all(b.bootstrap, topic, len(committed), **{"isolation.level": "read_committed"})
    assert [v for _, v, _ in got] == committed
    uncommitted = consume_all(b.bootstrap, topic, i, **{"isolation.level": "read_uncommitted"})
    assert len(uncommitted) == i


@pytest.mark.timeout(300)
def test_turning_tiered_storage_off_needs_delete_on_disable(broker_factory, moto_s3):
    """As in Kafka (KIP-950): remote.storage.enable=false alone is INVALID_CONFIG, since
    the remote data would become unreadable. With remote.log.delete.on.disable=true it is
    accepted: the topic's objects leave the bucket, the log starts at the old local log
    start, and every record from there reads back from the local disk."""
    b = broker_factory(overrides=tier_overrides(moto_s3))
    a = admin(b.bootstrap)
    topic = tiered_topic_with_remote_data(b, "tier-off", 1000, 300)
    local_start = list_offset_of(b, topic, -4)
    assert remote_logs(moto_s3, topic)

    with pytest.raises(KafkaException) as refused:
        incremental(a, topic, ("remote.storage.enable", "false", AlterConfigOpType.SET))
    err = refused.value.args[0]
    assert err.code() == KafkaError.INVALID_CONFIG, err
    assert "remote.log.delete.on.disable" in err.str(), err.str()
    assert list_offset_of(b, topic, -2) == 0, "nothing changed"

    incremental(a, topic, ("remote.storage.enable", "false", AlterConfigOpType.SET),
                ("remote.log.delete.on.disable", "true", AlterConfigOpType.SET))
    wait_for(lambda: not [k for k in moto_s3.objects() if f"/{topic}-" in f"/{k}"], 60,
             "the topic's objects to leave the bucket")
    assert list_offset_of(b, topic, -2) == local_start
    got = consume_all(b.bootstrap, topic, 1000 - local_start)
    assert [o for o, _, _ in got] == list(range(local_start, 1000))
    assert [v for _, v, _ in got] == [value(i, 4000) for i in range(local_start, 1000)]


@pytest.mark.timeout(300)
def test_a_share_group_reads_remote_segments(broker_factory, moto_s3):
    """A share group starting at the earliest offset of a tiered topic whose first
    segments are only in the bucket: two ShareConsumers together receive every record
    once, byte for byte, the remote part included."""
    from confluent_kafka import ShareConsumer
    from test_share_groups import alter_group_configs, drain

    b = broker_factory(overrides=tier_overrides(moto_s3))
    topic = tiered_topic_with_remote_data(b, "tier-share", 600, 200)
    group = unique_topic("sg")
    assert alter_group_configs(b, group, {"share.auto.offset.reset": "earliest"}) == (0, None)
    consumers = {name: ShareConsumer({"bootstrap.servers": b.bootstrap, "group.id": group,
                                      "fetch.wait.max.ms": 100}) for name in ("a", "b")}
    try:
        for c in consumers.values():
            c.subscribe([topic])
        got = drain(consumers, 600, timeout=120)
    finally:
        for c in consumers.values():
            c.close()
    records = sorted((o, v) for recs in got.values() for o, v, _ in recs)
    body = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port(b)}/metrics", timeout=5).read().decode()
    fetched = [float(line.split()[-1]) for line in body.splitlines()
               if line.startswith('sluice_remote_bytes_total{op="fetched"}')]
    assert fetched and fetched[0] > 200 * 4000, f"the first records came from the bucket: {fetched}"
    assert [o for o, _ in records] == list(range(600))
    assert [v for _, v in records] == [value(i, 4000) for i in range(600)]
    assert all(n == 1 for recs in got.values() for _, _, n in recs), "each record delivered once"
