"""The group coordinator in a three-broker cluster: its state lives in the replicated
`__consumer_offsets` topic, the coordinator of a group is the leader of the group's
partition, and committed offsets and generations survive the coordinator's kill -9.
Driven by confluent-kafka and by kafka-python's protocol classes over raw connections."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from kafka.net.compat import KafkaNetClient
from kafka.protocol.admin import DescribeGroupsRequest
from kafka.protocol.consumer import (
    HeartbeatRequest,
    JoinGroupRequest,
    OffsetCommitRequest,
    OffsetFetchRequest,
    SyncGroupRequest,
)

from test_cluster import create_topic, produce

NONE = 0
NOT_COORDINATOR = 16
COORDINATOR_NOT_AVAILABLE = 15
MEMBER_ID_REQUIRED = 79
OFFSETS_TOPIC = "__consumer_offsets"
OFFSETS_PARTITIONS = 50


def java_hash_partition(key: str, partitions: int = OFFSETS_PARTITIONS) -> int:
    """Kafka's partitionFor: abs(String.hashCode) % partitions."""
    h = 0
    for unit in key.encode("utf-16-be").hex(" ", 2).split():
        h = (31 * h + int(unit, 16)) & 0xFFFFFFFF
    if h >= 1 << 31:
        h -= 1 << 32
    return 0 if h == -(1 << 31) else abs(h) % partitions


def coordinator_of(cluster, group: str) -> int:
    """The coordinator as confluent-kafka's admin client finds it. librdkafka hands the
    retriable COORDINATOR_LOAD_IN_PROGRESS (a coordinator that has just become the leader of
    the group's partition) to the application, so it is retried here, as an application would."""
    from confluent_kafka import KafkaError, KafkaException

    def describe():
        admin = cluster.admin()  # held: the admin client must outlive its futures
        try:
            return admin.describe_consumer_groups([group])[group].result(timeout=30).coordinator.id
        except KafkaException as e:
            if e.args[0].code() != KafkaError.COORDINATOR_LOAD_IN_PROGRESS:
                raise
            return None

    return cluster.wait_for(describe, timeout=30, what=f"the coordinator of {group}")


def new_coordinator(cluster, group: str, old: int) -> int:
    """Waits for another broker to lead the group's partition and be found as coordinator."""
    partition = java_hash_partition(group)
    cluster.wait_for(
        lambda: cluster.partition(OFFSETS_TOPIC, partition).leader not in (-1, old),
        timeout=30, what=f"a new leader of {OFFSETS_TOPIC}-{partition}")
    return cluster.wait_for(
        lambda: (lambda c: c if c != old else None)(coordinator_of(cluster, group)),
        timeout=30, what="the new coordinator")


# ConsumerProtocol v0 bytes, so that admin clients can parse what DescribeGroups returns:
# a subscription to "shifts", and an assignment of shifts-0.
SUBSCRIPTION = b"\x00\x00" + b"\x00\x00\x00\x01" + b"\x00\x06shifts" + b"\xff\xff\xff\xff"
ASSIGNMENT = (b"\x00\x00" + b"\x00\x00\x00\x01" + b"\x00\x06shifts" + b"\x00\x00\x00\x01"
              + b"\x00\x00\x00\x00" + b"\xff\xff\xff\xff")


def raw_client(cluster) -> KafkaNetClient:
    client = KafkaNetClient(bootstrap_servers=cluster.bootstrap, client_id="sluice-raw-coordinators",
                            request_timeout_ms=30000)
    client._manager.bootstrap(15000)
    return client


def test_committed_offsets_survive_the_group_coordinators_death(cluster_factory):
    cluster = cluster_factory(3)
    create_topic(cluster, "ledger", 1)
    values = [f"entry-{i:03d}".encode() for i in range(100)]
    produce(cluster, "ledger", values, partition=0)
    group = "billing"

    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe(["ledger"])
    seen = []
    while len(seen) < 60:
        m = c.poll(1.0)
        if m is not None and not m.error():
            seen.append(m.value())
    assert seen == values[:60]
    c.commit(offsets=[TopicPartition("ledger", 0, 60)], asynchronous=False)
    c.close()

    old = coordinator_of(cluster, group)
    partition = java_hash_partition(group)
    # The coordinator is the leader of the group's partition, which is replicated.
    offsets_partition = cluster.partition(OFFSETS_TOPIC, partition)
    assert old == offsets_partition.leader
    assert sorted(offsets_partition.replicas) == [1, 2, 3]
    cluster.brokers[old].kill()
    new = new_coordinator(cluster, group, old)
    assert new != old

    admin = cluster.admin()
    listed = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, [TopicPartition("ledger", 0)])])[group].result(timeout=30)
    assert [(tp.topic, tp.partition, tp.offset) for tp in listed.topic_partitions] == [("ledger", 0, 60)]

    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        assert [tp.offset for tp in c.committed([TopicPartition("ledger", 0)], timeout=30)] == [60]
        c.subscribe(["ledger"])
        rest = []
        while len(rest) < 40:
            m = c.poll(1.0)
            if m is not None and not m.error():
                rest.append((m.offset(), m.value()))
        assert rest == [(60 + i, v) for i, v in enumerate(values[60:])]
    finally:
        c.close()


def test_a_group_generation_survives_the_coordinators_death(cluster_factory):
    cluster = cluster_factory(3, overrides={"group.initial.rebalance.delay.ms": 0})
    create_topic(cluster, "shifts", 1)
    group = "night-shift"
    client = raw_client(cluster)
    old = coordinator_of(cluster, group)

    def send(node, request):
        return client.send_and_receive(node, request, timeout_ms=30000)

    def join(member_id=""):
        return send(old, JoinGroupRequest(
            group_id=group, session_timeout_ms=30000, rebalance_timeout_ms=30000,
            member_id=member_id, group_instance_id=None, protocol_type="consumer",
            protocols=[("range", SUBSCRIPTION)], reason=None))

    r = join()
    if r.error_code == MEMBER_ID_REQUIRED:
        r = join(r.member_id)
    assert r.error_code == NONE, r
    member, generation = r.member_id, r.generation_id
    assert r.leader == member
    r = send(old, SyncGroupRequest(
        group_id=group, generation_id=generation, member_id=member, group_instance_id=None,
        protocol_type="consumer", protocol_name="range",
        assignments=[(member, ASSIGNMENT)]))
    assert (r.error_code, bytes(r.assignment)) == (NONE, ASSIGNMENT)
    _T = OffsetCommitRequest.OffsetCommitRequestTopic
    _P = _T.OffsetCommitRequestPartition
    r = send(old, OffsetCommitRequest(
        group_id=group, generation_id_or_member_epoch=generation, member_id=member,
        group_instance_id=None, retention_time_ms=-1,
        topics=[_T(name="shifts", partitions=[_P(partition_index=0, committed_offset=7,
                                                 committed_leader_epoch=-1, commit_timestamp=-1,
                                                 committed_metadata="night")])]))
    assert [p.error_code for t in r.topics for p in t.partitions] == [NONE]

    # Any other broker refuses the group: it is not its coordinator.
    other = next(i for i in cluster.brokers if i != old)
    r = send(other, HeartbeatRequest(group_id=group, generation_id=generation, member_id=member,
                                     group_instance_id=None))
    assert r.error_code == NOT_COORDINATOR

    cluster.brokers[old].kill()
    new = new_coordinator(cluster, group, old)

    # The new coordinator loaded the generation: the member's heartbeat is accepted as is,
    # and the group is Stable with the member's assignment.
    r = send(new, HeartbeatRequest(group_id=group, generation_id=generation, member_id=member,
                                   group_instance_id=None))
    assert r.error_code == NONE
    described = send(new, DescribeGroupsRequest(groups=[group], include_authorized_operations=False))
    g = described.groups[0]
    assert (g.error_code, g.group_state, g.protocol_type, g.protocol_data) == (NONE, "Stable", "consumer", "range")
    assert [(m.member_id, bytes(m.member_assignment)) for m in g.members] == [(member, ASSIGNMENT)]
    _F = OffsetFetchRequest.OffsetFetchRequestTopic
    r = send(new, OffsetFetchRequest(group_id=group, topics=[_F(name="shifts", partition_indexes=[0])],
                                     max_version=7))
    assert r.error_code == NONE
    assert [(p.partition_index, p.committed_offset, p.metadata) for t in r.topics for p in t.partitions] \
        == [(0, 7, "night")]
    client.close()


def test_the_offsets_topic_waits_for_its_replication_factor_in_live_brokers(cluster_factory):
    from kafka.protocol.metadata import FindCoordinatorRequest

    cluster = cluster_factory(2)
    client = raw_client(cluster)
    node = next(iter(cluster.brokers))

    def find(group: str):
        r = client.send_and_receive(node, FindCoordinatorRequest(key=group, key_type=0, coordinator_keys=[group]),
                                    timeout_ms=30000)
        return [(c.error_code, c.node_id) for c in r.coordinators]

    # Kafka's default offsets.topic.replication.factor is 3: two brokers cannot hold it, and
    # the topic is not created with fewer replicas.
    assert find("early") == [(COORDINATOR_NOT_AVAILABLE, -1)]
    assert OFFSETS_TOPIC not in cluster.metadata().topics
    client.close()


def test_offsets_topic_replication_factor_sets_the_replicas_of_the_offsets_topic(cluster_factory):
    cluster = cluster_factory(2, overrides={"offsets.topic.replication.factor": 2})
    coordinator = cluster.wait_for(lambda: coordinator_of(cluster, "pairs"), what="a coordinator")
    assert coordinator in (1, 2)
    partition = cluster.partition(OFFSETS_TOPIC, java_hash_partition("pairs"))
    assert sorted(partition.replicas) == [1, 2]


def test_a_consumer_protocol_member_keeps_consuming_across_the_coordinators_death(cluster_factory):
    """A KIP-848 consumer (group.protocol=consumer) stays in its group while its coordinator
    is killed: the new coordinator loads the member's records from __consumer_offsets, so
    the member keeps its epoch and partitions (librdkafka sees no rebalance: no partition
    revoked, lost or assigned again), and it reads everything after its commit, once."""
    cluster = cluster_factory(3)
    create_topic(cluster, "stream", 2)
    first = [f"first-{i:03d}".encode() for i in range(50)]
    for p in (0, 1):
        produce(cluster, "stream", first, partition=p)
    group = "streamers"

    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group, "group.protocol": "consumer",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        rebalances: list[tuple[str, list[int]]] = []
        c.subscribe(["stream"],
                    on_assign=lambda _, ps: rebalances.append(("assign", sorted(p.partition for p in ps))),
                    on_revoke=lambda _, ps: rebalances.append(("revoke", sorted(p.partition for p in ps))),
                    on_lost=lambda _, ps: rebalances.append(("lost", sorted(p.partition for p in ps))))
        got: dict[int, list[tuple[int, bytes]]] = {0: [], 1: []}
        while sum(map(len, got.values())) < 100:
            m = c.poll(1.0)
            if m is not None and not m.error():
                got[m.partition()].append((m.offset(), m.value()))
        assert got == {p: list(enumerate(first)) for p in (0, 1)}
        c.commit(asynchronous=False)

        old = coordinator_of(cluster, group)
        cluster.brokers[old].kill()
        second = [f"second-{i:03d}".encode() for i in range(50)]
        for p in (0, 1):
            produce(cluster, "stream", second, partition=p)

        after: dict[int, list[tuple[int, bytes]]] = {0: [], 1: []}
        deadline = time.monotonic() + 90
        while any(len(v) < 50 for v in after.values()) and time.monotonic() < deadline:
            m = c.poll(1.0)
            if m is not None and not m.error():
                after[m.partition()].append((m.offset(), m.value()))
        # Everything after the commit, in order, once.
        assert after == {p: [(50 + i, v) for i, v in enumerate(second)] for p in (0, 1)}
        # One assignment of both partitions at the start, and none since.
        assert rebalances == [("assign", [0, 1])], rebalances
        c.commit(asynchronous=False)
        committed = c.committed([TopicPartition("stream", p) for p in (0, 1)], timeout=30)
        assert [tp.offset for tp in committed] == [100, 100]
    finally:
        c.close()
