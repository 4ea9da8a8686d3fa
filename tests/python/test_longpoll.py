"""Fetch long-polling: a parked fetch is woken by an append (not by a timer), and an idle
broker with an idle long-polling consumer does not spin."""

from __future__ import annotations

import json
import os
import threading
import time

from confluent_kafka import TopicPartition

from e2e import assigned_consumer, create_topic, producer, unique_topic, wait_for

MAX_WAIT_MS = 5000


class StatsConsumer:
    """An assigned confluent-kafka consumer whose librdkafka statistics are kept, so a test
    can tell when a Fetch request is outstanding at the partition leader."""

    def __init__(self, bootstrap, topic):
        self.stats = None
        self.c = assigned_consumer(bootstrap, **{
            "fetch.wait.max.ms": MAX_WAIT_MS,
            "fetch.min.bytes": 1,
            "statistics.interval.ms": 50,
            "stats_cb": self._on_stats,
        })
        self.topic = topic
        self.c.assign([TopicPartition(topic, 0, 0)])

    def _on_stats(self, raw):
        self.stats = json.loads(raw)

    def fetch_parked(self, next_offset: int) -> bool:
        """True when the partition is actively fetching at `next_offset` and its leader has a
        request outstanding (the Fetch the broker is holding)."""
        s = self.stats
        if not s:
            return False
        part = s.get("topics", {}).get(self.topic, {}).get("partitions", {}).get("0")
        if not part or part.get("fetch_state") != "active" or part.get("next_offset") != next_offset:
            return False
        leader = part.get("leader")
        for br in s.get("brokers", {}).values():
            if br.get("nodeid") == leader and br.get("state") == "UP" and br.get("waitresp_cnt", 0) >= 1:
                return True
        return False

    def poll_until(self, cond, timeout, what):
        deadline = time.monotonic() + timeout
        while not cond():
            m = self.c.poll(0.05)
            assert m is None or m.error() is None, m.error()
            assert m is None, f"unexpected message at offset {m.offset()} while waiting for {what}"
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; stats: {json.dumps(self.stats)[:3000]}")

    def close(self):
        self.c.close()


def test_fetch_wakes_on_append(broker):
    topic = unique_topic("lp")
    create_topic(broker.bootstrap, topic, 1)
    sc = StatsConsumer(broker.bootstrap, topic)
    p = producer(broker.bootstrap, **{"linger.ms": 0, "acks": "all"})
    latencies = []
    try:
        for i in range(5):
            # wait until the consumer's Fetch for offset i is parked at the broker
            sc.poll_until(lambda: sc.fetch_parked(i), 30, f"a parked fetch at offset {i}")
            acked = {}
            p.produce(topic, value=f"wake-{i}".encode(), partition=0,
                      on_delivery=lambda err, msg: acked.update(err=err, t=time.monotonic()))
            sent_at = time.monotonic()
            got = None
            deadline = sent_at + MAX_WAIT_MS / 1000 + 5
            while got is None and time.monotonic() < deadline:
                p.poll(0)
                got = sc.c.poll(0.005)
            received_at = time.monotonic()
            assert p.flush(10) == 0 and acked["err"] is None
            assert got is not None and got.error() is None, got and got.error()
            assert (got.offset(), got.value()) == (i, f"wake-{i}".encode())
            latencies.append((received_at - sent_at, received_at - acked["t"]))
    finally:
        sc.close()
    print(f"produce->receipt, ack->receipt latencies (s): {latencies}")
    worst_send, worst_append = max(l[0] for l in latencies), max(l[1] for l in latencies)
    # a broker that polled on a timer, or answered only at max wait, would show ~seconds here
    assert worst_send < 0.5, f"produce->receipt latencies {latencies}"
    assert worst_append < 0.5, f"ack->receipt latencies {latencies}"


def test_idle_longpoll_uses_no_cpu(broker):
    topic = unique_topic("lp-idle")
    create_topic(broker.bootstrap, topic, 1)
    sc = StatsConsumer(broker.bootstrap, topic)
    stop = threading.Event()
    try:
        sc.poll_until(lambda: sc.fetch_parked(0), 30, "a parked fetch")

        def spin():
            while not stop.is_set():
                m = sc.c.poll(0.1)
                assert m is None

        t = threading.Thread(target=spin, daemon=True)
        t.start()
        hz = os.sysconf("SC_CLK_TCK")
        window = 3.0
        t0, c0 = time.monotonic(), broker.cpu_ticks()
        time.sleep(window)  # the measurement window itself
        t1, c1 = time.monotonic(), broker.cpu_ticks()
        stop.set()
        t.join(5)
    finally:
        stop.set()
        sc.close()
    share = (c1 - c0) / hz / (t1 - t0)
    print(f"idle broker CPU: {c1 - c0} ticks in {t1 - t0:.2f}s = {share:.2%} of a core")
    assert share < 0.05, f"idle broker used {share:.1%} of a core ({c1 - c0} ticks in {t1 - t0:.2f}s)"


def test_fetch_returns_at_max_wait_when_nothing_arrives(broker):
    """The parked fetch is answered (empty) once max wait passes, and the consumer keeps
    re-fetching: librdkafka's fetch request count grows by about one per max wait."""
    topic = unique_topic("lp-timeout")
    create_topic(broker.bootstrap, topic, 1)
    sc = StatsConsumer(broker.bootstrap, topic)
    try:
        sc.poll_until(lambda: sc.fetch_parked(0), 30, "a parked fetch")

        def fetch_count():
            s = sc.stats
            leader = s["topics"][topic]["partitions"]["0"]["leader"]
            for br in s["brokers"].values():
                if br.get("nodeid") == leader:
                    return br["req"].get("Fetch", 0)
            return 0

        first = fetch_count()
        t0 = time.monotonic()
        sc.poll_until(lambda: fetch_count() >= first + 1, MAX_WAIT_MS / 1000 + 10, "the next fetch")
        waited = time.monotonic() - t0
        # the parked fetch was held (not answered at once), and answered around max wait
        assert waited > 1.0, f"fetch answered after {waited:.2f}s: not long-polling"
        assert waited < MAX_WAIT_MS / 1000 + 3, f"fetch held {waited:.2f}s, longer than max wait"
    finally:
        sc.close()
