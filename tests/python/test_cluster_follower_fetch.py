"""Consumers reading from the replica in their rack (KIP-392): brokers in racks rack-1..3
with Kafka's RackAwareReplicaSelector; a leader names an in-sync replica in a consumer's
`client.rack` as its preferred read replica, and the follower serves it."""

from __future__ import annotations

import urllib.request

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import NewTopic
from kafka.protocol.consumer import FetchRequest

import wire
from conftest import free_port
from test_cluster import produce

SELECTOR = "org.apache.kafka.common.replica.RackAwareReplicaSelector"
NOT_LEADER_OR_FOLLOWER = 6
OFFSET_OUT_OF_RANGE = 1


def bytes_out(port: int, topic: str) -> int:
    """sluice_topic_bytes_out_total of `topic` (0 before the broker sent any)."""
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    prefix = f'sluice_topic_bytes_out_total{{topic="{topic}"}} '
    return sum(int(float(line[len(prefix):])) for line in body.splitlines() if line.startswith(prefix))


def consume(cluster, topic: str, count: int, rack: str | None) -> list[bytes]:
    conf = {"bootstrap.servers": cluster.bootstrap, "group.id": f"near-{rack}", "enable.auto.commit": False}
    if rack is not None:
        conf["client.rack"] = rack
    c = Consumer(conf)
    c.assign([TopicPartition(topic, 0, 0)])
    got: list[bytes] = []
    polls = 0
    while len(got) < count and polls < 120:
        polls += 1
        for msg in c.consume(100, timeout=0.5):
            if not msg.error():
                got.append(msg.value())
    c.close()
    return got


def preferred_read_replica(broker, topic: str, rack: str, version: int = 12, offset: int = 0,
                           leader_epoch: int = -1) -> tuple[int, int, bytes]:
    """A raw Fetch from a consumer in `rack`: (error, preferred read replica, records)."""
    request = FetchRequest(replica_id=-1, max_wait_ms=0, min_bytes=1, max_bytes=1_000_000, isolation_level=0,
                           session_id=0, session_epoch=-1, rack_id=rack, forgotten_topics_data=[],
                           topics=[FetchRequest.FetchTopic(topic=topic, partitions=[
                               FetchRequest.FetchTopic.FetchPartition(
                                   partition=0, current_leader_epoch=leader_epoch, fetch_offset=offset,
                                   last_fetched_epoch=-1, log_start_offset=-1, partition_max_bytes=1_000_000)])])
    with wire.Conn(broker.host, broker.port, timeout=5) as conn:
        (t,) = wire.call(conn, request, version).responses
    p = t.partitions[0]
    return p.error_code, getattr(p, "preferred_read_replica", -1), bytes(p.records or b"")


def test_a_consumer_reads_from_the_in_sync_replica_in_its_rack(cluster_factory):
    cluster = cluster_factory(3, {"replica.selector.class": SELECTOR}, start=False)
    ports = {}
    for node_id, b in cluster.brokers.items():
        ports[node_id] = free_port()
        b.overrides.update({"broker.rack": f"rack-{node_id}", "metrics.listener": f"127.0.0.1:{ports[node_id]}"})
    cluster.start()
    admin = cluster.admin()
    admin.create_topics([NewTopic("nearby", num_partitions=1, replication_factor=-1,
                                  replica_assignment=[[1, 2, 3]])])["nearby"].result(timeout=30)
    cluster.wait_for(lambda: len(cluster.partition("nearby", 0).isrs) == 3, what="nearby in sync")
    values = [f"near-{i:03d}".encode() for i in range(200)]
    produce(cluster, "nearby", values, partition=0)

    # The leader (broker 1) names broker 2 to a consumer in rack-2, with no records.
    assert preferred_read_replica(cluster.brokers[1], "nearby", "rack-2") == (0, 2, b"")
    # In its own rack, or with no rack, it serves the consumer itself.
    err, preferred, records = preferred_read_replica(cluster.brokers[1], "nearby", "rack-1")
    assert (err, preferred) == (0, -1) and records
    assert preferred_read_replica(cluster.brokers[1], "nearby", "")[:2] == (0, -1)
    # A follower serves a consumer's Fetch from v11 (before it, only the leader does).
    # It reads up to its own high watermark, which the leader's next answer to its
    # fetch brings up to date.
    err, preferred, records = cluster.wait_for(
        lambda: (lambda r: r if r[2] else None)(preferred_read_replica(cluster.brokers[2], "nearby", "rack-2")),
        what="broker 2 serving the records below its high watermark")
    assert (err, preferred) == (0, -1)
    assert preferred_read_replica(cluster.brokers[2], "nearby", "", version=10)[0] == NOT_LEADER_OR_FOLLOWER
    # An offset past the follower's log end, from a consumer naming no leader epoch (it may
    # have come before the follower caught up): no records and no error, as Kafka answers.
    # Naming the epoch, or asking the leader, it is OFFSET_OUT_OF_RANGE.
    assert preferred_read_replica(cluster.brokers[2], "nearby", "rack-2", offset=10_000) == (0, -1, b"")
    assert preferred_read_replica(cluster.brokers[2], "nearby", "rack-2", offset=10_000,
                                  leader_epoch=0)[0] == OFFSET_OUT_OF_RANGE
    assert preferred_read_replica(cluster.brokers[1], "nearby", "rack-1", offset=10_000)[0] == OFFSET_OUT_OF_RANGE

    # confluent-kafka in rack-3 reads every record from broker 3, none from the others
    # (which sent records only to the raw fetches above).
    before = {i: bytes_out(ports[i], "nearby") for i in ports}
    assert before[3] == 0 and before[1] > 0 and before[2] > 0
    assert consume(cluster, "nearby", len(values), "rack-3") == values
    after = {i: bytes_out(ports[i], "nearby") for i in ports}
    assert after[3] > 0 and after[1] == before[1] and after[2] == before[2]
    # Without client.rack, from the leader.
    assert consume(cluster, "nearby", len(values), None) == values
    assert bytes_out(ports[1], "nearby") > after[1]
    assert bytes_out(ports[2], "nearby") == before[2] and bytes_out(ports[3], "nearby") == after[3]
