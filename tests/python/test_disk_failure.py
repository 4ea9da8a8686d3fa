"""A single broker whose disk fills up: the first failed write takes the data directory
offline (Kafka's log dir failure). The broker keeps running and says so: produce and fetch
get KAFKA_STORAGE_ERROR, DescribeLogDirs reports the error, `/ready` turns 503 and the
offline-dirs metric 1; it never panics, and it exits non-zero naming the failure."""

from __future__ import annotations

import time

from confluent_kafka import Producer
from kafka.protocol.admin import DescribeLogDirsRequest
from kafka.protocol.consumer import FetchRequest

import wire
from conftest import free_port
from broker_http import metric, ready_status

KAFKA_STORAGE_ERROR = 56


def test_a_full_disk_takes_the_data_directory_offline(broker_factory):
    metrics_port = free_port()
    b = broker_factory(overrides={"metrics.listener": f"127.0.0.1:{metrics_port}",
                                  "num.partitions": 1}, start=False)
    b.disk_mib = 24
    b.start()
    assert metric(metrics_port, "sluice_offline_log_dirs") == 0

    failed: list[str] = []
    acked = 0

    def report(err, msg):
        nonlocal acked
        if err is not None:
            failed.append(err.name())
        else:
            acked += 1

    producer = Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "linger.ms": 5,
                         "message.timeout.ms": 15000})
    for i in range(200):  # 40 MB into a 24 MiB disk
        producer.produce("filling", value=bytes([i % 251]) * 200_000, on_delivery=report)
        producer.poll(0)
    producer.flush(60)
    assert acked > 0, "records were acknowledged before the disk filled up"
    assert failed, "the records that did not fit were refused"
    assert set(failed) <= {"KAFKA_STORAGE_ERROR", "_MSG_TIMED_OUT"}, set(failed)

    assert b.running()
    assert metric(metrics_port, "sluice_offline_log_dirs") == 1
    assert ready_status(metrics_port) == 503

    with wire.Conn(b.host, b.port, timeout=5) as conn:
        (result,) = wire.call(conn, DescribeLogDirsRequest(topics=None), 4).results
        assert result.error_code == KAFKA_STORAGE_ERROR
        assert result.topics == []

        # Raw frames: a produce and a fetch of what was written before, both refused.
        batch = wire.record_batch([(b"k", b"small")], int(time.time() * 1000))
        _, [(_, _, err, _)] = wire.parse_produce_response(
            8, conn.request(wire.produce_request(8, 7, "filling", 0, batch, acks=-1)))
        assert err == KAFKA_STORAGE_ERROR
        fetch = FetchRequest(replica_id=-1, max_wait_ms=0, min_bytes=1, max_bytes=1_000_000,
                             isolation_level=0, topics=[FetchRequest.FetchTopic(
                                 topic="filling", partitions=[FetchRequest.FetchTopic.FetchPartition(
                                     partition=0, fetch_offset=0, log_start_offset=-1,
                                     partition_max_bytes=1_000_000)])])
        (topic,) = wire.call(conn, fetch, 11, correlation_id=8).responses
        assert topic.partitions[0].error_code == KAFKA_STORAGE_ERROR

    code = b.stop()
    assert code != 0
    assert "the data directory failed: " in b.stderr.read_text()
