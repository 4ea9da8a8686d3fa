"""Topics with fewer replicas than brokers: a broker that hosts no replica of a topic still
knows it from the cluster metadata, and answers for it as Kafka's brokers do: its configs
(DescribeConfigs), its partitions (DescribeTopicPartitions), offsets committed to a group
it coordinates, and partitions added to a transaction it coordinates."""

from __future__ import annotations

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
from kafka.protocol.admin import DescribeTopicPartitionsRequest
from kafka.protocol.metadata import FindCoordinatorRequest

import wire
from test_cluster import produce

LEADER_NOT_AVAILABLE = 5


def find_coordinator(broker, key: str, key_type: int) -> int:
    with wire.Conn(broker.host, broker.port, timeout=10) as conn:
        request = FindCoordinatorRequest(key=key, key_type=key_type, coordinator_keys=[key])
        (c,) = wire.call(conn, request, 4).coordinators
    return c.node_id if c.error_code == 0 else -1


def coordinated_away_from(cluster, key_type: int, prefix: str, avoid: int) -> str:
    """A group id or transactional id whose coordinator is a broker other than `avoid`."""
    for i in range(200):
        key = f"{prefix}-{i}"
        node = cluster.wait_for(lambda: (lambda n: n if n > 0 else None)(
            find_coordinator(cluster.brokers[1], key, key_type)), what=f"a coordinator for {key}")
        if node != avoid:
            return key
    raise AssertionError(f"every {prefix} is coordinated by broker {avoid}")


def partitions(broker, topics: list[str]) -> dict[str, list[tuple]]:
    """DescribeTopicPartitions v0 from one broker: per topic, (index, error, leader, replicas,
    ISR, offline replicas) of each partition."""
    request = DescribeTopicPartitionsRequest(
        topics=[DescribeTopicPartitionsRequest.TopicRequest(name=t) for t in topics],
        response_partition_limit=100, cursor=None)
    with wire.Conn(broker.host, broker.port, timeout=10) as conn:
        answer = wire.call(conn, request, 0)
    return {t.name: [(p.partition_index, p.error_code, p.leader_id, list(p.replica_nodes), sorted(p.isr_nodes),
                      list(p.offline_replicas)) for p in t.partitions] for t in answer.topics}


def test_a_broker_without_a_replica_answers_for_the_topic(cluster_factory):
    cluster = cluster_factory(3)
    admin = cluster.admin()
    topics = [NewTopic("narrow", 1, replication_factor=-1, replica_assignment=[[3]], config={"retention.ms": "3600000"}),
              NewTopic("pair", 1, replication_factor=-1, replica_assignment=[[2, 3]])]
    for f in admin.create_topics(topics).values():
        f.result(timeout=30)
    cluster.wait_for(lambda: len(cluster.partition("pair", 0).isrs) == 2 and cluster.leader("narrow", 0) == 3,
                     what="narrow and pair led")
    produce(cluster, "narrow", [f"n{i}".encode() for i in range(10)], partition=0)

    # Broker 1 hosts neither topic.
    one = AdminClient({"bootstrap.servers": cluster.brokers[1].bootstrap})
    resource = ConfigResource(ConfigResource.Type.TOPIC, "narrow")
    configs = one.describe_configs([resource])[resource].result(timeout=30)
    assert configs["retention.ms"].value == "3600000"
    assert partitions(cluster.brokers[1], ["narrow", "pair"]) == {
        "narrow": [(0, 0, 3, [3], [3], [])],
        "pair": [(0, 0, 2, [2, 3], [2, 3], [])],
    }

    # A group coordinated by broker 1 or 2 commits offsets of narrow, which only 3 hosts.
    group = coordinated_away_from(cluster, 0, "narrow-readers", avoid=3)
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        c.assign([TopicPartition("narrow", 0, 0)])
        got = []
        while len(got) < 10:
            m = c.poll(1.0)
            if m is not None and not m.error():
                got.append(m.value())
        assert got == [f"n{i}".encode() for i in range(10)]
        c.commit(offsets=[TopicPartition("narrow", 0, 10)], asynchronous=False)
        assert [tp.offset for tp in c.committed([TopicPartition("narrow", 0)], timeout=30)] == [10]
    finally:
        c.close()

    # A transaction coordinated by broker 1 or 2 adds narrow-0 and commits.
    tid = coordinated_away_from(cluster, 1, "narrow-writer", avoid=3)
    p = Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": tid})
    p.init_transactions(30)
    p.begin_transaction()
    p.produce("narrow", value=b"in a transaction", partition=0)
    p.commit_transaction(30)

    # Broker 3 stops: pair keeps a leader, narrow has none; both list 3 as offline.
    cluster.brokers[3].stop()
    cluster.wait_for(lambda: partitions(cluster.brokers[1], ["narrow", "pair"]) == {
        "narrow": [(0, LEADER_NOT_AVAILABLE, -1, [3], [3], [3])],
        "pair": [(0, 0, 2, [2, 3], [2], [3])],
    }, what="broker 3 offline in DescribeTopicPartitions")
