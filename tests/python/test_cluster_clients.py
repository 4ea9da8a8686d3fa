"""kafka-python and kafkajs against a three-broker cluster: 12 partitions replicated three
times, produced with acks=all and consumed by consumer groups whose coordinator is one of
the brokers (confluent-kafka and kcat are in test_cluster.py)."""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient

from test_cluster import create_topic

JS_DIR = Path(__file__).resolve().parents[1] / "js"
PARTITIONS = 12
FAST = {"group.initial.rebalance.delay.ms": 0, "default.replication.factor": 3}


def test_kafka_python_produces_and_a_group_consumes_every_record_once(cluster_factory):
    cluster = cluster_factory(3, overrides=FAST)
    create_topic(cluster, "kp", PARTITIONS)
    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all", linger_ms=5)
    futures = [producer.send("kp", key=f"k{i}".encode(), value=f"v{i}".encode()) for i in range(1200)]
    producer.flush(60)
    acked = [f.get(timeout=60) for f in futures]
    producer.close()
    # Every record is acknowledged at its own offset, and offsets per partition run 0..n-1.
    per_partition = Counter(m.partition for m in acked)
    assert sum(per_partition.values()) == 1200
    for p, n in per_partition.items():
        assert sorted(m.offset for m in acked if m.partition == p) == list(range(n))

    consumer = KafkaConsumer("kp", bootstrap_servers=cluster.bootstrap, group_id="kp-readers",
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=30000)
    got = {}
    for m in consumer:
        assert (m.partition, m.offset) not in got
        got[(m.partition, m.offset)] = (m.key, m.value)
        if len(got) == 1200:
            break
    consumer.commit()
    consumer.close()
    assert sorted(got.values()) == sorted((f"k{i}".encode(), f"v{i}".encode()) for i in range(1200))
    expected = {(m.partition, m.offset): (f"k{i}".encode(), f"v{i}".encode()) for i, m in enumerate(acked)}
    assert got == expected

    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    try:
        committed = admin.list_group_offsets("kp-readers")["kp-readers"]
    finally:
        admin.close()
    assert {tp.partition: o.offset for tp, o in committed.items()} == dict(per_partition)
    assert all(tp.topic == "kp" for tp in committed)
    assert set(committed) == {TopicPartition("kp", p) for p in per_partition}


def test_kafkajs_group_consumes_each_message_once_and_commits(cluster_factory):
    cluster = cluster_factory(3, overrides=FAST)
    n = 1200
    r = subprocess.run(["node", str(JS_DIR / "group.js"), cluster.brokers[1].bootstrap, "js-cluster", "js-readers",
                        str(n), str(PARTITIONS), "2", "3"],
                       capture_output=True, timeout=120, cwd=JS_DIR,
                       env={**os.environ, "KAFKAJS_NO_PARTITIONER_WARNING": "1"})
    assert r.returncode == 0, f"group.js exited {r.returncode}\n{r.stderr.decode(errors='replace')[-4000:]}"
    out = json.loads(r.stdout)
    assert out["created"] is True
    settled = {s["member"]: s["partitions"] for s in out["settled"]}
    assert sorted(p for ps in settled.values() for p in ps) == list(range(PARTITIONS)), settled

    seen = Counter()
    for mem in out["consumed"]:
        for msg in mem["messages"]:
            p, o = msg["partition"], int(msg["offset"])
            i = o * PARTITIONS + p  # message i went to partition i % PARTITIONS at offset i // PARTITIONS
            assert (msg["key"], msg["value"]) == (f"jsg-key-{i}", f"jsg-value-{i}"), msg
            seen[(p, o)] += 1
    assert set(seen) == {(i % PARTITIONS, i // PARTITIONS) for i in range(n)}
    assert [k for k, c in seen.items() if c > 1] == []
    assert out["commitErrors"] == []
    offsets = {p["partition"]: p["offset"] for t in out["fetchOffsets"] for p in t["partitions"]}
    assert offsets == {p: str(n // PARTITIONS) for p in range(PARTITIONS)}

    # The topic kafkajs created is replicated on every broker.
    md = cluster.metadata("js-cluster").topics["js-cluster"]
    assert all(sorted(p.replicas) == [1, 2, 3] for p in md.partitions.values())
