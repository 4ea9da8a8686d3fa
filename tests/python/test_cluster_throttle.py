"""Replication quotas, as `kafka-reassign-partitions.sh --throttle` sets them: a broker's
`leader.replication.throttled.rate` or `follower.replication.throttled.rate` with the
topic's `leader.replication.throttled.replicas` or `follower.replication.throttled.replicas`.
A replica being added copies no faster than the quota allows (Kafka's measure lets ten
seconds' worth through first), and once the throttle is removed the move completes with
every record."""

from __future__ import annotations

import os
import time

import pytest
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource
from kafka import TopicPartition
from kafka.admin import KafkaAdminClient

from test_cluster import consume_all, produce, segment_bytes
from test_cluster_placement import create_placed, settled

RATE = 100_000  # bytes/s
RECORDS = 8_000  # of 1 KiB: 8 MiB to copy, which unthrottled takes well under a second
# One fetch may be answered whole before the quota counts it: a partition's
# replica.fetch.max.bytes (1 MiB), plus a batch.
FETCH_SLACK = 2 << 20


def set_configs(cluster, resource: ConfigResource, configs: dict[str, str | None]) -> None:
    entries = [ConfigEntry(k, v or "", incremental_operation=AlterConfigOpType.DELETE if v is None
                           else AlterConfigOpType.SET) for k, v in configs.items()]
    res = ConfigResource(resource.restype, resource.name, incremental_configs=entries)
    admin = cluster.admin()  # kept alive until its future resolves
    admin.incremental_alter_configs([res], request_timeout=15)[res].result(20)


@pytest.mark.parametrize("side", ["leader", "follower"])
def test_a_throttled_replica_copies_within_the_quota_and_catches_up_once_lifted(cluster_factory, side):
    cluster = cluster_factory(3)
    create_placed(cluster, "throttled", [1, 2])
    values = [os.urandom(1024) for _ in range(RECORDS)]
    produce(cluster, "throttled", values, partition=0)
    total = len(segment_bytes(cluster.brokers[1], "throttled", 0))

    # As the reassignment tool throttles a move: the leader's (broker 1) sending, or the
    # new replica's (broker 3) fetching.
    broker, replicas = (1, "0:1,0:2") if side == "leader" else (3, "0:3")
    broker_resource = ConfigResource(ConfigResource.Type.BROKER, str(broker))
    topic_resource = ConfigResource(ConfigResource.Type.TOPIC, "throttled")
    set_configs(cluster, broker_resource, {f"{side}.replication.throttled.rate": str(RATE)})
    set_configs(cluster, topic_resource, {f"{side}.replication.throttled.replicas": replicas})
    leader = cluster.partition("throttled", 0).leader
    assert leader == 1

    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    try:
        assert admin.alter_partition_reassignments({TopicPartition("throttled", 0): [1, 2, 3]}) == \
            {TopicPartition("throttled", 0): None}
        started = time.monotonic()
        cluster.wait_for(lambda: segment_bytes(cluster.brokers[3], "throttled", 0) != b"",
                         what="broker 3 copying")
        # For five seconds, broker 3 never holds more than the quota let through.
        while (elapsed := time.monotonic() - started) < 5:
            copied = len(segment_bytes(cluster.brokers[3], "throttled", 0))
            allowed = RATE * max(elapsed + 1, 10) + FETCH_SLACK
            assert copied <= allowed, f"{copied} bytes copied after {elapsed:.1f} s (quota allows {allowed})"
            time.sleep(0.2)
        assert copied < total
        assert 3 not in cluster.partition("throttled", 0).isrs

        # Lifting the throttle lets the move complete, with every record.
        set_configs(cluster, broker_resource, {f"{side}.replication.throttled.rate": None})
        set_configs(cluster, topic_resource, {f"{side}.replication.throttled.replicas": None})
        cluster.wait_for(lambda: settled(cluster, "throttled", [1, 2, 3]), timeout=60,
                         what="the move to brokers 1, 2 and 3")
    finally:
        admin.close()
    cluster.wait_for(lambda: segment_bytes(cluster.brokers[3], "throttled", 0)
                     == segment_bytes(cluster.brokers[1], "throttled", 0), what="replicas identical")
    got = consume_all(cluster, "throttled", RECORDS)
    assert [v for _, _, v in sorted(got, key=lambda r: r[1])] == values
