"""Chaos on a three-broker cluster: one broker at a time is killed (SIGKILL), paused
(SIGSTOP past the session timeout), restarted cleanly, or cut off from the others and from
etcd, while producers write; and an acks=all retry meets followers that do not fetch.
Each test checks what a user would: every acknowledged record is there at the offset its
delivery report gave, in order and exactly once, the ISR is full again, and the replicas
hold byte-identical logs."""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from kafka.protocol.metadata import MetadataRequest

import wire
from cluster import create_topic, produce, segment_bytes

NOT_LEADER_OR_FOLLOWER = 6
REQUEST_TIMED_OUT = 7
# Short sessions and lag times: a dead broker is noticed in seconds.
SETTINGS = {
    "broker.session.timeout.ms": 3000,
    "broker.heartbeat.interval.ms": 500,
    "replica.lag.time.max.ms": 3000,
}
KILL_CYCLES = int(os.environ.get("SLUICE_CHAOS_KILL_CYCLES", "20"))


class Load:
    """An idempotent acks=all producer writing numbered values (b"<partition>:<seq>") to
    every partition of a topic from a background thread, until stopped; every delivery
    report is kept."""

    # Records queued or in flight at most: while a leader is away the producer waits.
    MAX_QUEUED = 300

    def __init__(self, cluster, topic: str, partitions: int, extra: dict | None = None):
        self.topic = topic
        self.partitions = partitions
        self.conf = {
            "bootstrap.servers": cluster.bootstrap, "acks": "all", "enable.idempotence": True,
            "linger.ms": 5, "message.timeout.ms": 120000, "error_cb": self._client_error,
            **(extra or {}),
        }
        self.acked: dict[int, list[tuple[int, int]]] = {p: [] for p in range(partitions)}
        self.failed: list[tuple[int, int, object]] = []
        self.client_errors: list[object] = []
        self.sent = [0] * partitions
        self.undelivered: int | None = None
        self.crash: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"load-{topic}", daemon=True)

    def start(self) -> "Load":
        self._thread.start()
        return self

    def acked_in(self, partition: int) -> int:
        return len(self.acked[partition])

    def _client_error(self, err):
        self.client_errors.append(err)

    def _report(self, err, msg):
        seq = int(msg.value().split(b":")[1])
        if err is not None:
            self.failed.append((msg.partition(), seq, err))
        else:
            self.acked[msg.partition()].append((msg.offset(), seq))

    def _run(self):
        try:
            p = Producer(self.conf)
            while not self._stop.is_set():
                if len(p) >= self.MAX_QUEUED:
                    p.poll(0.01)  # serves delivery reports; the queue drains as acks come
                    continue
                for part in range(self.partitions):
                    p.produce(self.topic, f"{part}:{self.sent[part]:09d}".encode(), partition=part,
                              on_delivery=self._report)
                    self.sent[part] += 1
                p.poll(0.002)  # paces the load (a few hundred records a second per partition)
            self.undelivered = p.flush(120)
        except BaseException as e:  # reported by stop()
            self.crash = e

    def stop(self):
        self._stop.set()
        self._thread.join(150)
        assert not self._thread.is_alive(), "the producer did not finish flushing"
        assert self.crash is None, f"the producer thread failed: {self.crash!r}"
        assert self.undelivered == 0, f"{self.undelivered} records never delivered"
        assert not self.failed, f"delivery errors: {self.failed[:10]}"
        fatal = [e for e in self.client_errors if e.fatal()]
        assert not fatal, f"fatal producer errors: {fatal}"


def read_partition(cluster, topic: str, partition: int, timeout: float = 60) -> list[tuple[int, bytes]]:
    """Every record of the partition, (offset, value), from its log start to its high
    watermark, as a consumer reads them from the leader."""
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": f"check-{uuid.uuid4().hex[:8]}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        tp = TopicPartition(topic, partition)
        low, high = c.get_watermark_offsets(tp, timeout=10)
        assert low == 0, f"{topic}-{partition} starts at {low}"
        c.assign([TopicPartition(topic, partition, low)])
        out: list[tuple[int, bytes]] = []
        deadline = time.monotonic() + timeout
        while len(out) < high - low:
            assert time.monotonic() < deadline, f"read {len(out)} of {high - low} records of {topic}-{partition}"
            m = c.poll(0.5)
            if m is None:
                continue
            assert m.error() is None, m.error()
            out.append((m.offset(), m.value()))
        return out
    finally:
        c.close()


def check_load(cluster, load: Load):
    """Each partition holds exactly the values the producer sent, each once, in order and
    at consecutive offsets; every acknowledged value is at the offset its report gave."""
    for part in range(load.partitions):
        records = read_partition(cluster, load.topic, part)
        assert [o for o, _ in records] == list(range(len(records))), "offsets with a gap"
        prefixes = {v.split(b":")[0] for _, v in records}
        assert prefixes <= {str(part).encode()}, f"values of another partition: {prefixes}"
        seqs = [int(v.split(b":")[1]) for _, v in records]
        missing = sorted(set(range(load.sent[part])) - set(seqs))
        assert not missing, f"partition {part} lost {len(missing)} records, first {missing[:10]}"
        assert seqs == list(range(load.sent[part])), \
            f"partition {part} holds duplicates or reordered records ({len(seqs)} for {load.sent[part]} sent)"
        wrong = [(o, s) for o, s in load.acked[part] if o >= len(seqs) or seqs[o] != s]
        assert not wrong, f"acknowledged (offset, seq) not where the delivery report said: {wrong[:10]}"
        assert len(load.acked[part]) == load.sent[part]


def views(cluster, topic: str) -> dict[int, dict[int, tuple[int, list[int]]]]:
    """Each reachable broker's own Metadata answer: {node id: {partition: (leader, ISR)}}.
    Asked one by one, since a broker back from a pause or a cut may answer from its old
    view until it has read the new one."""
    out = {}
    for node_id, b in cluster.brokers.items():
        if not b.running() or node_id in cluster.paused:
            continue
        with wire.Conn(b.host, b.port, timeout=5) as conn:
            request = MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name=topic)],
                                      allow_auto_topic_creation=False)
            (t,) = wire.call(conn, request, 12).topics
        out[node_id] = {p.partition_index: (p.leader_id, sorted(p.isr_nodes)) for p in t.partitions}
    return out


def wait_isr_full(cluster, topic: str, timeout: float = 60):
    """Until every broker answers that each partition is led, with every replica in sync."""
    ids = sorted(cluster.brokers)

    def agreed():
        seen = views(cluster, topic)
        return (sorted(seen) == ids and len({str(v) for v in seen.values()}) == 1
                and all(leader in ids and isr == ids for leader, isr in seen[ids[0]].values()))

    cluster.wait_for(agreed, timeout=timeout, what=f"every broker seeing {topic} led, with full ISRs")


def wait_replicas_identical(cluster, topic: str, partitions: int, node_ids: list[int] | None = None):
    brokers = [cluster.brokers[i] for i in (node_ids or sorted(cluster.brokers))]
    for part in range(partitions):
        cluster.wait_for(lambda: len({segment_bytes(b, topic, part) for b in brokers}) == 1,
                         what=f"replicas of {topic}-{part} byte-identical")
        assert segment_bytes(brokers[0], topic, part)


def wait_new_leader(cluster, topic: str, partition: int, old: int, timeout: float = 30) -> int:
    return cluster.wait_for(
        lambda: (lambda p: p.leader if p.leader not in (-1, old) and old not in p.isrs else None)(
            cluster.partition(topic, partition)),
        timeout=timeout, what=f"{topic}-{partition} led by another broker than {old}, without it in the ISR")


def raw_produce(conn: wire.Conn, correlation_id: int, topic: str, values: list[bytes], acks: int,
                timeout_ms: int = 10000) -> None:
    """Sends one Produce (v8, one batch, no producer id) without waiting for the answer."""
    batch = wire.record_batch([(None, v) for v in values], int(time.time() * 1000))
    conn.send(wire.frame(wire.produce_request(8, correlation_id, topic, 0, batch, acks=acks,
                                              timeout_ms=timeout_ms)))


def answer(conn: wire.Conn) -> tuple[int, int]:
    """The next Produce answer on `conn`: (error code, base offset) of its one partition."""
    _, results = wire.parse_produce_response(8, conn.recv_frame())
    [(_, _, error, base_offset)] = results
    return error, base_offset


def test_repeated_leader_kills_under_load_lose_no_acknowledged_write(cluster_factory):
    cluster = cluster_factory(3, overrides=SETTINGS)
    create_topic(cluster, "kills", 3, configs={"min.insync.replicas": "2"})
    load = Load(cluster, "kills", 3).start()
    try:
        cluster.wait_for(lambda: all(load.acked_in(p) > 100 for p in range(3)), what="the load running")
        for cycle in range(KILL_CYCLES):
            part = cycle % 3
            victim = cluster.leader("kills", part)
            acked_before = load.acked_in(part)
            cluster.brokers[victim].kill()
            wait_new_leader(cluster, "kills", part, victim)
            cluster.wait_for(lambda: load.acked_in(part) > acked_before + 100, timeout=30,
                             what=f"cycle {cycle}: acknowledgements from the new leader of kills-{part}")
            cluster.brokers[victim].start()
            wait_isr_full(cluster, "kills")
    finally:
        load.stop()
    check_load(cluster, load)
    wait_replicas_identical(cluster, "kills", 3)


def test_a_paused_leader_is_replaced_and_its_stale_writes_are_never_acknowledged(cluster_factory):
    cluster = cluster_factory(3, overrides=SETTINGS)
    create_topic(cluster, "paused", 1, configs={"min.insync.replicas": "2"})
    first = produce(cluster, "paused", [f"first-{i}".encode() for i in range(300)], partition=0)
    old = cluster.leader("paused", 0)
    ob = cluster.brokers[old]
    with wire.Conn(ob.host, ob.port, timeout=30) as stale:
        cluster.pause(old)
        # Both requests wait in the socket until the paused leader runs again, long after it
        # lost the leadership it still believes it has.
        raw_produce(stale, 1, "paused", [b"stale-acks-1"], acks=1)
        raw_produce(stale, 2, "paused", [b"stale-acks-all"], acks=-1, timeout_ms=5000)
        new = wait_new_leader(cluster, "paused", 0, old)
        second = produce(cluster, "paused", [f"second-{i}".encode() for i in range(300)], partition=0)
        cluster.resume(old)
        # acks=1 may be taken by the stale leader before it learns (Kafka's acks=1); acks=all
        # must not be: its high watermark cannot move without the ISR.
        answer(stale)
        error, _ = answer(stale)
        assert error != 0, "a stale leader acknowledged an acks=all write"

    # Back, it follows: it refuses writes and points at the new leader.
    def refuses():
        with wire.Conn(ob.host, ob.port) as conn:
            raw_produce(conn, 3, "paused", [b"probe"], acks=-1, timeout_ms=1000)
            return answer(conn)[0] == NOT_LEADER_OR_FOLLOWER

    cluster.wait_for(refuses, what="the resumed broker refusing writes as a follower")
    wait_isr_full(cluster, "paused")
    assert cluster.leader("paused", 0) == new
    third = produce(cluster, "paused", [f"third-{i}".encode() for i in range(100)], partition=0)
    acked = first + second + third
    records = read_partition(cluster, "paused", 0)
    assert records == [(o, v) for _, o, v in acked], "exactly the acknowledged records, in order"
    wait_replicas_identical(cluster, "paused", 1)


def test_a_rolling_restart_under_load_loses_nothing(cluster_factory):
    cluster = cluster_factory(3, overrides=SETTINGS)
    create_topic(cluster, "rolling", 3, configs={"min.insync.replicas": "2"})
    load = Load(cluster, "rolling", 3).start()
    try:
        cluster.wait_for(lambda: all(load.acked_in(p) > 100 for p in range(3)), what="the load running")
        for node_id, b in cluster.brokers.items():
            acked_before = [load.acked_in(p) for p in range(3)]
            assert b.stop() == 0, "a clean shutdown exits 0"
            cluster.wait_for(lambda: all(p.leader not in (-1, node_id) for p in
                                         cluster.metadata("rolling").topics["rolling"].partitions.values()),
                             what=f"leadership moved off broker {node_id}")
            cluster.wait_for(lambda: all(load.acked_in(p) > acked_before[p] + 100 for p in range(3)),
                             what=f"the load going on without broker {node_id}")
            b.start()
            wait_isr_full(cluster, "rolling")
    finally:
        load.stop()
    check_load(cluster, load)
    wait_replicas_identical(cluster, "rolling", 3)


def test_a_divergent_tail_is_truncated_end_to_end(cluster_factory):
    # The lag time is long enough that the leader keeps its followers in the ISR for the
    # moment it stays alone: the next leader must come from them.
    cluster = cluster_factory(3, overrides={**SETTINGS, "replica.lag.time.max.ms": 10000})
    create_topic(cluster, "diverge", 1)
    first = produce(cluster, "diverge", [f"first-{i}".encode() for i in range(200)], partition=0)
    old = cluster.leader("diverge", 0)
    ob = cluster.brokers[old]
    followers = [i for i in cluster.brokers if i != old]
    with wire.Conn(ob.host, ob.port) as conn:
        # acks=1 records that the followers copy: they survive the leader.
        replicated = [f"replicated-{i}".encode() for i in range(20)]
        raw_produce(conn, 1, "diverge", replicated, acks=1)
        assert answer(conn) == (0, len(first))
        cluster.wait_for(lambda: len({segment_bytes(b, "diverge", 0) for b in cluster.brokers.values()}) == 1,
                         what="the followers holding the acks=1 records")
        # The followers die (SIGKILL, not SIGSTOP: a paused follower may still receive the
        # answer to a fetch it sent before, and copy the records after all).
        for f in followers:
            cluster.brokers[f].kill()
        divergent = [f"divergent-{i}".encode() for i in range(30)]
        raw_produce(conn, 2, "diverge", divergent, acks=1)
        assert answer(conn) == (0, len(first) + len(replicated)), "acks=1 needs the leader only"
    ob.kill()
    assert b"divergent-29" in segment_bytes(ob, "diverge", 0), "the old leader's tail holds what no follower has"
    for f in followers:
        cluster.brokers[f].start()
    new = wait_new_leader(cluster, "diverge", 0, old)
    assert new in followers
    after = produce(cluster, "diverge", [f"after-{i}".encode() for i in range(50)], partition=0)
    assert after[0][1] == len(first) + len(replicated), "the new leader's epoch starts after what it copied"
    ob.start()
    wait_isr_full(cluster, "diverge")
    records = read_partition(cluster, "diverge", 0)
    expected = [v for _, _, v in first] + replicated + [v for _, _, v in after]
    assert [v for _, v in records] == expected, "lost: exactly the acks=1 records no follower had"
    assert [o for o, _ in records] == list(range(len(expected)))
    wait_replicas_identical(cluster, "diverge", 1, [new, old])
    assert b"divergent-" not in segment_bytes(ob, "diverge", 0), "the old leader truncated its divergent tail"
    wait_replicas_identical(cluster, "diverge", 1)


def test_an_acks_all_retry_is_acknowledged_only_once_replicated(cluster_factory):
    # Sessions long enough that the paused followers stay in the ISR throughout.
    cluster = cluster_factory(3, overrides={**SETTINGS, "broker.session.timeout.ms": 8000,
                                            "replica.lag.time.max.ms": 10000})
    create_topic(cluster, "retried", 1, configs={"min.insync.replicas": "2"})
    first = produce(cluster, "retried", [f"first-{i}".encode() for i in range(100)], partition=0)
    leader = cluster.brokers[cluster.leader("retried", 0)]
    followers = [i for i, b in cluster.brokers.items() if b is not leader]
    with wire.Conn(leader.host, leader.port) as conn:
        _, error, pid, epoch = wire.parse_init_producer_id_response(conn.request(wire.init_producer_id_request(1)))
        assert error == 0
        batch = wire.record_batch([(None, b"retried")], int(time.time() * 1000), producer_id=pid,
                                  producer_epoch=epoch, base_sequence=0)

        def send(correlation_id: int) -> tuple[int, int]:
            conn.send(wire.frame(wire.produce_request(8, correlation_id, "retried", 0, batch, acks=-1,
                                                      timeout_ms=500)))
            return answer(conn)

        for f in followers:
            cluster.pause(f)
        # No follower fetches: the leader holds the batch alone, so neither the first
        # attempt nor the producer's retry of it (a duplicate) may be acknowledged.
        assert send(2) == (REQUEST_TIMED_OUT, -1)
        assert send(3) == (REQUEST_TIMED_OUT, -1), "a retry acknowledged a batch only the leader has"
        for f in followers:
            cluster.resume(f)
        # Copied, the retry is acknowledged, at the offset of the first attempt.
        acked = cluster.wait_for(lambda: (lambda r: r if r[0] == 0 else None)(send(4)),
                                 what="the retry acknowledged once the followers copied the batch")
        assert acked == (0, len(first))
    records = read_partition(cluster, "retried", 0)
    assert [v for _, v in records] == [v for _, _, v in first] + [b"retried"], "the batch once, after the others"
    wait_replicas_identical(cluster, "retried", 1)


# -- cut off: iptables drops every packet of one broker --------------------------------------
CUT_GROUP = 65534  # nogroup: the cut broker runs as root with this group, so that its packets match


def iptables(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["iptables", "-w", "5", *args], capture_output=True, text=True, timeout=30)


def iptables_usable() -> str | None:
    """None when this process may add and remove iptables rules with the owner match;
    otherwise why not."""
    if os.geteuid() != 0:
        return "iptables needs root"
    tag = ["-m", "comment", "--comment", f"sluice-probe-{os.getpid()}"]
    probes = [  # the matches Cut uses, each with a harmless target
        ["OUTPUT", "-o", "lo", "-m", "owner", "--gid-owner", str(CUT_GROUP), *tag, "-j", "ACCEPT"],
        ["INPUT", "-i", "lo", "-m", "connmark", "--mark", Cut.MARK, *tag, "-j", "ACCEPT"],
    ]
    for probe in probes:
        try:
            added = iptables("-I", *probe)
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"iptables cannot run: {e}"
        if added.returncode != 0:
            return f"iptables refused a rule ({' '.join(probe)}): {added.stderr.strip()}"
        iptables("-D", *probe)
    return None


class Cut:
    """Rules that cut one broker off both ways: nothing it sends leaves (its packets match
    by its group), nothing reaches its listener, and nothing reaches it on the connections
    it opened (to etcd, to the leaders it fetches from), which its first packet after the
    cut marks."""

    MARK = "0x5c"

    def __init__(self, broker):
        tag = ["-m", "comment", "--comment", f"sluice-cut-{uuid.uuid4().hex[:8]}"]
        mine = ["-o", "lo", "-m", "owner", "--gid-owner", str(CUT_GROUP), *tag]
        # (chain, position, rule): inserted at the top, in this order
        self.rules = [
            ["OUTPUT", "1", *mine, "-j", "CONNMARK", "--set-mark", self.MARK],
            ["OUTPUT", "2", *mine, "-j", "DROP"],
            ["INPUT", "1", "-i", "lo", "-m", "connmark", "--mark", self.MARK, *tag, "-j", "DROP"],
            ["INPUT", "2", "-i", "lo", "-p", "tcp", "--dport", str(broker.port), *tag, "-j", "DROP"],
        ]
        self.active: list[list[str]] = []

    def apply(self):
        for chain, position, *rule in self.rules:
            r = iptables("-I", chain, position, *rule)
            assert r.returncode == 0, r.stderr
            self.active.append([chain, *rule])

    def heal(self):
        while self.active:
            rule = self.active.pop()
            r = iptables("-D", *rule)
            assert r.returncode == 0, r.stderr


def test_a_leader_cut_off_from_the_cluster_and_etcd_loses_no_acknowledged_write(cluster_factory):
    why = iptables_usable()
    if why is not None:
        pytest.skip(f"cutting a broker off needs iptables: {why}")
    cluster = cluster_factory(3, overrides=SETTINGS, start=False)
    cut_id = 3
    cut_broker = cluster.brokers[cut_id]
    cut_broker.group = CUT_GROUP
    cluster.start()
    # Broker 3 leads partition 0 and follows partition 1.
    create_topic(cluster, "cut", 2, assignment=[[3, 1, 2], [1, 3, 2]],
                 configs={"min.insync.replicas": "2"})
    # Requests stuck on the cut broker time out in seconds, then go to the new leader.
    load = Load(cluster, "cut", 2, extra={"request.timeout.ms": 5000, "socket.timeout.ms": 5000})
    cut = Cut(cut_broker)
    try:
        load.start()
        cluster.wait_for(lambda: all(load.acked_in(p) > 100 for p in range(2)), what="the load running")
        cut.apply()
        cluster.paused.add(cut_id)  # unreachable: leave it out of the clients' bootstrap
        acked_before = [load.acked_in(p) for p in range(2)]
        wait_new_leader(cluster, "cut", 0, cut_id)
        cluster.wait_for(lambda: cut_id not in cluster.partition("cut", 1).isrs,
                         what="the cut broker out of partition 1's ISR")
        cluster.wait_for(lambda: all(load.acked_in(p) > acked_before[p] + 100 for p in range(2)),
                         timeout=60, what="the load going on without the cut broker")
        cut.heal()
        cluster.paused.discard(cut_id)
        wait_isr_full(cluster, "cut")
    finally:
        cut.heal()
        load.stop()
    check_load(cluster, load)
    wait_replicas_identical(cluster, "cut", 2)
