"""The open segment files budget: with `log.max.open.segment.files` far below the number
of segments, confluent-kafka produces to and reads back every partition exactly, before
and after a kill -9, while the broker keeps no more segment files open than the budget."""

import os
import re
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from conftest import free_port

from e2e import (admin, consume_exact, produce_and_report, producer, unique_topic, wait_for)
from confluent_kafka.admin import NewTopic

BUDGET = 6
PARTITIONS = 24
PER_PARTITION = 40
SEGMENT = re.compile(r"\d{20}\.log")


def open_segment_files(pid: int) -> list[str]:
    """The segment files the broker has open (RocksDB's own .log files are not counted)."""
    fd_dir = Path(f"/proc/{pid}/fd")
    out = []
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(fd_dir / fd)
        except OSError:
            continue  # closed meanwhile
        if SEGMENT.fullmatch(os.path.basename(target)):
            out.append(target)
    return out


def test_partitions_beyond_the_open_files_budget_read_back_exactly(broker_factory):
    metrics_port = free_port()
    b = broker_factory({"log.max.open.segment.files": BUDGET,
                        "metrics.listener": f"127.0.0.1:{metrics_port}"})
    topic = unique_topic("budget")
    # 1 KiB segments: every partition rolls several times.
    a = admin(b.bootstrap)
    fs = a.create_topics([NewTopic(topic, PARTITIONS, 1, config={"segment.bytes": "1024"})])
    fs[topic].result(timeout=30)
    p = producer(b.bootstrap, **{"linger.ms": 0, "batch.num.messages": 1})
    items = [(topic, f"k{i}-{n}".encode(), f"v{i}-{n}".encode() * 20, None, i)
             for n in range(PER_PARTITION) for i in range(PARTITIONS)]
    reports = produce_and_report(p, items)
    assert all(err is None for err, _, _ in reports), [r for r in reports if r[0] is not None][:3]
    # Offsets per partition are 0..PER_PARTITION-1 in produce order.
    for idx, (err, part, offset) in enumerate(reports):
        assert (part, offset) == (idx % PARTITIONS, idx // PARTITIONS)
    segments = sum(len(list((b.log_dir / f"{topic}-{i}").glob("*.log"))) for i in range(PARTITIONS))
    assert segments > 4 * BUDGET, f"only {segments} segments: the test needs many more than the budget"

    def check_reads():
        got = consume_exact(b.bootstrap, topic, {i: PER_PARTITION for i in range(PARTITIONS)})
        for i in range(PARTITIONS):
            assert [(r.offset, r.key, r.value) for r in got[i]] == [
                (n, f"k{i}-{n}".encode(), f"v{i}-{n}".encode() * 20) for n in range(PER_PARTITION)]

    check_reads()
    # Rolled segments are synced in the background; once that is done, the budget holds.
    wait_for(lambda: len(open_segment_files(b.pid)) <= BUDGET, 10,
             f"at most {BUDGET} open segment files")
    b.kill()
    b.start()
    check_reads()
    wait_for(lambda: len(open_segment_files(b.pid)) <= BUDGET, 10,
             f"at most {BUDGET} open segment files after a restart")
    assert f"max_open_segment_files={BUDGET}" in b.stderr_tail(400)
    # The gauges agree with /proc.
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
        families = {f.name: f for f in text_string_to_metric_families(r.read().decode())}
    [budget] = families["sluice_log_segment_files_open_max"].samples
    [open_now] = families["sluice_log_segment_files_open"].samples
    assert budget.value == BUDGET
    assert 1 <= open_now.value <= BUDGET
