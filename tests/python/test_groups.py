"""The group coordinator (FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
OffsetCommit, OffsetFetch, OffsetDelete, ListGroups, DescribeGroups, DeleteGroups, and
KIP-848's ConsumerGroupHeartbeat) driven by unmodified clients: confluent-kafka
(librdkafka), kafka-python, kafkajs (tests/js/group.js) and kcat -G; protocol details and
error codes with raw requests built from kafka-python's protocol classes.

confluent-kafka group members run as separate processes (group_member.py) so that one can
be killed with SIGKILL; each prints what it does as JSON lines (assignments, processed
messages, commits, errors) which the tests read back. Every wait is a poll with a deadline.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import (
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    ConsumerGroupType,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from kafka import KafkaConsumer
from kafka import TopicPartition as KpTopicPartition
from kafka.admin import KafkaAdminClient, MemberToRemove
from kafka.coordinator.base import BaseCoordinator
from kafka.errors import InvalidSessionTimeoutError, GroupSubscribedToTopicError, NoError
from kafka.net.compat import KafkaNetClient
from kafka.protocol.admin import DescribeGroupsRequest
from kafka.protocol.metadata import FindCoordinatorRequest
from kafka.protocol.consumer import (
    HeartbeatRequest,
    JoinGroupRequest,
    LeaveGroupRequest,
    OffsetCommitRequest,
    OffsetFetchRequest,
    SyncGroupRequest,
)

import wire
from e2e import admin, create_topic, produce_and_report, producer, unique_topic, wait_for

HERE = Path(__file__).resolve().parent
JS_DIR = HERE.parent / "js"
MEMBER_SCRIPT = HERE / "group_member.py"

SESSION_MS = 6000  # Kafka's default group.min.session.timeout.ms
HEARTBEAT_MS = 500
# the first rebalance of an empty group completes at once (Kafka's default waits 3 s)
FAST = {"group.initial.rebalance.delay.ms": 0}

# Kafka error codes
NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
OFFSET_METADATA_TOO_LARGE = 12
NOT_COORDINATOR = 16
ILLEGAL_GENERATION = 22
INCONSISTENT_GROUP_PROTOCOL = 23
INVALID_GROUP_ID = 24
UNKNOWN_MEMBER_ID = 25
REBALANCE_IN_PROGRESS = 27
MEMBER_ID_REQUIRED = 79
FENCED_INSTANCE_ID = 82


def unique_group(prefix: str = "g") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# --- confluent-kafka members as processes -----------------------------------------------------

class Member:
    """One group_member.py process and the events it printed."""

    def __init__(self, name: str, bootstrap: str, group: str, topics: list[str], workdir: Path,
                 conf: dict | None = None, commit: str = "none", batch: int = 50, delay_ms: float = 0):
        self.name = name
        cfg = {"bootstrap": bootstrap, "group": group, "topics": topics, "conf": conf or {},
               "commit": commit, "batch": batch, "delay_ms": delay_ms}
        self.stderr_path = workdir / f"member-{name}-{uuid.uuid4().hex[:6]}.stderr.log"
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(MEMBER_SCRIPT), json.dumps(cfg)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1, cwd=HERE)
        self._events: list[dict] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, name=f"member-{name}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                ev = {"ev": "garbage", "line": line}
            ev["ts"] = time.monotonic()
            with self._lock:
                self._events.append(ev)

    # -- what it printed -------------------------------------------------------------------
    def events(self, *kinds: str) -> list[dict]:
        with self._lock:
            return [e for e in self._events if not kinds or e["ev"] in kinds]

    @property
    def assignment(self) -> frozenset | None:
        """Partitions of the latest whole-assignment report; None before the first."""
        evs = self.events("assignment")
        return frozenset(p for _, p in evs[-1]["partitions"]) if evs else None

    @property
    def assignment_tps(self) -> frozenset | None:
        """(topic, partition) pairs of the latest whole-assignment report."""
        evs = self.events("assignment")
        return frozenset((t, p) for t, p in evs[-1]["partitions"]) if evs else None

    def processed(self) -> list[tuple[int, int]]:
        return [(e["p"], e["o"]) for e in self.events("msg")]

    def last_commits(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for e in self.events("commit"):
            for _, p, o in e["offsets"]:
                out[p] = o
        return out

    def errors(self) -> list[dict]:
        return [{k: v for k, v in e.items() if k != "ts"} for e in self.events("error", "commit_error", "garbage")]

    # -- lifecycle ---------------------------------------------------------------------------
    def running(self) -> bool:
        return self.proc.poll() is None

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def close(self, timeout: float = 30) -> None:
        """Asks the member to close() its consumer (LeaveGroup) and exit."""
        if self.running():
            try:
                self.proc.stdin.write("close\n")
                self.proc.stdin.flush()
            except BrokenPipeError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"member {self.name} did not close within {timeout}s\n{self.stderr_tail()}")
        self._reader.join(10)
        assert self.proc.returncode == 0, f"member {self.name} exited {self.proc.returncode}\n{self.stderr_tail()}"
        assert self.events("closed"), f"member {self.name} exited without closing its consumer"

    def kill(self) -> None:
        """SIGKILL: no LeaveGroup, no commit, nothing."""
        if self.running():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._reader.join(10)

    def stderr_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.stderr_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def summary(self) -> str:
        evs = [e for e in self.events() if e["ev"] != "msg"]
        return (f"--- member {self.name} (exit {self.proc.returncode}): {len(self.processed())} processed, "
                f"last events: {evs[-15:]}\nstderr tail:\n{self.stderr_tail()}")


@pytest.fixture
def members(request, tmp_path, broker_factory):
    """members(name, broker, group, topics, **kw) -> Member; all are killed after the test
    (before the brokers stop). A failed test prints every member's last events."""
    made: list[Member] = []

    def make(name, broker, group, topics, **kw) -> Member:
        m = Member(name, broker.bootstrap, group, topics, tmp_path, **kw)
        made.append(m)
        return m

    yield make
    for m in made:
        m.kill()
    if getattr(request.node, "_sluice_failed", False):
        for m in made:
            print(m.summary())


def exact_cover(ms, partitions, balanced: bool = True):
    """{name: sorted partitions} when the members' current assignments own every partition
    exactly once (and, when `balanced`, each holds its fair share); else None."""
    partitions = set(partitions)
    views = [m.assignment for m in ms]
    if any(v is None for v in views):
        return None
    if sum(len(v) for v in views) != len(partitions) or set().union(*views) != partitions:
        return None
    if balanced:
        sizes = [len(v) for v in views]
        if max(sizes) - min(sizes) > 1 or (len(partitions) >= len(ms) and min(sizes) == 0):
            return None
    return {m.name: sorted(v) for m, v in zip(ms, views)}


def no_errors(ms) -> dict:
    return {m.name: m.errors() for m in ms if m.errors()}


def committed_offsets(bootstrap: str, group: str) -> dict[tuple[str, int], int]:
    """The group's committed offsets read back with confluent-kafka's AdminClient."""
    a = admin(bootstrap)
    fs = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=30)
    res = fs[group].result(30)
    return {(tp.topic, tp.partition): tp.offset for tp in res.topic_partitions if tp.error is None}


def keyed_messages(bootstrap: str, topic: str, n: int, prefix: str = "k", partitions: int | None = None):
    """Produces n messages (key prefix-i, value v-i); with `partitions`, message i goes to
    partition i % partitions. Returns {(partition, offset): key}."""
    p = producer(bootstrap, **{"reconnect.backoff.max.ms": 1000})
    items = [(topic, f"{prefix}-{i:05d}".encode(), f"v-{i}".encode(), None,
              None if partitions is None else i % partitions) for i in range(n)]
    reports = produce_and_report(p, items)
    assert [r[0] for r in reports] == [None] * n, [r[0] for r in reports if r[0] is not None][:3]
    return {(part, off): items[i][1].decode() for i, (_, part, off) in enumerate(reports)}


# --- membership changes -----------------------------------------------------------------------

def test_confluent_three_members_then_four_then_one_leaves(broker_factory, members):
    b = broker_factory(overrides=FAST)
    topic = unique_topic("grp")
    create_topic(b.bootstrap, topic, 12)
    group = unique_group()
    ms = [members(f"m{i}", b, group, [topic]) for i in range(3)]

    own = wait_for(lambda: exact_cover(ms, range(12)), 30, "3 members to own 4 partitions each")
    assert sorted(len(v) for v in own.values()) == [4, 4, 4], own

    ms.append(members("m3", b, group, [topic]))
    own = wait_for(lambda: exact_cover(ms, range(12)), 30, "4 members to own 3 partitions each")
    assert sorted(len(v) for v in own.values()) == [3, 3, 3, 3], own

    leaver = ms.pop(0)
    t0 = time.monotonic()
    leaver.close()
    own = wait_for(lambda: exact_cover(ms, range(12)), 30, f"3 members to take over {leaver.name}'s partitions")
    elapsed = time.monotonic() - t0
    assert sorted(len(v) for v in own.values()) == [4, 4, 4], own
    # LeaveGroup starts the rebalance at once; waiting out the session timeout would mean the
    # leave was ignored
    assert elapsed < SESSION_MS / 1000, f"rebalance after close() took {elapsed:.1f}s (session timeout {SESSION_MS} ms)"
    assert no_errors(ms + [leaver]) == {}


def test_initial_rebalance_delay_default_gathers_members_into_one_generation(broker_factory, members):
    """Kafka's default group.initial.rebalance.delay.ms (3 s): the first rebalance of an empty
    group waits for more members, so two consumers started together are assigned once."""
    b = broker_factory()
    topic = unique_topic("grp-delay")
    create_topic(b.bootstrap, topic, 12)
    group = unique_group("delay")
    t0 = time.monotonic()
    ms = [members(f"m{i}", b, group, [topic]) for i in range(2)]
    own = wait_for(lambda: exact_cover(ms, range(12)), 30, "2 members to own 6 partitions each")
    assert sorted(len(v) for v in own.values()) == [6, 6], own
    for m in ms:
        assigns, revokes = m.events("assign"), m.events("revoke", "lost")
        assert ([sorted(p for _, p in e["partitions"]) for e in assigns], revokes) == ([own[m.name]], []), \
            f"{m.name} went through more than one generation"
        waited = assigns[0]["ts"] - t0
        assert waited >= 3.0, f"{m.name} was assigned {waited:.2f}s after start, before the 3 s initial delay"
    assert no_errors(ms) == {}


def test_subscription_change_rebalances_the_group(broker_factory, members):
    """A member rejoining a stable group with different metadata (a new subscription) makes
    the coordinator rebalance: the leader sees the new subscription."""
    b = broker_factory(overrides=FAST)
    ta, tb = unique_topic("grp-sub-a"), unique_topic("grp-sub-b")
    create_topic(b.bootstrap, ta, 4)
    create_topic(b.bootstrap, tb, 2)
    group = unique_group("sub")
    ms = [members(f"m{i}", b, group, [ta]) for i in range(2)]
    wait_for(lambda: exact_cover(ms, range(4)), 30, "2 members to own 2 partitions of the first topic each")

    ms[1].send(f"subscribe {ta},{tb}")
    want_all = {(ta, p) for p in range(4)} | {(tb, p) for p in range(2)}

    def settled():
        views = [m.assignment_tps for m in ms]
        if None in views or sum(len(v) for v in views) != 6 or set().union(*views) != want_all:
            return None
        a0, a1 = views
        if {t for t, _ in a0} != {ta} or not {(tb, 0), (tb, 1)} <= a1 or len(a0) != 2:
            return None
        return {m.name: sorted(v) for m, v in zip(ms, views)}

    wait_for(settled, 30, "the second topic to be assigned to the member that subscribed to it")
    assert no_errors(ms) == {}


# --- kill -9 is detected by the session timeout -----------------------------------------------

def test_confluent_killed_member_detected_by_session_timeout(broker_factory, members):
    b = broker_factory(overrides=FAST)
    topic = unique_topic("grp-kill")
    create_topic(b.bootstrap, topic, 12)
    group = unique_group()
    ms = [members(f"m{i}", b, group, [topic]) for i in range(3)]
    wait_for(lambda: exact_cover(ms, range(12)), 30, "3 members to own 4 partitions each")

    victim = ms[1]
    orphaned = victim.assignment
    survivors = [ms[0], ms[2]]
    t0 = time.monotonic()
    victim.kill()
    margin = 9.0
    own = wait_for(lambda: exact_cover(survivors, range(12)), SESSION_MS / 1000 + margin + 5,
                   f"the 2 survivors to take over {sorted(orphaned)}")
    elapsed = time.monotonic() - t0
    assert sorted(len(v) for v in own.values()) == [6, 6], own
    assert elapsed <= SESSION_MS / 1000 + margin, f"takeover took {elapsed:.1f}s, session timeout is {SESSION_MS} ms"
    # the victim's last heartbeat was at most one interval before the kill: its session cannot
    # have expired sooner than that (a closed connection is not a LeaveGroup)
    assert elapsed >= SESSION_MS / 1000 - HEARTBEAT_MS / 1000 - 0.5, \
        f"the killed member's partitions moved after {elapsed:.1f}s, before its {SESSION_MS} ms session timeout"
    assert no_errors(survivors) == {}


# --- at-least-once with commits after processing ----------------------------------------------

def test_at_least_once_with_kill_then_exactly_once_with_clean_leaves(broker_factory, members):
    b = broker_factory(overrides=FAST)
    topic = unique_topic("grp-alo")
    create_topic(b.bootstrap, topic, 12)
    n = 3000
    expected = keyed_messages(b.bootstrap, topic, n)
    assert len(expected) == n
    ends = Counter(p for p, _ in expected)
    assert len(ends) == 12, f"keys did not spread over all partitions: {ends}"
    kw = {"commit": "sync", "batch": 50, "delay_ms": 2}

    # run 1: a member is killed mid-way; the others finish its partitions from its commits
    group = unique_group("alo")
    ms = [members(f"a{i}", b, group, [topic], **kw) for i in range(3)]
    victim = ms[2]
    wait_for(lambda: len(victim.processed()) >= 150, 30, "the victim to process 150 messages")
    victim.kill()
    victim_commits = victim.last_commits()
    victim_done = set(victim.processed())
    survivors = ms[:2]

    def all_seen():
        seen = set(victim_done)
        for m in survivors:
            seen.update(m.processed())
        return len(seen.intersection(expected)) == n

    wait_for(all_seen, 60, f"all {n} messages to be processed after the kill")
    counts = Counter(victim.processed())
    for m in survivors:
        counts.update(m.processed())
    assert set(counts) == set(expected), \
        f"processed offsets that were never produced: {sorted(set(counts) - set(expected))[:10]}"
    # replays only where the victim had processed beyond its last successful commit
    bad = sorted((p, o, c) for (p, o), c in counts.items()
                 if c > 1 and not ((p, o) in victim_done and o >= victim_commits.get(p, 0) and c == 2))
    assert bad == [], (f"duplicates not explained by the victim's uncommitted work (partition, offset, times): "
                       f"{bad[:20]}; victim's last commits {victim_commits}")
    assert no_errors(survivors) == {}
    for m in survivors:
        m.close()

    # run 2: a member joins and one leaves cleanly mid-way: everything processed exactly once
    group2 = unique_group("eo")
    ms = [members(f"c{i}", b, group2, [topic], **kw) for i in range(2)]
    total = lambda: sum(len(m.processed()) for m in ms)  # noqa: E731
    wait_for(lambda: total() >= 300, 30, "300 messages processed")
    ms.append(members("c2", b, group2, [topic], **kw))
    wait_for(lambda: ms[2].assignment, 30, "the third member to get partitions")
    ms[0].close()
    wait_for(lambda: len({po for m in ms for po in m.processed()}) >= n, 60, f"all {n} messages processed")
    for m in ms[1:]:
        m.close()
    counts = Counter(po for m in ms for po in m.processed())
    assert set(counts) == set(expected)
    dups = sorted((po, c) for po, c in counts.items() if c > 1)
    assert dups == [], f"{len(dups)} messages processed twice in a run where every member closed cleanly: {dups[:20]}"
    assert no_errors(ms) == {}
    assert committed_offsets(b.bootstrap, group2) == {(topic, p): ends[p] for p in range(12)}


# --- committed offsets with metadata, across a restart ----------------------------------------

def _broker_versions(b) -> dict[int, tuple[int, int]]:
    return wire.api_versions(b.host, b.port, 3)


def test_committed_offsets_and_metadata_survive_restart(broker_factory):
    b = broker_factory(overrides=FAST)
    topic = unique_topic("grp-commit")
    create_topic(b.bootstrap, topic, 3)
    reports = produce_and_report(producer(b.bootstrap),
                                 [(topic, f"k{p}-{i}".encode(), b"v", None, p) for p in range(3) for i in range(10)])
    assert {(r[1], r[2]) for r in reports} == {(p, o) for p in range(3) for o in range(10)}
    group = unique_group("commit")
    apis = _broker_versions(b)
    # committed leader epochs travel in OffsetCommit v6+ and come back in OffsetFetch v5+
    epochs = apis.get(8, (0, -1))[1] >= 6 and apis.get(9, (0, -1))[1] >= 5

    meta0 = "checkpoint: batch 17 of run 2024-01-01T00:00:00Z"
    meta1 = "ünïcödé ✓ " + "x" * 1000
    commits = [
        TopicPartition(topic, 0, 3, meta0, 0),
        TopicPartition(topic, 1, 7, meta1),
        TopicPartition(topic, 2, 10),
    ]
    want = {0: (3, meta0), 1: (7, meta1), 2: (10, "")}
    # confluent-kafka-python hands librdkafka its metadata with the C string's terminating
    # NUL counted in metadata_size, so that byte is part of what is committed and what other
    # clients read back; its own committed() stops at the NUL
    on_the_wire = {p: (o, m + "\x00" if m else m) for p, (o, m) in want.items()}
    want_epoch = {0: 0 if epochs else None, 1: None, 2: None}

    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "session.timeout.ms": SESSION_MS})
    try:
        c.subscribe([topic])
        wait_for(lambda: (c.poll(0.1), len(c.assignment()) == 3)[1], 30, "the consumer to get 3 partitions")
        res = c.commit(offsets=commits, asynchronous=False)
        assert [(tp.partition, tp.offset, tp.error) for tp in res] == [(0, 3, None), (1, 7, None), (2, 10, None)]
        got = c.committed([TopicPartition(topic, p) for p in range(3)], timeout=15)
        assert [(tp.partition, tp.offset, tp.metadata or "", tp.error) for tp in got] == \
            [(p, *want[p], None) for p in range(3)]
        assert {tp.partition: tp.leader_epoch for tp in got} == want_epoch
    finally:
        c.close()

    def read_back(tag: str):
        ka = KafkaAdminClient(bootstrap_servers=b.bootstrap, request_timeout_ms=30000)
        try:
            offs = ka.list_group_offsets(group)[group]
        finally:
            ka.close()
        got = {tp.partition: (om.offset, om.metadata) for tp, om in offs.items() if tp.topic == topic}
        assert got == on_the_wire, f"{tag}: kafka-python list_group_offsets"
        if epochs:
            assert {tp.partition: om.leader_epoch for tp, om in offs.items()} == {0: 0, 1: -1, 2: -1}, tag
        assert committed_offsets(b.bootstrap, group) == {(topic, p): want[p][0] for p in range(3)}, \
            f"{tag}: confluent-kafka list_consumer_group_offsets"
        c2 = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group})
        try:
            got = c2.committed([TopicPartition(topic, p) for p in range(3)], timeout=15)
        finally:
            c2.close()
        assert [(tp.partition, tp.offset, tp.metadata or "") for tp in got] == [(p, *want[p]) for p in range(3)], tag

    read_back("before restart")
    b.restart()
    read_back("after restart")

    # one more message on partition 2 (offset 10, where its commit points)
    reports = produce_and_report(producer(b.bootstrap), [(topic, b"after", b"restart", None, 2)])
    assert reports[0][1:] == (2, 10)
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "session.timeout.ms": SESSION_MS})
    first: dict[int, int] = {}
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + 30
        while len(first) < 3:
            assert time.monotonic() < deadline, f"first offsets so far {first}"
            m = c.poll(0.2)
            if m is None:
                continue
            assert m.error() is None, m.error()
            first.setdefault(m.partition(), m.offset())
    finally:
        c.close()
    assert first == {0: 3, 1: 7, 2: 10}, "a new member must resume exactly at the committed offsets"


def test_commits_without_membership_make_a_simple_group(broker_factory):
    """A consumer with assign() (no subscribe) commits outside any generation, as kcat -C and
    many tools do; the group exists only for its offsets."""
    b = broker_factory(overrides=FAST)
    topic = unique_topic("grp-simple")
    create_topic(b.bootstrap, topic, 2)
    group = unique_group("simple")
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)])
        res = c.commit(offsets=[TopicPartition(topic, 0, 42, "manual"), TopicPartition(topic, 1, 7)],
                       asynchronous=False)
        assert [(tp.partition, tp.offset, tp.error) for tp in res] == [(0, 42, None), (1, 7, None)]
        got = c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=15)
        assert [(tp.partition, tp.offset, tp.metadata or "") for tp in got] == [(0, 42, "manual"), (1, 7, "")]
    finally:
        c.close()
    assert committed_offsets(b.bootstrap, group) == {(topic, 0): 42, (topic, 1): 7}

    a = admin(b.bootstrap)
    listed = a.list_consumer_groups(request_timeout=30).result(30)
    mine = [(g.is_simple_consumer_group, g.state) for g in listed.valid if g.group_id == group]
    assert mine == [(True, ConsumerGroupState.EMPTY)], listed.valid
    desc = a.describe_consumer_groups([group], request_timeout=30)[group].result(30)
    assert (desc.state, desc.is_simple_consumer_group, desc.members) == (ConsumerGroupState.EMPTY, True, [])


def test_offsets_kept_apart_per_group_topic_and_partition(broker_factory):
    """Committed offsets of groups and topics whose names run into each other ("ab"+"c" and
    "a"+"bc", a group name that is a prefix of others, non-ASCII), and of partitions 0 and
    256+, stay apart through reads, DeleteGroups and a restart; deleting a topic drops the
    groups' offsets for it."""
    b = broker_factory(overrides=FAST)
    base, sfx = unique_group("keys"), uuid.uuid4().hex[:8]
    t1, t2, big = f"c-{sfx}", f"bc-{sfx}", f"big-{sfx}"
    create_topic(b.bootstrap, t1, 2)
    create_topic(b.bootstrap, t2, 2)
    create_topic(b.bootstrap, big, 300)
    groups = [base, base + "a", base + "ab", base + "-grüppe ✓"]
    # an offset for every (group, topic, partition), all different
    want = {}
    for gi, g in enumerate(groups):
        for ti, (t, parts) in enumerate(((t1, (0, 1)), (t2, (0, 1)), (big, (0, 1, 44, 256, 299)))):
            for p in parts:
                want[(g, t, p)] = 1000 * gi + 100 * ti + p + 1
    for g in groups:
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": g, "enable.auto.commit": False})
        try:
            offs = [TopicPartition(t, p, o) for (gg, t, p), o in want.items() if gg == g]
            res = c.commit(offsets=offs, asynchronous=False)
            assert [tp.error for tp in res] == [None] * len(offs)
        finally:
            c.close()

    def of(g, d=want):
        return {(t, p): o for (gg, t, p), o in d.items() if gg == g}

    def check(tag, expect):
        for g in groups:
            assert committed_offsets(b.bootstrap, g) == of(g, expect), f"{tag}: group {g!r}"

    check("committed", want)
    a = admin(b.bootstrap)
    assert a.delete_consumer_groups([base], request_timeout=30)[base].result(30) is None
    want = {k: v for k, v in want.items() if k[0] != base}
    check("after deleting the group that is a prefix of the others", want)
    b.restart()
    check("after a restart", want)

    a = admin(b.bootstrap)
    assert a.delete_topics([t2], operation_timeout=30)[t2].result(30) is None
    want = {k: v for k, v in want.items() if k[1] != t2}
    wait_for(lambda: all(committed_offsets(b.bootstrap, g) == of(g, want) for g in groups[1:]), 10,
             f"the groups' offsets for the deleted topic {t2} to go")


# --- cooperative-sticky and KIP-848 -----------------------------------------------------------

def test_cooperative_sticky_assignor(broker_factory, members):
    b = broker_factory(overrides=FAST)
    topic = unique_topic("grp-coop")
    create_topic(b.bootstrap, topic, 12)
    group = unique_group("coop")
    conf = {"partition.assignment.strategy": "cooperative-sticky"}
    ms = [members(f"m{i}", b, group, [topic], conf=conf) for i in range(2)]
    two = wait_for(lambda: exact_cover(ms, range(12)), 30, "2 members to own 6 partitions each")
    assert sorted(len(v) for v in two.values()) == [6, 6], two
    marks = {m.name: len(m.events()) for m in ms}

    ms.append(members("m2", b, group, [topic], conf=conf))
    three = wait_for(lambda: exact_cover(ms, range(12)), 30, "3 members to own 4 partitions each")
    assert sorted(len(v) for v in three.values()) == [4, 4, 4], three
    for m in ms[:2]:
        # sticky: the old members keep 4 of their 6; cooperative: they are asked to give up
        # only the 2 that move, and nothing is taken away and handed back
        assert set(three[m.name]) <= set(two[m.name]), (m.name, two[m.name], three[m.name])
        later = m.events()[marks[m.name]:]
        revoked = sorted(p for e in later if e["ev"] == "revoke" for _, p in e["partitions"])
        assigned = sorted(p for e in later if e["ev"] == "assign" for _, p in e["partitions"])
        assert revoked == sorted(set(two[m.name]) - set(three[m.name])), (m.name, revoked)
        assert assigned == [], (m.name, assigned)
        assert not [e for e in later if e["ev"] == "lost"], m.name
    assert no_errors(ms) == {}


def test_kip848_consumer_protocol_members(broker_factory, members):
    """librdkafka's group.protocol=consumer (KIP-848, ConsumerGroupHeartbeat): the broker
    assigns; members joining and leaving still own every partition exactly once."""
    b = broker_factory()
    topic = unique_topic("grp-848")
    create_topic(b.bootstrap, topic, 12)
    group = unique_group("848")
    # the classic session and heartbeat settings belong to the broker under this protocol
    conf = {"group.protocol": "consumer", "session.timeout.ms": None, "heartbeat.interval.ms": None}
    ms = [members(f"m{i}", b, group, [topic], conf=conf) for i in range(2)]
    own = wait_for(lambda: exact_cover(ms, range(12)), 30, "2 members to own 6 partitions each")
    assert sorted(len(v) for v in own.values()) == [6, 6], own
    ms.append(members("m2", b, group, [topic], conf=conf))
    own = wait_for(lambda: exact_cover(ms, range(12)), 30, "3 members to own 4 partitions each")
    assert sorted(len(v) for v in own.values()) == [4, 4, 4], own
    # ConsumerGroupDescribe, through librdkafka's describe_consumer_groups: Stable once every
    # member has acknowledged its target assignment in a heartbeat (Reconciling before that,
    # which librdkafka shows as UNKNOWN)
    a = admin(b.bootstrap)  # kept alive until its future resolves

    def stable():
        d = a.describe_consumer_groups([group], request_timeout=30)[group].result(30)
        return d if d.state == ConsumerGroupState.STABLE else None

    desc = wait_for(stable, 15, "ConsumerGroupDescribe to report the group Stable", interval=0.5)
    assert desc.type == ConsumerGroupType.CONSUMER, desc.type
    assert sorted(sorted(tp.partition for tp in m.assignment.topic_partitions) for m in desc.members) == \
        sorted(own.values()), desc
    ms.pop(0).close()
    own = wait_for(lambda: exact_cover(ms, range(12)), 30, "2 members to own 6 partitions each again")
    assert sorted(len(v) for v in own.values()) == [6, 6], own
    assert no_errors(ms) == {}


def test_kip848_heartbeat_interval_and_session_timeout_are_the_brokers(broker_factory, members):
    """group.consumer.heartbeat.interval.ms=300 and group.consumer.session.timeout.ms=2000:
    live librdkafka members heartbeat often enough to keep their partitions through twice
    the session timeout, and a member killed with SIGKILL (no leave) loses its partitions to
    the survivor within seconds, not the default 45 s."""
    b = broker_factory(overrides={"group.consumer.heartbeat.interval.ms": 300,
                                  "group.consumer.session.timeout.ms": 2000})
    topic = unique_topic("grp-848-hb")
    create_topic(b.bootstrap, topic, 4)
    group = unique_group("848hb")
    conf = {"group.protocol": "consumer", "session.timeout.ms": None, "heartbeat.interval.ms": None}
    ms = [members(f"m{i}", b, group, [topic], conf=conf) for i in range(2)]
    own = wait_for(lambda: exact_cover(ms, range(4)), 30, "2 members to own 2 partitions each")
    assert sorted(len(v) for v in own.values()) == [2, 2], own
    # An observation window, not a wait for a condition: members told to heartbeat every
    # 5 s would be fenced after 2 s and lose their partitions here.
    changes = [len(m.events("lost", "revoke", "assign")) for m in ms]
    time.sleep(4.5)
    assert exact_cover(ms, range(4)) == own
    assert [len(m.events("lost", "revoke", "assign")) for m in ms] == changes, \
        [m.summary() for m in ms]
    ms[1].kill()
    own = wait_for(lambda: exact_cover(ms[:1], range(4)), 15,
                   "the survivor to own every partition after the session timeout")
    assert sorted(own["m0"]) == [0, 1, 2, 3], own
    assert no_errors(ms[:1]) == {}


# --- static membership ------------------------------------------------------------------------

def test_static_member_restart_keeps_partitions_without_rebalance(broker_factory, members):
    b = broker_factory(overrides=FAST)
    topic = unique_topic("grp-static")
    create_topic(b.bootstrap, topic, 6)
    group = unique_group("static")
    session_ms = 15000

    def conf(inst):
        return {"group.instance.id": f"{group}-{inst}", "session.timeout.ms": session_ms}

    a = members("a", b, group, [topic], conf=conf("a"))
    other = members("b", b, group, [topic], conf=conf("b"))
    before = wait_for(lambda: exact_cover([a, other], range(6)), 30, "2 static members to own 3 partitions each")
    other_events = len(other.events("assign", "revoke", "lost"))

    t0 = time.monotonic()
    a.close()  # a static member sends no LeaveGroup
    a2 = members("a2", b, group, [topic], conf=conf("a"))
    wait_for(lambda: a2.assignment, session_ms / 1000, "the restarted static member to get its partitions")
    assert time.monotonic() - t0 < session_ms / 1000, "restart took longer than the session timeout"
    assert sorted(a2.assignment) == before["a"]
    assert [sorted(p for _, p in e["partitions"]) for e in a2.events("assign")] == [before["a"]]

    # over 4 heartbeat intervals of the other member, nothing tells it to rebalance
    deadline = time.monotonic() + 4 * HEARTBEAT_MS / 1000
    while time.monotonic() < deadline:
        assert len(other.events("assign", "revoke", "lost")) == other_events, \
            f"the other member was rebalanced: {other.events('assign', 'revoke', 'lost')[other_events:]}"
        time.sleep(0.05)  # observation window for an absence, checked every 50 ms
    assert sorted(other.assignment) == before["b"]

    a_ = admin(b.bootstrap)
    desc = a_.describe_consumer_groups([group], request_timeout=30)[group].result(30)
    assert desc.state == ConsumerGroupState.STABLE
    assert desc.is_simple_consumer_group is False
    assert desc.partition_assignor == "range"  # librdkafka's default "range,roundrobin"
    got = {m.group_instance_id: sorted(tp.partition for tp in m.assignment.topic_partitions) for m in desc.members}
    assert got == {f"{group}-a": before["a"], f"{group}-b": before["b"]}
    assert no_errors([a, other, a2]) == {}

    # "b" goes away without a LeaveGroup (its session would last 15 s); an admin removes it
    # by its instance id (LeaveGroup v3+): the group rebalances at once and a2 takes it all
    other.close()
    t1 = time.monotonic()
    ka = KafkaAdminClient(bootstrap_servers=b.bootstrap, request_timeout_ms=30000)
    try:
        res = ka.remove_group_members(group, [MemberToRemove(group_instance_id=f"{group}-b")])
    finally:
        ka.close()
    assert list(res.values()) == [NoError], res
    wait_for(lambda: a2.assignment == frozenset(range(6)), session_ms / 1000,
             "the remaining static member to get all partitions")
    assert time.monotonic() - t1 < session_ms / 1000 - 5, "the removal waited for the session timeout"


# --- kafka-python group and admin -------------------------------------------------------------

class KpMember(threading.Thread):
    """A kafka-python KafkaConsumer in its own thread: subscribe, poll, commit after each poll."""

    def __init__(self, name: str, bootstrap: str, group: str, topic: str):
        super().__init__(name=name, daemon=True)
        self.bootstrap, self.group, self.topic = bootstrap, group, topic
        self.stop_event = threading.Event()
        self.assignment: frozenset | None = None
        self.got: list[tuple[int, int, bytes]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            c = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=self.group,
                              client_id=self.name, enable_auto_commit=False, auto_offset_reset="earliest",
                              session_timeout_ms=SESSION_MS, heartbeat_interval_ms=HEARTBEAT_MS,
                              request_timeout_ms=30000)
            try:
                # learn the topic's partitions before joining: a leader without them assigns
                # nothing and the group at once rebalances again; a quick second rebalance
                # now and then leaves kafka-python 3.0.12 stuck (its IO thread idles in
                # select() while the consumer thread waits on a task it never runs)
                assert c.partitions_for_topic(self.topic), f"no metadata for {self.topic}"
                c.subscribe([self.topic])
                while not self.stop_event.is_set():
                    recs = c.poll(timeout_ms=200)
                    for tp, rs in recs.items():
                        for r in rs:
                            self.got.append((r.partition, r.offset, r.key))
                    if recs:
                        c.commit()
                    self.assignment = frozenset(tp.partition for tp in c.assignment())
            finally:
                c.close()
        except BaseException as e:  # reported by the test
            self.error = e

    def stop(self) -> None:
        self.stop_event.set()
        self.join(30)
        assert not self.is_alive(), f"{self.name} did not stop"
        assert self.error is None, f"{self.name}: {self.error!r}"


def _assigned_partitions(assignment) -> list[int]:
    """Partitions of a decoded ConsumerProtocolAssignment (object or dict form)."""
    if hasattr(assignment, "partitions"):
        return sorted(tp.partition for tp in assignment.partitions())
    if isinstance(assignment, dict):
        out = []
        for t in assignment.get("assigned_partitions", []):
            if isinstance(t, dict):
                out.extend(t["partitions"])
            else:
                out.extend(t[1])
        return sorted(out)
    raise AssertionError(f"undecoded member assignment {assignment!r}")


def test_kafka_python_group_and_admin(broker_factory):
    # Kafka's default 3 s initial rebalance delay: kafka-python's leader compares the
    # metadata it assigned with against a snapshot that fills in a moment after it joins, and
    # rejoins when they differ; without the delay that second rebalance comes right after the
    # first one (and now and then leaves kafka-python 3.0.12 stuck, see KpMember)
    b = broker_factory()
    topic = unique_topic("grp-kpy")
    create_topic(b.bootstrap, topic, 4)
    group = unique_group("kpy")
    ms = [KpMember(f"kpy-{i}", b.bootstrap, group, topic) for i in range(2)]
    for m in ms:
        m.start()
    ka = KafkaAdminClient(bootstrap_servers=b.bootstrap, request_timeout_ms=30000)
    try:
        own = wait_for(lambda: exact_cover(ms, range(4)), 30, "2 kafka-python members to own 2 partitions each")
        assert sorted(len(v) for v in own.values()) == [2, 2], own

        expected = keyed_messages(b.bootstrap, topic, 400, prefix="kpy", partitions=4)
        wait_for(lambda: sum(len(m.got) for m in ms) >= 400, 30, "400 messages consumed")
        got = Counter((p, o) for m in ms for p, o, _ in m.got)
        assert set(got) == set(expected) and max(got.values()) == 1, \
            f"missing {sorted(set(expected) - set(got))[:10]}, twice {[k for k, c in got.items() if c > 1][:10]}"
        for m in ms:  # each consumed exactly its own partitions
            assert {p for p, _, _ in m.got} == set(m.assignment), m.name
        assert all(expected[(p, o)].encode() == k for m in ms for p, o, k in m.got)

        listed = ka.list_groups()
        assert [(g["protocol_type"], g["group_state"]) for g in listed if g["group_id"] == group] == \
            [("consumer", "Stable")], listed
        # ListGroups v4+ filters by state
        assert group in [g["group_id"] for g in ka.list_groups(states_filter=["Stable"])]
        assert group not in [g["group_id"] for g in ka.list_groups(states_filter=["Empty"])]

        desc = ka.describe_groups([group])[group]
        assert desc["error"] is None, desc
        assert desc["group_state"] == "Stable", desc
        assert desc["protocol_type"] == "consumer", desc
        assert desc["protocol_data"] in ("range", "roundrobin", "sticky", "cooperative-sticky"), desc
        by_client = {mm["client_id"]: _assigned_partitions(mm["member_assignment"]) for mm in desc["members"]}
        assert by_client == {m.name: sorted(m.assignment) for m in ms}, desc
        assert [mm["member_metadata"]["topics"] for mm in desc["members"]] == [[topic], [topic]], desc

        # OffsetDelete is refused while the group is subscribed to the topic
        res = ka.delete_group_offsets(group, [KpTopicPartition(topic, 0)])
        assert res == {KpTopicPartition(topic, 0): GroupSubscribedToTopicError}, res
    finally:
        for m in ms:
            m.stop()

    try:
        offs = ka.list_group_offsets(group)[group]
        assert {tp.partition: om.offset for tp, om in offs.items()} == {p: 100 for p in range(4)}
        desc = ka.describe_groups([group])[group]
        assert (desc["group_state"], desc["members"]) == ("Empty", []), desc

        # OffsetDelete on the empty group removes just that partition's offset
        res = ka.delete_group_offsets(group, [KpTopicPartition(topic, 0)])
        assert res == {KpTopicPartition(topic, 0): NoError}, res
        offs = ka.list_group_offsets(group)[group]
        assert {tp.partition: om.offset for tp, om in offs.items()} == {1: 100, 2: 100, 3: 100}

        assert ka.delete_groups([group]) == {group: "OK"}
        assert ka.list_group_offsets(group)[group] == {}
        assert group not in [g["group_id"] for g in ka.list_groups()]
        assert ka.delete_groups([group]) == {group: "GroupIdNotFoundError"}
    finally:
        ka.close()


# --- kafkajs ----------------------------------------------------------------------------------

def test_kafkajs_group_consumes_each_message_once_and_commits(broker_factory):
    b = broker_factory(overrides=FAST)
    topic = unique_topic("grp-js")
    group = unique_group("js")
    n, parts = 400, 4
    r = subprocess.run(["node", str(JS_DIR / "group.js"), b.bootstrap, topic, group, str(n), str(parts), "2"],
                       capture_output=True, timeout=90, cwd=JS_DIR,
                       env={**os.environ, "KAFKAJS_NO_PARTITIONER_WARNING": "1"})
    assert r.returncode == 0, f"group.js exited {r.returncode}\n{r.stderr.decode(errors='replace')[-4000:]}"
    out = json.loads(r.stdout)
    assert out["created"] is True
    settled = {s["member"]: s["partitions"] for s in out["settled"]}
    assert sorted(p for ps in settled.values() for p in ps) == list(range(parts)), settled
    assert sorted(len(ps) for ps in settled.values()) == [2, 2], settled

    [stable] = out["describeStable"]
    assert (stable["errorCode"], stable["state"], stable["protocolType"], len(stable["members"])) == \
        (0, "Stable", "consumer", 2), stable

    seen = Counter()
    for mem in out["consumed"]:
        for msg in mem["messages"]:
            p, o = msg["partition"], int(msg["offset"])
            i = o * parts + p  # message i went to partition i % parts at offset i // parts
            assert (msg["key"], msg["value"]) == (f"jsg-key-{i}", f"jsg-value-{i}"), msg
            assert p in settled[mem["member"]], f"{mem['member']} consumed partition {p} it does not own"
            seen[(p, o)] += 1
    assert set(seen) == {(i % parts, i // parts) for i in range(n)}
    assert [k for k, c in seen.items() if c > 1] == []
    assert out["commitErrors"] == []
    assert out["fetchOffsets"] == [{"topic": topic, "partitions": [
        {"partition": p, "offset": str(n // parts), "metadata": None} for p in range(parts)]}] or \
        out["fetchOffsets"] == [{"topic": topic, "partitions": [
            {"partition": p, "offset": str(n // parts), "metadata": ""} for p in range(parts)]}], out["fetchOffsets"]
    [after] = out["describeAfter"]
    assert (after["state"], after["members"]) == ("Empty", []), after


# --- kcat -G ----------------------------------------------------------------------------------

ASSIGN_RE = re.compile(r"% Group (\S+) rebalanced \(memberid [^)]*\): (assigned|revoked): ?(.*)")


class Kcat:
    """`kcat -G group topic` in the background; stdout lines are messages, stderr tells the
    rebalances."""

    def __init__(self, name: str, bootstrap: str, group: str, topic: str):
        self.name = name
        self.proc = subprocess.Popen(
            ["kcat", "-b", bootstrap, "-G", group, "-u", "-f", "%p|%o|%k|%s\n",
             "-X", "auto.offset.reset=earliest", "-X", f"session.timeout.ms={SESSION_MS}",
             "-X", f"heartbeat.interval.ms={HEARTBEAT_MS}", topic],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        self.lines: list[str] = []
        self.stderr: list[str] = []
        self.assignment: frozenset | None = None
        self._t = [threading.Thread(target=self._out, daemon=True), threading.Thread(target=self._err, daemon=True)]
        for t in self._t:
            t.start()

    def _out(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def _err(self):
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip("\n"))
            m = ASSIGN_RE.search(line)
            if m:
                parts = frozenset(int(x) for x in re.findall(r"\[(\d+)\]", m.group(3)))
                self.assignment = parts if m.group(2) == "assigned" else frozenset()

    def stop(self, timeout: float = 20) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("kcat did not exit on SIGINT\n" + "\n".join(self.stderr[-20:]))
        for t in self._t:
            t.join(10)


def test_kcat_balanced_consumers_share_topic(broker_factory):
    b = broker_factory(overrides=FAST)
    topic = unique_topic("grp-kcat")
    create_topic(b.bootstrap, topic, 4)
    group = unique_group("kcat")
    ks = [Kcat(f"kcat-{i}", b.bootstrap, group, topic) for i in range(2)]
    try:
        own = wait_for(lambda: exact_cover(ks, range(4)), 30, "2 kcat consumers to own 2 partitions each")
        assert sorted(len(v) for v in own.values()) == [2, 2], own
        n = 400
        expected = keyed_messages(b.bootstrap, topic, n, prefix="kc", partitions=4)
        wait_for(lambda: sum(len(k.lines) for k in ks) >= n, 30, f"{n} messages printed by the kcat consumers")
    finally:
        for k in ks:
            k.stop()
    seen = Counter()
    for k in ks:
        for line in k.lines:
            p, o, key, value = line.split("|", 3)
            p, o = int(p), int(o)
            assert expected[(p, o)] == key, line
            assert p in k.assignment or p in own[k.name], f"{k.name} printed partition {p} it does not own"
            seen[(p, o)] += 1
    assert set(seen) == set(expected)
    assert [k for k, c in seen.items() if c > 1] == []
    assert all(len(k.lines) > 0 for k in ks)
    # kcat commits automatically (enable.auto.commit) and on close
    assert committed_offsets(b.bootstrap, group) == {(topic, p): n // 4 for p in range(4)}


# --- an opaque (non-consumer) protocol, as Kafka Connect uses it ------------------------------

def opaque_assignment(metadata: bytes) -> bytes:
    """What the leader hands each member: derived from the member's own metadata so that
    each member can check that it got its own."""
    return b"\x00\xff\x10assign:" + metadata[::-1] + b"\xfe\x00"


class OpaqueCoordinator(BaseCoordinator):
    PROTOCOL_TYPE = "sluice-connect"

    def __init__(self, client, metadata: bytes, **configs):
        super().__init__(client, **configs)
        self.metadata = metadata
        self.performed: list[tuple[int, str, dict]] = []  # (generation, protocol, {member_id: metadata})
        self.joined: list[tuple[int, str, str, bytes]] = []  # (generation, member_id, protocol, assignment)

    def protocol_type(self):
        return self.PROTOCOL_TYPE

    def group_protocols(self):
        return [("sluice-v1", self.metadata)]

    def _perform_assignment(self, leader_id, protocol, members):
        got = {m.member_id: bytes(m.metadata) for m in members}
        self.performed.append((self._generation.generation_id, protocol, got))
        return {member_id: opaque_assignment(md) for member_id, md in got.items()}

    async def _on_join_complete_async(self, generation, member_id, protocol, member_assignment_bytes):
        self.joined.append((generation, member_id, protocol, bytes(member_assignment_bytes)))


def _opaque_member(bootstrap: str, group: str, name: str, metadata: bytes):
    client = KafkaNetClient(bootstrap_servers=bootstrap, client_id=name, request_timeout_ms=30000)
    client._net.start()
    client._manager.bootstrap(15000)
    coord = OpaqueCoordinator(client, metadata, group_id=group, session_timeout_ms=10000,
                              heartbeat_interval_ms=HEARTBEAT_MS, max_poll_interval_ms=10000,
                              api_version=client._manager.broker_version)
    return client, coord


def test_opaque_protocol_bytes_pass_through(broker_factory):
    b = broker_factory(overrides=FAST)
    group = unique_group("opaque")
    metas = {
        "worker-a": b"\x00\xff\x10" + bytes(range(256)) + b"\x00",
        "worker-b": b"\xff\x00\x10" + bytes(range(255, -1, -1)) * 3 + b"\x10\x00\xff",
    }
    nodes = {name: _opaque_member(b.bootstrap, group, name, md) for name, md in metas.items()}
    stop = threading.Event()
    errors: list[BaseException] = []

    def drive(coord):
        try:
            while not stop.is_set():
                coord.ensure_active_group(timeout_ms=500)
                coord.poll_heartbeat()
                time.sleep(0.05)  # poll interval of the member's loop
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=drive, args=(c,), daemon=True) for _, c in nodes.values()]
    for t in threads:
        t.start()

    def complete_generation():
        assert not errors, errors
        for _, leader in nodes.values():
            for gen, protocol, got in leader.performed:
                if len(got) != 2:
                    continue
                joined = {name: [j for j in c.joined if j[0] == gen] for name, (_, c) in nodes.items()}
                if all(joined.values()):
                    return gen, protocol, got, {name: js[-1] for name, js in joined.items()}
        return None

    try:
        gen, protocol, got, joined = wait_for(complete_generation, 30, "both members to join one generation")
        assert protocol == "sluice-v1"
        member_ids = {name: j[1] for name, j in joined.items()}
        # the leader saw each member's metadata byte for byte
        assert got == {member_ids[name]: md for name, md in metas.items()}
        for name, (g, member_id, proto, assignment) in joined.items():
            assert (g, proto) == (gen, "sluice-v1")
            assert assignment == opaque_assignment(metas[name]), f"{name} got {assignment!r}"

        # DescribeGroups gives the stored bytes back as they are
        raw = _raw_client(b.bootstrap)
        try:
            [g] = _send(raw, DescribeGroupsRequest(groups=[group], include_authorized_operations=False)).groups
        finally:
            raw.close()
        assert (g.error_code, g.group_state, g.protocol_type, g.protocol_data) == \
            (NONE, "Stable", OpaqueCoordinator.PROTOCOL_TYPE, "sluice-v1"), g
        described = {m.member_id: (bytes(m.member_metadata), bytes(m.member_assignment)) for m in g.members}
        assert described == {member_ids[name]: (md, opaque_assignment(md)) for name, md in metas.items()}
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        for client, coord in nodes.values():
            coord.close(timeout_ms=5000)
            client.close()
    assert not errors, errors

    raw = _raw_client(b.bootstrap)
    try:
        resp = _send(raw, DescribeGroupsRequest(groups=[group], include_authorized_operations=False))
        [g] = resp.groups
        assert (g.error_code, g.group_state, g.protocol_type) == (NONE, "Empty", OpaqueCoordinator.PROTOCOL_TYPE)
    finally:
        raw.close()


# --- raw group protocol (kafka-python's request classes) --------------------------------------

def _raw_client(bootstrap: str, group: str | None = None) -> KafkaNetClient:
    """A raw client; with `group`, it first looks the group's coordinator up, as every client
    does (which creates __consumer_offsets, without which no broker coordinates groups)."""
    client = KafkaNetClient(bootstrap_servers=bootstrap, client_id="sluice-raw-groups", request_timeout_ms=30000)
    client._manager.bootstrap(15000)
    if group is not None:
        found = _send(client, FindCoordinatorRequest(key=group, key_type=0, coordinator_keys=[group]))
        assert [(k.key, k.error_code) for k in found.coordinators] == [(group, NONE)], found
    return client


def _node(client: KafkaNetClient) -> int:
    return next(iter(client.cluster.brokers())).node_id


def _send(client: KafkaNetClient, request):
    return client.send_and_receive(_node(client), request, timeout_ms=30000)


def test_raw_join_sync_heartbeat_commit_error_codes(broker_factory):
    b = broker_factory(overrides=FAST)
    topic = unique_topic("grp-raw")
    create_topic(b.bootstrap, topic, 1)
    group = unique_group("raw")
    c = _raw_client(b.bootstrap)
    meta = b"\x00\x01opaque\xff"

    def join(member_id="", group_id=group, protocol_type="consumer", protocols=(("range", meta),)):
        return _send(c, JoinGroupRequest(group_id=group_id, session_timeout_ms=10000, rebalance_timeout_ms=10000,
                                         member_id=member_id, group_instance_id=None,
                                         protocol_type=protocol_type, protocols=list(protocols), reason=None))

    try:
        assert join(group_id="").error_code == INVALID_GROUP_ID
        # As in Kafka, a broker coordinates groups once __consumer_offsets exists: created
        # by the first FindCoordinator, which every client sends before joining.
        assert join().error_code == NOT_COORDINATOR
        found = _send(c, FindCoordinatorRequest(key=group, key_type=0, coordinator_keys=[group]))
        assert [(k.key, k.error_code) for k in found.coordinators] == [(group, NONE)], found

        r = join()
        if r.API_VERSION >= 4:  # KIP-394: a new dynamic member first gets its id
            assert r.error_code == MEMBER_ID_REQUIRED, r
            assert r.member_id, r
            r = join(member_id=r.member_id)
        assert r.error_code == NONE, r
        me, gen = r.member_id, r.generation_id
        assert gen >= 1 and r.leader == me and r.protocol_name == "range", r
        assert [(m.member_id, bytes(m.metadata)) for m in r.members] == [(me, meta)]

        # a member speaking another protocol type, or no common protocol, is refused
        assert join(protocol_type="connect").error_code == INCONSISTENT_GROUP_PROTOCOL
        assert join(protocols=(("roundrobin", meta),)).error_code == INCONSISTENT_GROUP_PROTOCOL

        def sync(generation=gen, member_id=me, assignments=((me, b"\x00\xff"),)):
            return _send(c, SyncGroupRequest(group_id=group, generation_id=generation, member_id=member_id,
                                             group_instance_id=None, protocol_type="consumer", protocol_name="range",
                                             assignments=list(assignments)))

        assert sync(generation=gen + 1).error_code == ILLEGAL_GENERATION
        assert sync(member_id="nobody").error_code == UNKNOWN_MEMBER_ID
        r = sync()
        assert (r.error_code, bytes(r.assignment)) == (NONE, b"\x00\xff"), r

        def heartbeat(generation=gen, member_id=me):
            return _send(c, HeartbeatRequest(group_id=group, generation_id=generation, member_id=member_id,
                                             group_instance_id=None)).error_code

        assert heartbeat() == NONE
        assert heartbeat(generation=gen + 1) == ILLEGAL_GENERATION
        assert heartbeat(member_id="nobody") == UNKNOWN_MEMBER_ID

        def commit(generation=gen, member_id=me, offset=5, to=topic, metadata="raw"):
            _T = OffsetCommitRequest.OffsetCommitRequestTopic
            _P = _T.OffsetCommitRequestPartition
            r = _send(c, OffsetCommitRequest(
                group_id=group, generation_id_or_member_epoch=generation, member_id=member_id,
                group_instance_id=None, retention_time_ms=-1,
                topics=[_T(name=to, partitions=[_P(partition_index=0, committed_offset=offset,
                                                  committed_leader_epoch=-1, commit_timestamp=-1,
                                                  committed_metadata=metadata)])]))
            return [(t.name, p.partition_index, p.error_code) for t in r.topics for p in t.partitions]

        assert commit(generation=gen + 1) == [(topic, 0, ILLEGAL_GENERATION)]
        assert commit(member_id="nobody") == [(topic, 0, UNKNOWN_MEMBER_ID)]
        # outside any generation (an admin resetting offsets) only while the group is empty
        assert commit(generation=-1, member_id="") == [(topic, 0, UNKNOWN_MEMBER_ID)]
        missing = unique_topic("grp-raw-missing")
        assert commit(to=missing) == [(missing, 0, UNKNOWN_TOPIC_OR_PARTITION)]
        # offset.metadata.max.bytes defaults to 4096
        assert commit(offset=9, metadata="m" * 4097) == [(topic, 0, OFFSET_METADATA_TOO_LARGE)]
        assert commit() == [(topic, 0, NONE)]

        def fetch(group_id):
            _T = OffsetFetchRequest.OffsetFetchRequestTopic
            r = _send(c, OffsetFetchRequest(group_id=group_id, topics=[_T(name=topic, partition_indexes=[0])],
                                            max_version=7))
            assert r.error_code == NONE
            return [(p.partition_index, p.committed_offset, p.metadata, p.error_code)
                    for t in r.topics for p in t.partitions]

        assert fetch(group) == [(0, 5, "raw", NONE)]
        assert fetch(unique_group("never")) == [(0, -1, "", NONE)] or \
            fetch(unique_group("never")) == [(0, -1, None, NONE)]

        r = _send(c, LeaveGroupRequest(group_id=group, member_id=me, members=[
            LeaveGroupRequest.MemberIdentity(member_id=me, group_instance_id=None, reason="test")]))
        assert r.error_code == NONE, r
        if r.API_VERSION >= 3:
            assert [(m.member_id, m.error_code) for m in r.members] == [(me, NONE)], r
        assert heartbeat() == UNKNOWN_MEMBER_ID

        [g] = _send(c, DescribeGroupsRequest(groups=[group], include_authorized_operations=False)).groups
        assert (g.error_code, g.group_state, g.protocol_type, list(g.members)) == (NONE, "Empty", "consumer", []), g
        # an empty group takes commits from outside any generation (as admin tools send them)
        assert commit(generation=-1, member_id="", offset=6) == [(topic, 0, NONE)]
        assert fetch(group) == [(0, 6, "raw", NONE)]
    finally:
        c.close()

    # several groups in one OffsetFetch (v8+), as kafka-python's admin sends them
    ka = KafkaAdminClient(bootstrap_servers=b.bootstrap, request_timeout_ms=30000)
    try:
        other = unique_group("raw-none")
        got = ka.list_group_offsets([group, other])
        assert {g: {(tp.topic, tp.partition): (om.offset, om.metadata) for tp, om in offs.items()}
                for g, offs in got.items()} == {group: {(topic, 0): (6, "raw")}, other: {}}
    finally:
        ka.close()


def test_raw_two_member_rebalance(broker_factory):
    """A second member joining a stable group, step by step: the first member's heartbeat says
    REBALANCE_IN_PROGRESS, its commits of the old generation are still taken until it rejoins,
    the join completes when both are in, commits wait for SyncGroup, and each member gets
    what the leader assigned to it."""
    b = broker_factory(overrides=FAST)
    topic = unique_topic("grp-raw2")
    create_topic(b.bootstrap, topic, 1)
    group = unique_group("raw2")
    ca, cb = _raw_client(b.bootstrap, group), _raw_client(b.bootstrap)

    def join_req(member_id, meta):
        return JoinGroupRequest(group_id=group, session_timeout_ms=10000, rebalance_timeout_ms=10000,
                                member_id=member_id, group_instance_id=None, protocol_type="consumer",
                                protocols=[("range", meta)], reason=None)

    def join(c, meta):
        r = _send(c, join_req("", meta))
        if r.error_code == MEMBER_ID_REQUIRED:
            r = _send(c, join_req(r.member_id, meta))
        return r

    def sync_req(generation, member_id, assignments=()):
        return SyncGroupRequest(group_id=group, generation_id=generation, member_id=member_id,
                                group_instance_id=None, protocol_type="consumer", protocol_name="range",
                                assignments=list(assignments))

    def heartbeat(c, generation, member_id):
        return _send(c, HeartbeatRequest(group_id=group, generation_id=generation, member_id=member_id,
                                         group_instance_id=None)).error_code

    def commit(c, generation, member_id, offset):
        _T = OffsetCommitRequest.OffsetCommitRequestTopic
        _P = _T.OffsetCommitRequestPartition
        r = _send(c, OffsetCommitRequest(
            group_id=group, generation_id_or_member_epoch=generation, member_id=member_id,
            group_instance_id=None, retention_time_ms=-1,
            topics=[_T(name=topic, partitions=[_P(partition_index=0, committed_offset=offset,
                                                 committed_leader_epoch=-1, commit_timestamp=-1,
                                                 committed_metadata=None)])]))
        return r.topics[0].partitions[0].error_code

    def pump(c, seconds):
        """Drives c's network loop for a while (sends what is queued, reads what arrives)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            c.poll(timeout_ms=50)

    def describe():
        [g] = _send(ca, DescribeGroupsRequest(groups=[group], include_authorized_operations=False)).groups
        return g.group_state, {m.member_id for m in g.members}

    def wait(c, future, what):
        deadline = time.monotonic() + 15
        while not future.is_done:
            assert time.monotonic() < deadline, f"no response to {what}"
            c.poll(timeout_ms=100, future=future)
        assert future.succeeded(), future.exception
        return future.value

    try:
        ra = join(ca, b"meta-A")
        assert ra.error_code == NONE, ra
        a, gen1 = ra.member_id, ra.generation_id
        assert _send(ca, sync_req(gen1, a, [(a, b"A-1")])).error_code == NONE

        # B asks to join: its JoinGroup is held until A has rejoined
        r = _send(cb, join_req("", b"meta-B"))
        bid = r.member_id if r.error_code == MEMBER_ID_REQUIRED else None
        if bid is None:
            pytest.fail(f"JoinGroup v{r.API_VERSION} of a new member answered {r.error_code} at once")
        fb = cb.send(_node(cb), join_req(bid, b"meta-B"))
        pump(cb, 0.3)
        assert not fb.is_done, "B's JoinGroup completed before the existing member rejoined"
        assert describe() == ("PreparingRebalance", {a, bid})

        assert heartbeat(ca, gen1, a) == REBALANCE_IN_PROGRESS
        assert commit(ca, gen1, a, 1) == NONE, "commits of the old generation are taken while preparing"
        ra = _send(ca, join_req(a, b"meta-A"))
        rb = wait(cb, fb, "B's JoinGroup")
        assert (ra.error_code, rb.error_code) == (NONE, NONE), (ra, rb)
        gen2 = ra.generation_id
        assert gen2 > gen1 and rb.generation_id == gen2
        assert ra.leader == rb.leader == a
        assert {m.member_id: bytes(m.metadata) for m in ra.members} == {a: b"meta-A", bid: b"meta-B"}
        assert list(rb.members) == [], "a follower gets no member list"

        # awaiting the leader's SyncGroup: commits are refused, heartbeats are fine
        assert commit(ca, gen2, a, 2) == REBALANCE_IN_PROGRESS
        assert heartbeat(cb, gen2, bid) == NONE
        assert describe() == ("CompletingRebalance", {a, bid})
        fsb = cb.send(_node(cb), sync_req(gen2, bid))
        pump(cb, 0.3)
        assert not fsb.is_done, "a follower's SyncGroup completed before the leader's"
        r = _send(ca, sync_req(gen2, a, [(a, b"\x00A-2"), (bid, b"\xffB-2\x00")]))
        assert (r.error_code, bytes(r.assignment)) == (NONE, b"\x00A-2")
        r = wait(cb, fsb, "B's SyncGroup")
        assert (r.error_code, bytes(r.assignment)) == (NONE, b"\xffB-2\x00")

        assert describe() == ("Stable", {a, bid})
        assert commit(cb, gen2, bid, 3) == NONE
        assert commit(ca, gen1, a, 4) == ILLEGAL_GENERATION
        assert heartbeat(ca, gen2, a) == NONE
        assert heartbeat(cb, gen1, bid) == ILLEGAL_GENERATION
    finally:
        ca.close()
        cb.close()


def test_raw_member_missing_the_rebalance_timeout_is_removed(broker_factory):
    """A member that keeps heartbeating but does not rejoin within the rebalance timeout (a
    consumer stuck in processing) is dropped when the join phase ends."""
    b = broker_factory(overrides=FAST)
    group = unique_group("rto")
    ca, cb = _raw_client(b.bootstrap, group), _raw_client(b.bootstrap)
    rebalance_ms = 3000

    def join_req(member_id, meta):
        return JoinGroupRequest(group_id=group, session_timeout_ms=10000, rebalance_timeout_ms=rebalance_ms,
                                member_id=member_id, group_instance_id=None, protocol_type="consumer",
                                protocols=[("range", meta)], reason=None)

    def heartbeat(generation, member_id):
        return _send(ca, HeartbeatRequest(group_id=group, generation_id=generation, member_id=member_id,
                                          group_instance_id=None)).error_code

    try:
        r = _send(ca, join_req("", b"A"))
        if r.error_code == MEMBER_ID_REQUIRED:
            r = _send(ca, join_req(r.member_id, b"A"))
        assert r.error_code == NONE, r
        a, gen1 = r.member_id, r.generation_id
        assert _send(ca, SyncGroupRequest(group_id=group, generation_id=gen1, member_id=a, group_instance_id=None,
                                          protocol_type="consumer", protocol_name="range",
                                          assignments=[(a, b"A")])).error_code == NONE

        r = _send(cb, join_req("", b"B"))
        bid = r.member_id if r.error_code == MEMBER_ID_REQUIRED else ""
        t0 = time.monotonic()
        fb = cb.send(_node(cb), join_req(bid, b"B"))
        end = time.monotonic() + 0.3
        while time.monotonic() < end:  # send it
            cb.poll(timeout_ms=50)
        assert not fb.is_done, "B's JoinGroup completed before the existing member rejoined"
        # A heartbeats (its session stays alive) but never rejoins
        while not fb.is_done:
            assert time.monotonic() - t0 < rebalance_ms / 1000 + 10, "the join phase never ended"
            code = heartbeat(gen1, a)
            if code == UNKNOWN_MEMBER_ID:
                break
            assert code == REBALANCE_IN_PROGRESS, code
            end = time.monotonic() + 0.25
            while time.monotonic() < end and not fb.is_done:
                cb.poll(timeout_ms=50)
        while not fb.is_done:
            assert time.monotonic() - t0 < rebalance_ms / 1000 + 10, "B's JoinGroup never answered"
            cb.poll(timeout_ms=50)
        elapsed = time.monotonic() - t0
        rb = fb.value
        assert rb.error_code == NONE, rb
        assert elapsed >= rebalance_ms / 1000 - 0.5, \
            f"the join phase ended after {elapsed:.1f}s, before the rebalance timeout"
        bid = rb.member_id
        assert (rb.leader, [m.member_id for m in rb.members]) == (bid, [bid]), rb
        assert rb.generation_id > gen1
        assert heartbeat(gen1, a) == UNKNOWN_MEMBER_ID
    finally:
        ca.close()
        cb.close()


def test_raw_static_member_fencing(broker_factory):
    """A second instance with the same group.instance.id takes the member's place (no
    rebalance, same assignment); the old instance is fenced with FENCED_INSTANCE_ID."""
    b = broker_factory(overrides=FAST)
    topic = unique_topic("grp-fence")
    create_topic(b.bootstrap, topic, 1)
    group = unique_group("fence")
    inst = f"{group}-instance"
    c = _raw_client(b.bootstrap, group)

    def join():
        return _send(c, JoinGroupRequest(group_id=group, session_timeout_ms=10000, rebalance_timeout_ms=10000,
                                         member_id="", group_instance_id=inst, protocol_type="consumer",
                                         protocols=[("range", b"meta")], reason=None))

    def sync(generation, member_id, assignments=()):
        return _send(c, SyncGroupRequest(group_id=group, generation_id=generation, member_id=member_id,
                                         group_instance_id=inst, protocol_type="consumer", protocol_name="range",
                                         assignments=list(assignments)))

    def heartbeat(generation, member_id):
        return _send(c, HeartbeatRequest(group_id=group, generation_id=generation, member_id=member_id,
                                         group_instance_id=inst)).error_code

    try:
        r1 = join()  # static members get no MEMBER_ID_REQUIRED round trip
        assert r1.error_code == NONE, r1
        old, gen = r1.member_id, r1.generation_id
        r = sync(gen, old, [(old, b"\x00assigned")])
        assert (r.error_code, bytes(r.assignment)) == (NONE, b"\x00assigned")

        r2 = join()
        assert r2.error_code == NONE, r2
        new = r2.member_id
        assert new != old and r2.generation_id == gen, "a static member's restart must not start a new generation"
        r = sync(gen, new)
        assert (r.error_code, bytes(r.assignment)) == (NONE, b"\x00assigned")
        assert heartbeat(gen, new) == NONE

        assert heartbeat(gen, old) == FENCED_INSTANCE_ID
        _T = OffsetCommitRequest.OffsetCommitRequestTopic
        _P = _T.OffsetCommitRequestPartition
        r = _send(c, OffsetCommitRequest(
            group_id=group, generation_id_or_member_epoch=gen, member_id=old, group_instance_id=inst,
            retention_time_ms=-1, topics=[_T(name=topic, partitions=[_P(
                partition_index=0, committed_offset=1, committed_leader_epoch=-1, commit_timestamp=-1,
                committed_metadata=None)])]))
        assert r.topics[0].partitions[0].error_code == FENCED_INSTANCE_ID
        [g] = _send(c, DescribeGroupsRequest(groups=[group], include_authorized_operations=False)).groups
        assert (g.group_state, [(m.member_id, m.group_instance_id) for m in g.members]) == ("Stable", [(new, inst)])
    finally:
        c.close()


# --- error codes through real clients ---------------------------------------------------------

def test_invalid_session_timeout_reported_to_clients(broker_factory):
    b = broker_factory(overrides={**FAST, "group.max.session.timeout.ms": 30000})
    topic = unique_topic("grp-sto")
    create_topic(b.bootstrap, topic, 1)

    for session_ms in (1000, 45000):  # below group.min.session.timeout.ms, above the max
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": unique_group("sto"),
                      "session.timeout.ms": session_ms, "heartbeat.interval.ms": 200})
        try:
            c.subscribe([topic])

            def error_event():
                m = c.poll(0.2)
                return m.error() if m is not None and m.error() is not None else None

            err = wait_for(error_event, 20, f"an error for session.timeout.ms={session_ms}")
            assert err.code() == KafkaError.INVALID_SESSION_TIMEOUT, err
            assert c.assignment() == []
        finally:
            c.close()

    kc = KafkaConsumer(topic, bootstrap_servers=b.bootstrap, group_id=unique_group("sto-kpy"),
                       session_timeout_ms=1000, heartbeat_interval_ms=300, request_timeout_ms=30000)
    try:
        with pytest.raises(InvalidSessionTimeoutError):
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                kc.poll(timeout_ms=200)
    finally:
        kc.close()


def test_group_max_size_rejects_an_extra_member(broker_factory, members):
    b = broker_factory(overrides={**FAST, "group.max.size": 2})
    topic = unique_topic("grp-max")
    create_topic(b.bootstrap, topic, 4)
    group = unique_group("max")
    ms = [members(f"m{i}", b, group, [topic]) for i in range(2)]
    own = wait_for(lambda: exact_cover(ms, range(4)), 30, "2 members to own 2 partitions each")
    marks = {m.name: len(m.events("assign", "revoke", "lost")) for m in ms}

    third = members("m2", b, group, [topic])
    wait_for(lambda: [e for e in third.events("error") if e["code"] == KafkaError.GROUP_MAX_SIZE_REACHED], 20,
             "GROUP_MAX_SIZE_REACHED for the third member")
    assert not third.assignment
    # the refused join does not disturb the group: no rebalance over 4 heartbeat intervals
    deadline = time.monotonic() + 4 * HEARTBEAT_MS / 1000
    while time.monotonic() < deadline:
        assert {m.name: len(m.events("assign", "revoke", "lost")) for m in ms} == marks
        time.sleep(0.05)  # observation window for an absence, checked every 50 ms
    assert exact_cover(ms, range(4)) == own
    assert no_errors(ms) == {}


def test_delete_groups_error_codes(broker_factory):
    b = broker_factory(overrides=FAST)
    topic = unique_topic("grp-del")
    create_topic(b.bootstrap, topic, 2)
    group = unique_group("del")
    a = admin(b.bootstrap)

    def delete(g):
        return a.delete_consumer_groups([g], request_timeout=30)[g]

    with pytest.raises(KafkaException) as ei:
        delete(unique_group("unknown")).result(30)
    assert ei.value.args[0].code() == KafkaError.GROUP_ID_NOT_FOUND, ei.value

    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "session.timeout.ms": SESSION_MS})
    try:
        c.subscribe([topic])
        wait_for(lambda: (c.poll(0.1), len(c.assignment()) == 2)[1], 30, "the consumer to join")
        c.commit(offsets=[TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)], asynchronous=False)

        listed = a.list_consumer_groups(request_timeout=30).result(30)
        assert listed.errors == []
        mine = [g for g in listed.valid if g.group_id == group]
        assert [(g.is_simple_consumer_group, g.state) for g in mine] == [(False, ConsumerGroupState.STABLE)], mine

        with pytest.raises(KafkaException) as ei:
            delete(group).result(30)
        assert ei.value.args[0].code() == KafkaError.NON_EMPTY_GROUP, ei.value
    finally:
        c.close()

    # empty now (the consumer left): deleted, with its offsets
    assert delete(group).result(30) is None
    assert committed_offsets(b.bootstrap, group) == {}
    listed = a.list_consumer_groups(request_timeout=30).result(30)
    assert group not in [g.group_id for g in listed.valid]
    with pytest.raises(KafkaException) as ei:
        delete(group).result(30)
    assert ei.value.args[0].code() == KafkaError.GROUP_ID_NOT_FOUND, ei.value


# --- broker restart under a running group -----------------------------------------------------

def test_broker_restart_mid_group_resumes_from_commits(broker_factory, members):
    b = broker_factory(overrides=FAST)
    topic = unique_topic("grp-restart")
    create_topic(b.bootstrap, topic, 4)
    group = unique_group("restart")
    ms = [members(f"m{i}", b, group, [topic], commit="sync", batch=20) for i in range(2)]
    wait_for(lambda: exact_cover(ms, range(4)), 30, "2 members to own 2 partitions each")

    before = keyed_messages(b.bootstrap, topic, 400, prefix="before", partitions=4)

    def committed_everywhere(end):
        done: dict[int, int] = {}
        for m in ms:
            for p, o in m.last_commits().items():
                done[p] = max(done.get(p, 0), o)
        return done == {p: end for p in range(4)}

    wait_for(lambda: committed_everywhere(100), 30, "the first 400 messages processed and committed")

    b.restart()
    p = producer(b.bootstrap, **{"reconnect.backoff.max.ms": 1000})
    items = [(topic, f"after-{i:05d}".encode(), f"v-{i}".encode(), None, i % 4) for i in range(400)]
    reports = produce_and_report(p, items)
    after = {(part, off): items[i][1].decode() for i, (_, part, off) in enumerate(reports)}
    assert set(after) == {(q, o) for q in range(4) for o in range(100, 200)}

    def processed():
        return Counter(po for m in ms for po in m.processed())

    wait_for(lambda: set(after) <= set(processed()), 45, "the 400 messages produced after the restart to be processed")
    counts = processed()
    assert set(counts) == set(before) | set(after), "processed offsets never produced"
    # everything before the restart was committed: none of it is processed again
    assert [po for po in before if counts[po] != 1] == []
    wait_for(lambda: committed_everywhere(200), 30, "commits of the messages after the restart")
    for m in ms:
        m.close()
    assert committed_offsets(b.bootstrap, group) == {(topic, q): 200 for q in range(4)}


def test_kip848_members_keep_their_epochs_and_assignments_across_a_restart(broker_factory):
    """The consumer protocol's members are written to __consumer_offsets as Kafka writes
    them: after a broker restart a member heartbeats with the epoch it had, keeps its
    partitions, and is sent no new assignment (no rebalance)."""
    b = broker_factory(overrides=FAST)
    topic = unique_topic("kip848-restart")
    create_topic(b.bootstrap, topic, 2)
    group = unique_group("kip848-restart")
    _raw_client(b.bootstrap, group).close()  # FindCoordinator, as every client sends first
    host, port = b.bootstrap.split(":")

    def beat(member_id: str, epoch: int, **kw) -> dict:
        with wire.Conn(host, int(port)) as c:
            payload = c.request(wire.consumer_group_heartbeat_request(1, group, member_id, epoch, **kw))
        return wire.parse_consumer_group_heartbeat_response(payload)

    joined = beat("", 0, topics=[topic], rebalance_timeout_ms=30000, owned={})
    assert joined["error_code"] == NONE, joined
    member, epoch, assignment = joined["member_id"], joined["member_epoch"], joined["assignment"]
    assert epoch == 1 and [sorted(ps) for ps in assignment.values()] == [[0, 1]], joined
    steady = beat(member, epoch, owned=assignment)
    assert (steady["error_code"], steady["member_epoch"], steady["assignment"]) == (NONE, epoch, None), steady

    b.restart()
    _raw_client(b.bootstrap, group).close()
    back = beat(member, epoch, owned=assignment)
    assert (back["error_code"], back["member_id"], back["member_epoch"], back["assignment"]) == \
        (NONE, member, epoch, None), back
    # An epoch the coordinator never gave is still fenced (FENCED_MEMBER_EPOCH).
    assert beat(member, epoch + 1)["error_code"] == 110
