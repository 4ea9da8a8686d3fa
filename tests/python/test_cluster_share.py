"""Share groups in a three-broker cluster: the partition's leader serves the share
consumers, and keeps each share-partition's state at its share coordinator (the leader of
the key's partition of the replicated `__share_group_state`, asked over
Read/WriteShareGroupState when it is another broker). When the partition leader is killed
with kill -9, the new leader reads the state back: acknowledged records are never
delivered again, the rest are, on their second delivery. Driven by confluent-kafka's
ShareConsumer."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import AcknowledgeType

from cluster import create_topic, produce
from test_cluster_coordinators import java_hash_partition
from test_share_groups import alter_group_configs, share_consumer

FAST = {"group.initial.rebalance.delay.ms": 0}
STATE_TOPIC = "__share_group_state"


def state_topic_led(cluster) -> bool:
    md = cluster.metadata(STATE_TOPIC).topics.get(STATE_TOPIC)
    return md is not None and md.error is None and len(md.partitions) == 50 and all(
        p.leader >= 0 for p in md.partitions.values())


def topic_uuid(cluster, topic: str) -> str:
    """The topic id as the broker writes it in a share coordinator key."""
    from confluent_kafka import TopicCollection

    admin = cluster.admin()  # held until the answer: a destroyed client fails its futures
    (f,) = admin.describe_topics(TopicCollection([topic])).values()
    tid = f.result(30).topic_id
    raw = ((tid.get_most_significant_bits() & (2**64 - 1)) << 64) | (tid.get_least_significant_bits() & (2**64 - 1))
    return str(uuid.UUID(int=raw))


def read(c, n: int, timeout: float = 60) -> list:
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        assert time.monotonic() < deadline, f"read {len(got)} of {n}"
        got.extend(m for m in c.poll(0.5) if m.error() is None)
    return got


def test_share_state_survives_the_partition_leaders_death(cluster_factory):
    cluster = cluster_factory(3, FAST)
    create_topic(cluster, "jobs", 1)
    values = [f"job-{i}".encode() for i in range(40)]
    produce(cluster, "jobs", values, partition=0)
    # A first share group's fetch creates __share_group_state; then a group is chosen
    # whose share coordinator is not the partition's leader, so that the leader reads
    # and writes the state over Read/WriteShareGroupState, before the kill and after.
    warm = share_consumer(cluster.bootstrap, "warm-up")
    warm.subscribe(["jobs"])
    cluster.wait_for(lambda: warm.poll(0.2) is not None and state_topic_led(cluster), timeout=60,
                     what="__share_group_state to exist with every partition led")
    warm.close()
    leader = cluster.leader("jobs", 0)
    tid = topic_uuid(cluster, "jobs")
    group = next(g for g in (f"workers-{uuid.uuid4().hex[:6]}" for _ in range(100))
                 if cluster.leader(STATE_TOPIC, java_hash_partition(f"{g}:{tid}:0")) != leader)
    broker = next(iter(cluster.brokers.values()))
    assert alter_group_configs(broker, group, {"share.auto.offset.reset": "earliest"}) == (0, None)

    c = share_consumer(cluster.bootstrap, group, **{"share.acknowledgement.mode": "explicit",
                                                    "max.poll.records": 40, "socket.timeout.ms": 5000})
    c.subscribe(["jobs"])
    got = read(c, 40)
    assert [m.value() for m in got] == values
    for m in got[:20]:
        c.acknowledge(m, AcknowledgeType.ACCEPT)
    results = c.commit_sync()
    assert all(e is None for e in results.values()), results

    old = cluster.leader("jobs", 0)
    cluster.brokers[old].kill()
    try:
        c.close()
    except Exception:  # one of its brokers is gone
        pass
    cluster.wait_for(lambda: cluster.leader("jobs", 0) not in (-1, old), timeout=60,
                     what="a new leader of jobs-0")
    c2 = share_consumer(cluster.bootstrap, group, **{"share.acknowledgement.mode": "explicit"})
    try:
        c2.subscribe(["jobs"])
        again = read(c2, 20)
        for m in again:
            c2.acknowledge(m, AcknowledgeType.ACCEPT)
        c2.commit_sync()
        assert [(m.value(), m.delivery_count()) for m in again] == [(v, 2) for v in values[20:]]
        produce(cluster, "jobs", [b"after"], partition=0)
        [last] = read(c2, 1)
        assert (last.value(), last.delivery_count()) == (b"after", 1)
    finally:
        c2.close()
