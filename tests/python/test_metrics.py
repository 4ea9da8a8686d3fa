"""The metrics listener: `/metrics` parsed by the Prometheus client library's own text
parser after a confluent-kafka produce/consume/group workload, with counters that match
the workload (records and bytes in, log offsets, group lag); `/health` and `/ready`."""

from __future__ import annotations

import urllib.error
import urllib.request

from confluent_kafka import Consumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from conftest import free_port, start_up_error
from e2e import create_topic, produce_and_report, producer, unique_topic, wait_for


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def scrape(base: str) -> dict[str, list]:
    """Every sample by metric name, from the official parser."""
    status, text = get(f"{base}/metrics")
    assert status == 200
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append(s)
    return out


def value(samples: dict, name: str, **labels) -> float:
    matching = [s.value for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(matching) == 1, f"{name}{labels}: {matching}"
    return matching[0]


def test_metrics_match_a_workload_and_probes_answer(broker_factory):
    """2,000 records of 1,000 bytes to two partitions: messages in is exactly 2,000,
    bytes in is the payload plus under 5% of batch framing, and each partition's high
    watermark is 1,000. A group that commits offsets 300 and 200 shows lag 700 and 800.
    Fetched bytes, request counts and latencies, and connections are reported.
    `/health` and `/ready` answer 200; an unknown path answers 404."""
    port = free_port()
    b = broker_factory(overrides={"metrics.listener": f"127.0.0.1:{port}", "auto.create.topics.enable": "false"})
    base = f"http://127.0.0.1:{port}"
    assert get(f"{base}/health") == (200, "ok\n")
    assert get(f"{base}/ready") == (200, "ready\n")
    assert get(f"{base}/nowhere")[0] == 404

    topic = unique_topic("metrics")
    create_topic(b.bootstrap, topic, 2)
    p = producer(b.bootstrap, **{"linger.ms": 20})
    value_bytes = b"v" * 1000
    items = [(topic, None, value_bytes, None, i % 2) for i in range(2000)]
    assert all(e is None for e, _, _ in produce_and_report(p, items))

    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "metrics-group", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)])
    got = []
    wait_for(lambda: got.extend(m for m in c.consume(500, 0.2) if not m.error()) or len(got) >= 2000, 30,
             "the consumer to read everything")
    c.commit(offsets=[TopicPartition(topic, 0, 300), TopicPartition(topic, 1, 200)], asynchronous=False)

    m = scrape(base)
    assert value(m, "sluice_topic_messages_in_total", topic=topic) == 2000
    payload = 2000 * 1000
    bytes_in = value(m, "sluice_topic_bytes_in_total", topic=topic)
    assert payload < bytes_in < payload * 1.05, bytes_in
    assert value(m, "sluice_topic_bytes_out_total", topic=topic) >= payload
    for part in ("0", "1"):
        assert value(m, "sluice_partition_offset", topic=topic, partition=part, kind="high_watermark") == 1000
        assert value(m, "sluice_partition_offset", topic=topic, partition=part, kind="log_start") == 0
        assert value(m, "sluice_partition_log_size_bytes", topic=topic, partition=part) > 1000 * 1000
    assert value(m, "sluice_consumer_group_lag", group="metrics-group", topic=topic, partition="0") == 700
    assert value(m, "sluice_consumer_group_lag", group="metrics-group", topic=topic, partition="1") == 800
    assert value(m, "sluice_requests_total", api="Produce") >= 1
    assert value(m, "sluice_requests_total", api="Fetch") >= 1
    assert value(m, "sluice_request_duration_seconds_count", api="Produce") == \
        value(m, "sluice_requests_total", api="Produce")
    assert value(m, "sluice_connections", listener="PLAINTEXT") >= 2
    assert value(m, "sluice_under_replicated_partitions") == 0
    assert value(m, "sluice_partitions") == 2
    c.close()

    # Metadata for a topic that does not exist is counted under its Kafka error name.
    p2 = producer(b.bootstrap, **{"message.timeout.ms": 2000})
    produce_and_report(p2, [("no-such-topic-" + topic, None, b"x", None, 0)], timeout=20)
    m = scrape(base)
    assert value(m, "sluice_request_errors_total", api="Metadata", error="UNKNOWN_TOPIC_OR_PARTITION") >= 1


def test_bad_metrics_listener_stops_start_up(tmp_path):
    """A metrics.listener without a port stops start-up, naming the setting."""
    err = start_up_error({"listeners": f"PLAINTEXT://127.0.0.1:{free_port()}", "log.dirs": tmp_path / "data",
                          "metrics.listener": "localhost"})
    assert "metrics.listener" in err, err[-2000:]
