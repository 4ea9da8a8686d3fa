"""Tiered storage in a three-broker cluster on etcd, against SeaweedFS: the remote
segments' metadata lives in the cluster metadata, so a new leader serves what its
predecessor copied, followers keep only the local retention, and a follower behind the
leader's local log start restarts its log after the remote tier (Kafka's
OFFSET_MOVED_TO_TIERED_STORAGE), as KIP-405 describes."""

from __future__ import annotations

import re
import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from cluster import create_topic, produce
from test_tiered_storage import list_offset_of, local_bytes, tier_overrides, value

KIB = 1024
SEGMENT = 256 * KIB
SIZE = 4000
TOPIC_CONFIGS = {"remote.storage.enable": "true", "segment.bytes": str(SEGMENT),
                 "local.retention.bytes": str(2 * SEGMENT), "min.insync.replicas": "2"}
# Small batches, so that segments hold many of them and roll near segment.bytes.
SMALL_BATCHES = {"linger.ms": 5, "batch.size": 16384, "compression.type": "none"}


def cluster_overrides(store) -> dict[str, object]:
    props = tier_overrides(store)
    props.pop("metrics.listener")  # one port per broker; these tests read no metrics
    return props


def values(start: int, n: int) -> list[bytes]:
    return [value(i, SIZE) for i in range(start, start + n)]


def read_from_start(bootstrap: str, topic: str, n: int, timeout: float = 120) -> list[tuple[int, bytes]]:
    """(offset, value) of the first `n` records of partition 0, read by assignment."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{time.monotonic_ns()}",
                  "enable.auto.commit": False, "fetch.max.bytes": 4 * 1024 * KIB})
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    out = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < n and time.monotonic() < deadline:
            for m in c.consume(500, timeout=1.0):
                if m.error():
                    continue
                out.append((m.offset(), m.value()))
    finally:
        c.close()
    return out


def uploads(store, topic: str) -> dict[tuple[int, str], set[str]]:
    """(base offset, upload id) -> the kinds of object the bucket holds for it."""
    out: dict[tuple[int, str], set[str]] = {}
    for key in store.objects():
        m = re.search(rf"/{re.escape(topic)}-[0-9a-f-]+/0/(\d{{20}})-([0-9a-f-]{{36}})\.(\w+)$", "/" + key)
        if m:
            out.setdefault((int(m.group(1)), m.group(2)), set()).add(m.group(3))
    return out


def every_upload_complete(store, topic: str) -> bool:
    """Every upload in the bucket has its four objects: nothing half-written left over."""
    found = uploads(store, topic)
    return bool(found) and all(k == {"log", "index", "txnindex", "snapshot"} for k in found.values())


def first_local_offset(b, topic: str) -> int:
    return min(int(f.stem) for f in (b.log_dir / f"{topic}-0").glob("*.log"))


@pytest.mark.timeout(600)
def test_a_new_leader_serves_what_the_old_one_copied(cluster_factory, seaweedfs):
    """The leader copies and its followers delete what it copied; the leader is killed
    with kill -9, and the new leader serves every acknowledged record from offset 0 (most
    of it from the bucket, through the metadata the old leader wrote to etcd), copies what
    comes next, and cleans up an upload the old leader left unfinished. Deleting the
    topic then empties the bucket of it."""
    cluster = cluster_factory(3, cluster_overrides(seaweedfs))
    topic = "tiered-failover"
    create_topic(cluster, topic, 1, configs=TOPIC_CONFIGS)
    acked = produce(cluster, topic, values(0, 2000), partition=0, extra=SMALL_BATCHES)
    assert [o for _, o, _ in acked] == list(range(2000))

    # Every replica ends up holding about local.retention.bytes, the followers included.
    brokers = list(cluster.brokers.values())
    cluster.wait_for(lambda: all(local_bytes(b, topic) <= 4 * SEGMENT for b in brokers), timeout=120,
                     what="every replica's local log shrunk to the local retention")
    assert len(uploads(seaweedfs, topic)) >= 20

    old = cluster.leader(topic, 0)
    cluster.brokers[old].kill()
    cluster.wait_for(lambda: cluster.leader(topic, 0) not in (-1, old), timeout=30, what="a new leader")
    new = cluster.leader(topic, 0)
    assert list_offset_of(cluster.brokers[new], topic, -2) == 0, "the log still starts at 0"
    assert list_offset_of(cluster.brokers[new], topic, -4) > 1000, "most of it is remote"

    got = read_from_start(cluster.bootstrap, topic, 2000)
    assert [o for o, _ in got] == list(range(2000))
    assert [v for _, v in got] == values(0, 2000)

    # The new leader goes on copying from where the old one stopped.
    tiered_before = list_offset_of(cluster.brokers[new], topic, -5)
    acked = produce(cluster, topic, values(2000, 1000), partition=0, extra=SMALL_BATCHES)
    assert [o for _, o, _ in acked] == list(range(2000, 3000))
    cluster.wait_for(lambda: list_offset_of(cluster.brokers[new], topic, -5) > max(tiered_before, 2500),
                     timeout=120, what="the new leader copied the new segments")
    cluster.wait_for(lambda: every_upload_complete(seaweedfs, topic), timeout=60,
                     what="no partial upload left in the bucket")

    cluster.brokers[old].start()
    cluster.wait_for(lambda: len(cluster.partition(topic, 0).isrs) == 3, timeout=120,
                     what="the old leader back in the ISR")
    cluster.wait_for(lambda: local_bytes(cluster.brokers[old], topic) <= 4 * SEGMENT, timeout=120,
                     what="the old leader's local log shrunk to the local retention")
    got = read_from_start(cluster.bootstrap, topic, 3000)
    assert [o for o, _ in got] == list(range(3000))
    assert [v for _, v in got] == values(0, 3000)

    # A deleted topic's objects go too (the controller deletes them).
    admin = cluster.admin()  # held until the answer
    admin.delete_topics([topic], operation_timeout=30)[topic].result(30)
    cluster.wait_for(lambda: not uploads(seaweedfs, topic), timeout=60,
                     what="the deleted topic's objects gone from the bucket")


@pytest.mark.timeout(600)
def test_a_follower_behind_the_local_log_start_starts_after_the_remote_tier(cluster_factory, seaweedfs):
    """A follower down while the leader copied and deleted comes back behind the leader's
    local log start: it asks for earliest-local, restarts its local log there with the log
    start offset still 0, joins the ISR without copying the remote tier, and once it is
    the only broker left it serves every record from offset 0."""
    cluster = cluster_factory(3, cluster_overrides(seaweedfs))
    topic = "tiered-catch-up"
    create_topic(cluster, topic, 1, configs=TOPIC_CONFIGS)
    leader = cluster.leader(topic, 0)
    late = next(i for i in cluster.brokers if i != leader)
    other = next(i for i in cluster.brokers if i not in (leader, late))
    cluster.brokers[late].kill()

    acked = produce(cluster, topic, values(0, 2000), partition=0, extra=SMALL_BATCHES)
    assert [o for _, o, _ in acked] == list(range(2000))
    lb = cluster.brokers[leader]
    cluster.wait_for(lambda: list_offset_of(lb, topic, -4) > 1000, timeout=120,
                     what="the leader's local log start past most of the log")
    local_start = list_offset_of(lb, topic, -4)

    cluster.brokers[late].start()
    cluster.wait_for(lambda: late in cluster.partition(topic, 0).isrs, timeout=120,
                     what="the late follower back in the ISR")
    lf = cluster.brokers[late]
    assert first_local_offset(lf, topic) >= local_start, "it did not fetch what is remote"
    assert local_bytes(lf, topic) < 2000 * SIZE // 2
    assert "follower restarts its local log after the leader's remote tier" in lf.stderr.read_text(errors="replace")

    # Left alone, the late follower leads and answers for the whole log.
    cluster.brokers[leader].kill()
    cluster.brokers[other].kill()
    cluster.wait_for(lambda: cluster.leader(topic, 0) == late, timeout=60, what="the late follower leads")
    assert list_offset_of(lf, topic, -2) == 0
    got = read_from_start(cluster.bootstrap, topic, 2000)
    assert [o for o, _ in got] == list(range(2000))
    assert [v for _, v in got] == values(0, 2000)
