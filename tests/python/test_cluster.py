"""A three-broker cluster on etcd: placement, replication, acks=all, leader failover and
follower catch-up, driven by confluent-kafka, kcat and raw frames."""

from __future__ import annotations

import subprocess
import time
from collections import Counter

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import NewTopic

import wire
from cluster import create_topic, produce, segment_bytes

NOT_LEADER_OR_FOLLOWER = 6
NOT_ENOUGH_REPLICAS = 19


def consume_all(cluster, topic: str, expected: int, timeout: float = 60) -> list[tuple[int, int, bytes]]:
    """Reads every partition from its start by assignment: no group coordinator is needed,
    so it also works while a dead broker keeps `__consumer_offsets` from being created (it
    waits for offsets.topic.replication.factor live brokers, as in Kafka)."""
    partitions = cluster.metadata(topic).topics[topic].partitions
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": f"g-{topic}-{time.monotonic_ns()}",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    out = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < expected and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            out.append((m.partition(), m.offset(), m.value()))
    finally:
        c.close()
    return out


def test_three_brokers_place_replicas_and_leaders_evenly(cluster_factory):
    cluster = cluster_factory(3)
    create_topic(cluster, "spread", 12)
    md = cluster.metadata("spread")
    assert sorted(md.brokers) == [1, 2, 3]
    parts = md.topics["spread"].partitions
    assert sorted(parts) == list(range(12))
    for p in parts.values():
        assert sorted(p.replicas) == [1, 2, 3]
        assert sorted(p.isrs) == [1, 2, 3]
        assert p.leader == p.replicas[0], "the preferred replica leads a new topic"
    assert Counter(p.leader for p in parts.values()) == {1: 4, 2: 4, 3: 4}

    # kcat sees the same cluster.
    out = subprocess.run(["kcat", "-b", cluster.bootstrap, "-L", "-t", "spread"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    assert "3 brokers:" in out
    assert out.count("isrs: ") == 12


def test_replication_factor_above_the_live_brokers_is_refused(cluster_factory):
    cluster = cluster_factory(3)
    admin = cluster.admin()
    futures = admin.create_topics([NewTopic("too-many", 1, replication_factor=4)])
    with pytest.raises(Exception) as e:
        futures["too-many"].result(timeout=30)
    assert "INVALID_REPLICATION_FACTOR" in str(e.value)


def test_acks_all_records_reach_every_replica_byte_for_byte(cluster_factory):
    cluster = cluster_factory(3)
    create_topic(cluster, "copies", 12)
    values = [f"record-{i:05d}".encode() for i in range(3000)]
    acked = produce(cluster, "copies", values)
    assert sorted(v for _, _, v in acked) == values
    got = consume_all(cluster, "copies", len(values))
    assert sorted(got) == sorted(acked)
    # Every partition's offsets are 0..n-1 without a gap.
    by_partition = {}
    for p, o, _ in got:
        by_partition.setdefault(p, []).append(o)
    for offsets in by_partition.values():
        assert sorted(offsets) == list(range(len(offsets)))
    # Followers hold the leader's log exactly (same offsets, epochs, bytes).
    for index in range(12):
        logs = cluster.wait_for(
            lambda: (lambda l: l if len(set(l)) == 1 else None)(
                [segment_bytes(b, "copies", index) for b in cluster.brokers.values()]),
            what=f"replicas of copies-{index} identical")
        assert len(logs[0]) > 0


def test_a_follower_answers_not_leader_with_the_leader(cluster_factory):
    cluster = cluster_factory(3)
    create_topic(cluster, "routed", 1)
    leader = cluster.leader("routed", 0)
    follower = next(b for i, b in cluster.brokers.items() if i != leader)
    batch = wire.record_batch([(b"k", b"v")], int(time.time() * 1000))
    with wire.Conn(follower.host, follower.port) as conn:
        resp = conn.request(wire.produce_request(8, 7, "routed", 0, batch, acks=-1))
    corr, results = wire.parse_produce_response(8, resp)
    assert corr == 7
    assert results == [("routed", 0, NOT_LEADER_OR_FOLLOWER, -1)]


def test_the_leaders_death_moves_leadership_and_loses_no_acknowledged_write(cluster_factory):
    cluster = cluster_factory(3)
    create_topic(cluster, "failover", 1)
    first = [f"before-{i}".encode() for i in range(500)]
    acked = produce(cluster, "failover", first, partition=0)
    old_leader = cluster.leader("failover", 0)
    cluster.brokers[old_leader].kill()
    new_leader = cluster.wait_for(
        lambda: (lambda p: p.leader if p.leader not in (-1, old_leader) else None)(
            cluster.partition("failover", 0)),
        timeout=30, what="a new leader")
    assert new_leader != old_leader
    assert old_leader not in cluster.partition("failover", 0).isrs
    second = [f"after-{i}".encode() for i in range(500)]
    acked += produce(cluster, "failover", second, partition=0)
    got = consume_all(cluster, "failover", 1000)
    assert [v for _, _, v in sorted(got, key=lambda r: r[1])] == first + second
    assert sorted(o for _, o, _ in got) == list(range(1000))

    # The old leader comes back as a follower, catches up and rejoins the ISR.
    cluster.brokers[old_leader].start()
    cluster.wait_for(lambda: sorted(cluster.partition("failover", 0).isrs) == [1, 2, 3],
                     timeout=60, what="the old leader back in the ISR")
    cluster.wait_for(
        lambda: len({segment_bytes(b, "failover", 0) for b in cluster.brokers.values()}) == 1,
        what="all replicas identical")


def test_a_stopped_follower_catches_up_and_rejoins_the_isr(cluster_factory):
    cluster = cluster_factory(3, overrides={"replica.lag.time.max.ms": 2000})
    create_topic(cluster, "catchup", 1)
    leader = cluster.leader("catchup", 0)
    follower_id = next(i for i in cluster.brokers if i != leader)
    follower = cluster.brokers[follower_id]
    follower.stop()
    cluster.wait_for(lambda: follower_id not in cluster.partition("catchup", 0).isrs,
                     timeout=30, what="the stopped follower leaves the ISR")
    values = [f"v{i}".encode() for i in range(2000)]
    produce(cluster, "catchup", values, partition=0)
    follower.start()
    cluster.wait_for(lambda: sorted(cluster.partition("catchup", 0).isrs) == [1, 2, 3],
                     timeout=60, what="the follower back in the ISR")
    cluster.wait_for(
        lambda: len({segment_bytes(b, "catchup", 0) for b in cluster.brokers.values()}) == 1,
        what="all replicas identical")


def test_min_insync_replicas_refuses_acks_all_when_the_isr_is_too_small(cluster_factory):
    cluster = cluster_factory(3, overrides={"replica.lag.time.max.ms": 2000})
    create_topic(cluster, "guarded", 1, configs={"min.insync.replicas": "3"})
    leader = cluster.leader("guarded", 0)
    batch = wire.record_batch([(b"k", b"v")], int(time.time() * 1000))
    lb = cluster.brokers[leader]
    with wire.Conn(lb.host, lb.port) as conn:
        _, results = wire.parse_produce_response(8, conn.request(
            wire.produce_request(8, 1, "guarded", 0, batch, acks=-1)))
    assert results == [("guarded", 0, 0, 0)], "three in-sync replicas take acks=all"
    follower_id = next(i for i in cluster.brokers if i != leader)
    cluster.brokers[follower_id].stop()
    cluster.wait_for(lambda: follower_id not in cluster.partition("guarded", 0).isrs,
                     timeout=30, what="the stopped follower leaves the ISR")
    with wire.Conn(lb.host, lb.port) as conn:
        _, results = wire.parse_produce_response(8, conn.request(
            wire.produce_request(8, 2, "guarded", 0, batch, acks=-1)))
        assert results == [("guarded", 0, NOT_ENOUGH_REPLICAS, -1)]
        # acks=1 does not need the ISR.
        _, results = wire.parse_produce_response(8, conn.request(
            wire.produce_request(8, 3, "guarded", 0, batch, acks=1)))
        assert results == [("guarded", 0, 0, 1)]


def test_partitions_added_and_configs_altered_reach_every_broker(cluster_factory):
    from confluent_kafka.admin import ConfigResource, NewPartitions

    cluster = cluster_factory(3)
    create_topic(cluster, "grown", 3)
    admin = cluster.admin()
    admin.create_partitions([NewPartitions("grown", 6)])["grown"].result(timeout=30)
    cluster.wait_for(lambda: all(p.leader >= 0 and len(p.isrs) == 3
                                 for p in cluster.metadata("grown").topics["grown"].partitions.values())
                     and len(cluster.metadata("grown").topics["grown"].partitions) == 6,
                     what="six partitions with leaders and full ISRs")
    acked = produce(cluster, "grown", [b"into-5"], partition=5)
    assert acked == [(5, 0, b"into-5")]

    resource = ConfigResource("topic", "grown", set_config={"retention.ms": "3600000"})
    admin.alter_configs([resource])[resource].result(timeout=30)
    # Asked through each broker in turn, the new value is what every answer holds.
    for b in cluster.brokers.values():
        from confluent_kafka.admin import AdminClient
        one = AdminClient({"bootstrap.servers": b.bootstrap})
        described = cluster.wait_for(
            lambda: (lambda c: c if c["retention.ms"].value == "3600000" else None)(
                one.describe_configs([ConfigResource("topic", "grown")])[ConfigResource("topic", "grown")]
                .result(timeout=10)),
            what=f"broker {b.bootstrap} describing the new retention.ms")
        assert described["retention.ms"].value == "3600000"


def test_default_broker_configs_set_through_one_broker_apply_on_every_broker(cluster_factory):
    """IncrementalAlterConfigs of the cluster default (BROKER resource "", sent with
    kafka-python's request classes since librdkafka cannot name it), Kafka's
    `kafka-configs.sh --entity-default`: every broker describes it as
    DYNAMIC_DEFAULT_BROKER_CONFIG for itself and applies it to its topics; deleting it
    removes it everywhere."""
    from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigResource, ConfigSource

    from test_dynamic_configs import kp_admin, kp_alter

    cluster = cluster_factory(3)
    create_topic(cluster, "plain", 1)

    def alter(node_id: int, op) -> None:
        k = kp_admin(cluster.brokers[node_id])
        try:
            assert kp_alter(k, "", ("log.retention.ms", "3600000", op)) == (0, None)
        finally:
            k.close()

    def described(node_id: int, resource) -> tuple[str, str]:
        one = AdminClient({"bootstrap.servers": cluster.brokers[node_id].bootstrap})
        got = one.describe_configs([resource])[resource].result(timeout=10)
        key = "log.retention.ms" if resource.restype == ConfigResource.Type.BROKER else "retention.ms"
        return got[key].value, ConfigSource(got[key].source).name

    alter(1, AlterConfigOpType.SET)
    for node_id in cluster.brokers:
        cluster.wait_for(
            lambda: described(node_id, ConfigResource(ConfigResource.Type.BROKER, str(node_id)))
            == ("3600000", "DYNAMIC_DEFAULT_BROKER_CONFIG"),
            what=f"broker {node_id} describing the cluster default")
    # Every broker has it now: a topic without an override takes it, whoever answers.
    for node_id in cluster.brokers:
        assert described(node_id, ConfigResource("topic", "plain")) == ("3600000", "DYNAMIC_DEFAULT_BROKER_CONFIG")

    alter(3, AlterConfigOpType.DELETE)
    for node_id in cluster.brokers:
        cluster.wait_for(
            lambda: described(node_id, ConfigResource(ConfigResource.Type.BROKER, str(node_id)))
            # Kafka's log.retention.ms has no default of its own (log.retention.hours has).
            == (None, "DEFAULT_CONFIG"),
            what=f"broker {node_id} back on Kafka's default")
