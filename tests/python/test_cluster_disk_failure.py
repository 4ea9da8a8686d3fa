"""A broker whose disk fails (it fills up: every write fails with ENOSPC) takes its
partitions offline and says so, while the other brokers take over its leaderships with
no acknowledged write lost; with a new disk it catches up and rejoins every ISR."""

from __future__ import annotations

from confluent_kafka import Consumer, Producer, TopicPartition
from kafka.protocol.admin import DescribeLogDirsRequest
from kafka.protocol.metadata import MetadataRequest

import wire
from conftest import free_port
from test_cluster import create_topic
from broker_http import metric, ready_status

KAFKA_STORAGE_ERROR = 56
VALUE_BYTES = 200_000


def metadata(broker, topic: str):
    """The broker's own Metadata v12 answer for `topic`'s partition 0."""
    with wire.Conn(broker.host, broker.port, timeout=5) as conn:
        request = MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name=topic)],
                                  allow_auto_topic_creation=False)
        (t,) = wire.call(conn, request, 12).topics
    return t.partitions[0]


def test_a_full_disk_takes_its_brokers_partitions_offline_and_the_others_take_over(cluster_factory):
    metrics_port, survivor_metrics = free_port(), free_port()
    cluster = cluster_factory(3, start=False)
    failing = cluster.brokers[3]
    failing.disk_mib = 48
    failing.overrides["metrics.listener"] = f"127.0.0.1:{metrics_port}"
    cluster.brokers[1].overrides["metrics.listener"] = f"127.0.0.1:{survivor_metrics}"
    cluster.start()
    # Broker 3 leads; 1 and 2 follow. acks=all needs two in-sync replicas.
    create_topic(cluster, "fill", 1, configs={"min.insync.replicas": "2"}, assignment=[[3, 1, 2]])
    create_topic(cluster, "steady", 1, configs={"min.insync.replicas": "2"}, assignment=[[1, 2, 3]])
    assert metric(metrics_port, "sluice_offline_log_dirs") == 0
    assert ready_status(metrics_port) == 200

    # 80 MB through a 48 MiB disk: the leader's writes fail part of the way.
    acked: list[int] = []
    failed: list[str] = []

    def report(err, msg):
        if err is not None:
            failed.append(str(err))
        else:
            acked.append(int(msg.key()))

    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "enable.idempotence": True,
                         "linger.ms": 5, "message.timeout.ms": 120000, "retry.backoff.ms": 200})
    total = 400
    for i in range(total):
        producer.produce("fill", key=str(i).encode(), value=bytes([i % 251]) * VALUE_BYTES, on_delivery=report)
        producer.poll(0)
    assert producer.flush(150) == 0, f"{len(producer)} records still in flight"
    assert not failed, failed[:5]
    assert acked == list(range(total)), "every record acknowledged once, in order"

    # Broker 3 is alive, knows its directory failed and says so.
    assert failing.running()
    assert metric(metrics_port, "sluice_offline_log_dirs") == 1
    assert ready_status(metrics_port) == 503
    with wire.Conn(failing.host, failing.port, timeout=5) as conn:
        (result,) = wire.call(conn, DescribeLogDirsRequest(topics=None), 4).results
    assert result.error_code == KAFKA_STORAGE_ERROR
    assert result.topics == []

    # Every broker's view: 1 or 2 leads, 3 is out of the ISR and listed offline.
    def handed_over():
        for b in cluster.brokers.values():
            p = metadata(b, "fill")
            if p.leader_id not in (1, 2) or 3 in p.isr_nodes or p.offline_replicas != [3]:
                return False
        return True

    cluster.wait_for(handed_over, timeout=30, what="broker 3's leadership taken over and it reported offline")
    # Broker 1 leads steady-0 (and fill-0, if it took it), each missing broker 3.
    led_by_1 = 1 + (metadata(cluster.brokers[1], "fill").leader_id == 1)
    assert metric(survivor_metrics, "sluice_under_replicated_partitions") == led_by_1

    # The other brokers serve as before: acks=all on the topic broker 3 also replicates.
    steady = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    steady.produce("steady", value=b"still here")
    assert steady.flush(30) == 0

    # Every acknowledged record is there once, in order, byte for byte.
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "disk-check",
                         "enable.auto.commit": False, "fetch.max.bytes": 4_000_000})
    consumer.assign([TopicPartition("fill", 0, 0)])
    got = []
    deadline_polls = 0
    while len(got) < total and deadline_polls < 600:
        msg = consumer.poll(0.5)
        deadline_polls += 1
        if msg is None or msg.error():
            continue
        got.append((msg.offset(), int(msg.key()), msg.value() == bytes([int(msg.key()) % 251]) * VALUE_BYTES))
    consumer.close()
    assert [(o, k) for o, k, _ in got] == [(i, i) for i in range(total)]
    assert all(intact for _, _, intact in got)

    # A new disk: the broker starts empty, fetches everything back and rejoins the ISR.
    failing.stop()
    failing.disk_mib = 512
    failing.start()
    cluster.wait_for(lambda: all(sorted(metadata(cluster.brokers[1], t).isr_nodes) == [1, 2, 3]
                                 for t in ("fill", "steady")),
                     timeout=90, what="broker 3 back in the ISRs of fill-0 and steady-0")
    assert metric(survivor_metrics, "sluice_under_replicated_partitions") == 0
    assert metadata(cluster.brokers[1], "fill").offline_replicas == []
    assert metric(metrics_port, "sluice_offline_log_dirs") == 0
    assert ready_status(metrics_port) == 200
