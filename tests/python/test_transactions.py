"""Transactions (KIP-98, KIP-447) driven by unmodified clients: confluent-kafka (librdkafka),
kafka-python, kafkajs (tests/js/txn.js), and killed processes (eos_job.py).

What a user of transactions checks: an exactly-once consume-transform-produce job killed
with SIGKILL again and again copies every input record exactly once and in order; aborted
transactions are invisible to read_committed consumers and visible to read_uncommitted
ones, each transaction marker taking one offset; an open transaction holds the last stable
offset (LSO) back; a second producer with the same transactional.id fences the first; the
broker aborts a transaction that outlives its timeout; a transaction survives a broker
crash, and a commit whose PrepareCommit was recorded before a crash is completed on
recovery; offsets sent to a transaction are committed only with it.

Offsets in the comments: with one producer, a transaction's records are followed directly
by its marker, so N aborted records on a partition take offsets 0..N-1, the abort marker N,
and the next transaction starts at N+1.

Every wait is a poll with a deadline; client calls have bounded timeouts.
"""

from __future__ import annotations

import json
import os
import random
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
    OFFSET_BEGINNING,
    OFFSET_INVALID,
    Consumer,
    ConsumerGroupTopicPartitions,
    IsolationLevel,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import OffsetSpec
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KTopicPartition

from e2e import Rec, admin, assigned_consumer, create_topic, produce_and_report, producer, unique_topic, wait_for

HERE = Path(__file__).resolve().parent
JS_DIR = HERE.parent / "js"
JOB_SCRIPT = HERE / "eos_job.py"

# the first rebalance of an empty group completes at once (Kafka's default waits 3 s)
FAST = {"group.initial.rebalance.delay.ms": 0}

# what librdkafka reports for a producer fenced by a newer instance: it normalizes
# INVALID_PRODUCER_EPOCH and PRODUCER_FENCED to _FENCED (rdkafka_txnmgr.c,
# rd_kafka_txn_normalize_err) and raises it as a fatal error
FENCED = {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}

READ_COMMITTED = "read_committed"
READ_UNCOMMITTED = "read_uncommitted"


def unique_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def txn_producer(bootstrap: str, transactional_id: str, **conf) -> Producer:
    base = {
        "bootstrap.servers": bootstrap,
        "transactional.id": transactional_id,
        "linger.ms": 5,
        "transaction.timeout.ms": 30000,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 500,
    }
    base.update(conf)
    return Producer(base)


def produce_values(p: Producer, topic: str, values: list[tuple[int, str]],
                   timeout: float = 30) -> list[tuple[int, int]]:
    """Produces (partition, value) records in order and flushes; returns each one's delivered
    (partition, offset); fails on a delivery error."""
    reports = produce_and_report(p, [(topic, f"k-{v}".encode(), v.encode(), None, part) for part, v in values],
                                 timeout=timeout)
    errors = [(values[i], e) for i, (e, _, _) in enumerate(reports) if e is not None]
    assert errors == [], f"delivery errors: {errors[:5]}"
    return [(part, off) for _, part, off in reports]


def spread(prefix: str, n: int, partitions: int) -> list[tuple[int, str]]:
    """n values prefix-0.. over the partitions round-robin: value i goes to partition i % partitions."""
    return [(i % partitions, f"{prefix}-{i}") for i in range(n)]


def per_partition(values: list[tuple[int, str]], offsets: list[tuple[int, int]]) -> dict[int, list[tuple[int, bytes]]]:
    """{partition: [(offset, value), ...]} of produced values at their delivered offsets."""
    out: dict[int, list] = {}
    for (part, v), (p, off) in zip(values, offsets):
        assert part == p
        out.setdefault(p, []).append((off, v.encode()))
    return out


def merged(*parts: dict[int, list]) -> dict[int, list]:
    out: dict[int, list] = {}
    for d in parts:
        for p, recs in d.items():
            out.setdefault(p, []).extend(recs)
    return {p: sorted(recs) for p, recs in out.items()}


def retry_retriable(call, what: str, timeout: float = 60):
    """Calls a transactional API again while it raises a retriable error (as librdkafka
    documents for timeouts); any other error, or one after `timeout` s, fails the test."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except KafkaException as e:
            err = e.args[0]
            if not err.retriable() or time.monotonic() > deadline:
                raise AssertionError(f"{what} failed: {err.name()} {err.str()} (retriable={err.retriable()}, "
                                     f"txn_requires_abort={err.txn_requires_abort()}, fatal={err.fatal()})") from e


def bounded(fn, timeout: float, what: str):
    """Runs a call that has no timeout of its own (kafka-python's transactional calls) in a
    thread, so that a broker that never answers fails the test instead of hanging it."""
    box: dict = {}

    def run():
        try:
            box["result"] = fn()
        except BaseException as e:  # re-raised below
            box["error"] = e

    t = threading.Thread(target=run, name=what, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise AssertionError(f"{what} did not return within {timeout}s")
    if "error" in box:
        raise box["error"]
    return box.get("result")


# --- offsets and read-back ------------------------------------------------------------------

def end_offsets(a, topic: str, partitions: int) -> dict[int, tuple[int, int]]:
    """{partition: (high watermark, last stable offset)}: ListOffsets latest with
    read_uncommitted and with read_committed isolation."""
    out: dict[int, list] = {p: [None, None] for p in range(partitions)}
    for i, level in enumerate((IsolationLevel.READ_UNCOMMITTED, IsolationLevel.READ_COMMITTED)):
        fs = a.list_offsets({TopicPartition(topic, p): OffsetSpec.latest() for p in range(partitions)},
                            isolation_level=level, request_timeout=15)
        for tp, f in fs.items():
            out[tp.partition][i] = f.result(20).offset
    return {p: tuple(v) for p, v in out.items()}


def wait_marks(a, topic: str, want: dict[int, tuple[int, int]], timeout: float = 20) -> None:
    """Waits until end_offsets() equals `want`. EndTxn is answered once the commit or abort
    is decided (PrepareCommit/PrepareAbort recorded); Kafka writes the markers to the
    partitions after that, so right after commit_transaction() returns the LSO may not have
    moved yet."""
    last = None

    def cond():
        nonlocal last
        last = end_offsets(a, topic, len(want))
        return last == want

    try:
        wait_for(cond, timeout, f"{topic} end offsets (high watermark, LSO) to be {want}")
    except AssertionError as e:
        raise AssertionError(f"{e}; last: {last}") from None


def read_to_end(bootstrap: str, topic: str, partitions: int, isolation: str,
                timeout: float = 60) -> tuple[dict[int, int], dict[int, list[Rec]]]:
    """Reads every partition from the beginning with `isolation` up to the end offset its
    ListOffsets reports when reading starts (the high watermark for read_uncommitted, the
    LSO for read_committed): until the consumer's position reaches it. librdkafka moves the
    position past transaction markers and skipped aborted records too
    (rd_kafka_fetch_op_app_prepare on control messages), so this ends exactly at the end
    offset. Returns the end offsets and the records per partition; fails on a record at or
    beyond the end offset."""
    c = assigned_consumer(bootstrap, **{"isolation.level": isolation})
    try:
        c.list_topics(topic, timeout=10)
        ends = {}
        for p in range(partitions):
            # ListOffsets with the consumer's isolation level: (0, LSO) for read_committed
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)
            assert lo == 0, f"{topic}[{p}] low watermark {lo}"
            ends[p] = hi
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        got: dict[int, list[Rec]] = {p: [] for p in range(partitions)}
        deadline = time.monotonic() + timeout

        def done() -> bool:
            return all(ends[tp.partition] == 0 or tp.offset >= ends[tp.partition] for tp in c.position(tps))

        while not done():
            if time.monotonic() > deadline:
                have = {p: len(v) for p, v in got.items()}
                pos = {tp.partition: tp.offset for tp in c.position(tps)}
                raise AssertionError(f"timed out reading {topic} ({isolation}) up to {ends}: position {pos}, "
                                     f"records read {have}")
            for m in c.consume(num_messages=10000, timeout=0.2):
                if m.error():
                    raise AssertionError(f"consume error on {topic} ({isolation}): {m.error()}")
                rec = Rec.of(m)
                assert rec.offset < ends[rec.partition], \
                    f"{topic}[{rec.partition}] ({isolation}): record at {rec.offset}, end offset {ends[rec.partition]}"
                got[rec.partition].append(rec)
        return ends, got
    finally:
        c.close()


def offset_values(got: dict[int, list[Rec]]) -> dict[int, list[tuple[int, bytes]]]:
    return {p: [(r.offset, r.value) for r in recs] for p, recs in got.items() if recs}


def group_offsets(a, group: str, topic: str, partitions: int) -> dict[int, int]:
    """The group's committed offsets (OFFSET_INVALID where none) read with the AdminClient."""
    req = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(partitions)])
    res = a.list_consumer_group_offsets([req], request_timeout=15)[group].result(20)
    out = {}
    for tp in res.topic_partitions:
        assert tp.error is None, f"{group} {tp.topic}[{tp.partition}]: {tp.error}"
        out[tp.partition] = tp.offset
    return out


def consumer_committed(c: Consumer, topic: str, partitions: int, timeout: float = 15) -> dict[int, int]:
    res = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=timeout)
    assert all(tp.error is None for tp in res), [(tp.partition, tp.error) for tp in res]
    return {tp.partition: tp.offset for tp in res}


# --- eos_job.py processes -------------------------------------------------------------------

class Job:
    """One eos_job.py process and the events it printed."""

    def __init__(self, mode: str, cfg: dict, workdir: Path, name: str):
        self.name = name
        self.stderr_path = workdir / f"job-{name}-{uuid.uuid4().hex[:6]}.stderr.log"
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(JOB_SCRIPT), mode, json.dumps(cfg)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1, cwd=HERE)
        self._events: list[dict] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, name=f"job-{name}", daemon=True)
        self._reader.start()
        self.killed_by_test = False

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                ev = {"ev": "garbage", "line": line}
            ev["ts"] = time.monotonic()
            with self._lock:
                self._events.append(ev)

    def events(self, *kinds: str) -> list[dict]:
        with self._lock:
            return [e for e in self._events if not kinds or e["ev"] in kinds]

    def _check_alive(self) -> None:
        if self.proc.poll() is not None:
            self._reader.join(5)
            raise AssertionError(f"job {self.name} exited {self.proc.returncode}\n{self.summary()}")

    def wait_event(self, kinds: str | tuple[str, ...], timeout: float, n: int = 1, also: tuple[str, ...] = ()) -> dict:
        """The n-th event of `kinds` (or the first of `also`), once printed; fails if the job
        exits first or after `timeout`."""
        kinds = (kinds,) if isinstance(kinds, str) else kinds

        def cond():
            evs = self.events(*kinds)
            if len(evs) >= n:
                return evs[n - 1]
            if also and self.events(*also):
                return self.events(*also)[0]
            self._check_alive()
            return None
        return wait_for(cond, timeout, f"job {self.name}: {kinds} #{n}", interval=0.005)

    def send(self, line: str) -> None:
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass

    def kill(self) -> None:
        """SIGKILL: no abort, no close, nothing."""
        if self.proc.poll() is None:
            self.killed_by_test = True
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._reader.join(10)

    def stop(self, word: str = "stop", timeout: float = 60) -> None:
        self.send(word)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"job {self.name} did not stop within {timeout}s\n{self.summary()}")
        self._reader.join(10)
        assert self.proc.returncode == 0, f"job {self.name} exited {self.proc.returncode}\n{self.summary()}"
        assert self.events("stopped"), f"job {self.name} exited without stopping cleanly\n{self.summary()}"

    def stderr_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.stderr_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def summary(self) -> str:
        evs = [{k: v for k, v in e.items() if k != "ts"} for e in self.events()]
        counts = Counter(e["ev"] for e in evs)
        interesting = [e for e in evs if e["ev"] not in ("begin", "offsets", "committing", "commit")]
        return (f"--- job {self.name} (exit {self.proc.returncode}): {dict(counts)}\n"
                f"last events: {evs[-6:]}\nother events: {interesting[-15:]}\nstderr tail:\n{self.stderr_tail()}")


@pytest.fixture
def jobs(request, tmp_path):
    """jobs(mode, cfg, name) -> Job; all are killed after the test (before the brokers stop).
    A failed test prints every job's summary."""
    made: list[Job] = []

    def make(mode: str, cfg: dict, name: str) -> Job:
        j = Job(mode, cfg, tmp_path, name)
        made.append(j)
        return j

    yield make
    for j in made:
        j.kill()
    if getattr(request.node, "_sluice_failed", False):
        for j in made:
            print(j.summary())


# --- 1. exactly-once copy under SIGKILL ---------------------------------------------------------

EOS_SEED = int(os.environ.get("SLUICE_EOS_SEED", "20240611"))
EOS_MESSAGES = 100_000
EOS_PARTITIONS = 4
EOS_KILLS = 12


def mismatch(got: list, want: list) -> str:
    """A short description of how two sequences differ."""
    first = next((i for i, (g, w) in enumerate(zip(got, want)) if g != w), min(len(got), len(want)))
    counts = Counter(got)
    dups = [v for v, c in counts.items() if c > 1]
    missing = [v for v in want if v not in counts]
    return (f"{len(got)} records, {len(want)} expected; first difference at index {first}: "
            f"got {got[first:first + 3]}, want {want[first:first + 3]}; {len(dups)} duplicated (first {dups[:3]}), "
            f"{len(missing)} missing (first {missing[:3]})")


def test_eos_copy_survives_sigkill(broker_factory, jobs):
    """eos_job.py copies 100,000 records between two 4-partition topics in transactions of up to
    500 (records + consumer offsets); it is killed with SIGKILL 12 times at random points (at
    start-up, right after a begin, before send_offsets_to_transaction, during the commit, at a
    random moment mid-run) and restarted with the same transactional.id and group instance.
    The output read with read_committed holds every input record exactly once, in input order
    per partition, and the group's committed offsets are the input's log end offsets."""
    b = broker_factory(overrides=FAST)
    src, dst = unique_topic("eos-in"), unique_topic("eos-out")
    create_topic(b.bootstrap, src, EOS_PARTITIONS)
    create_topic(b.bootstrap, dst, EOS_PARTITIONS)

    fast = producer(b.bootstrap, **{"linger.ms": 20, "batch.size": 262144, "compression.type": "lz4",
                                    "enable.idempotence": True})
    reports = produce_and_report(fast, [(src, str(i).encode(), f"v{i}".encode(), None, None)
                                        for i in range(EOS_MESSAGES)], timeout=120)
    placed: dict[int, list[tuple[int, int]]] = {q: [] for q in range(EOS_PARTITIONS)}
    for i, (err, part, off) in enumerate(reports):
        assert err is None, f"input record {i}: {err}"
        placed[part].append((off, i))
    want: dict[int, list[tuple[bytes, bytes]]] = {}
    for q, offs in placed.items():
        offs.sort()
        assert [o for o, _ in offs] == list(range(len(offs))), f"input partition {q} offsets are not 0..n-1"
        want[q] = [(str(i).encode(), f"out-v{i}".encode()) for _, i in offs]
    ends = {q: len(offs) for q, offs in placed.items()}
    assert all(n > 0 for n in ends.values()), f"keys did not spread over every partition: {ends}"
    del reports, fast

    group, instance, tid = unique_id("eos-group"), unique_id("eos-instance"), unique_id("eos-txn")
    cfg = {"bootstrap": b.bootstrap, "input": src, "output": dst, "group": group, "instance": instance,
           "txn_id": tid, "batch": 500}

    rng = random.Random(EOS_SEED)
    plan = ["startup"] * 2 + ["begin"] * 3 + ["offsets"] * 2 + ["committing"] * 3 + ["random"] * 2
    assert len(plan) == EOS_KILLS
    rng.shuffle(plan)
    runs: list[tuple[str, int, Job]] = []
    for n, kind in enumerate(plan):
        job = jobs("copy", cfg, f"run{n}-{kind}")
        k = rng.randint(1, 3)
        if kind == "startup":
            # a random moment of its start-up: init_transactions, the group join, the
            # committed offsets fetch (a random delay is the point here, not a wait)
            time.sleep(rng.uniform(0.05, 0.8))
        else:
            trigger = {"begin": "begin", "random": "begin", "offsets": "offsets", "committing": "committing"}[kind]
            job.wait_event(trigger, 60, n=k, also=("idle",))
            if kind == "random":
                time.sleep(rng.uniform(0.0, 0.1))  # a random point of the transaction or the next
        job.kill()
        assert job.proc.returncode == -signal.SIGKILL, \
            f"job {job.name} exited {job.proc.returncode} before it was killed\n{job.summary()}"
        runs.append((kind, k, job))

    final = jobs("copy", cfg, "final")
    a = admin(b.bootstrap)

    def caught_up():
        if final.proc.poll() is not None:
            raise AssertionError(f"the final job exited {final.proc.returncode}\n{final.summary()}")
        got = group_offsets(a, group, src, EOS_PARTITIONS)
        return got if got == ends else None

    wait_for(caught_up, 150, f"the group's committed offsets to reach the input ends {ends}", interval=0.25)
    final.stop()

    everyone = [j for _, _, j in runs] + [final]
    bad = {j.name: j.events("fatal", "garbage", "consume_error") for j in everyone}
    assert {name: evs for name, evs in bad.items() if evs} == {}, "jobs reported fatal or consumer errors"
    # the kills landed inside transactions: at least one run died with a transaction begun and
    # neither committed nor aborted (its records, if any reached the log, were aborted by the
    # next run's init_transactions)
    open_at_kill = [j.name for _, _, j in runs
                    if j.events("begin") and j.events("begin")[-1]["txn"] not in
                    {e["txn"] for e in j.events("commit", "aborted")}]
    assert open_at_kill, "no run was killed inside a transaction"
    assert group_offsets(a, group, src, EOS_PARTITIONS) == ends

    # no transaction left open on the output (the final run's last markers may still be on their way)
    wait_for(lambda: all(hw == lso for hw, lso in end_offsets(a, dst, EOS_PARTITIONS).values()), 20,
             "the output's LSO to reach its high watermark on every partition")

    _, committed = read_to_end(b.bootstrap, dst, EOS_PARTITIONS, READ_COMMITTED, timeout=120)
    for q in range(EOS_PARTITIONS):
        got = [(r.key, r.value) for r in committed[q]]
        assert got == want[q], f"output partition {q} (read_committed, seed {EOS_SEED}): {mismatch(got, want[q])}"

    # read_uncommitted also returns what the killed runs wrote in transactions that were then
    # aborted: a superset of the committed records, at the same offsets, of expected values only
    _, everything = read_to_end(b.bootstrap, dst, EOS_PARTITIONS, READ_UNCOMMITTED, timeout=120)
    aborted_total = 0
    for q in range(EOS_PARTITIONS):
        all_recs = {r.offset: (r.key, r.value) for r in everything[q]}
        assert len(everything[q]) >= len(committed[q])
        missing = [r.offset for r in committed[q] if all_recs.get(r.offset) != (r.key, r.value)]
        assert missing == [], f"output partition {q}: committed records not read at the same offsets: {missing[:5]}"
        allowed = set(want[q])
        strays = [(o, kv) for o, kv in all_recs.items() if kv not in allowed]
        assert strays == [], f"output partition {q}: records that are no transformation of its input: {strays[:5]}"
        aborted_total += len(everything[q]) - len(committed[q])
    hiccups = {j.name: [(e["ev"], e.get("call"), e.get("name")) for e in j.events("txn_error", "aborted")]
               for j in everyone if j.events("txn_error", "aborted")}
    print(f"seed {EOS_SEED}: kills {[(kind, k) for kind, k, _ in runs]}, killed inside a transaction: "
          f"{open_at_kill}, aborted records in the output log: {aborted_total}, "
          f"retried or aborted transactional calls: {hiccups}")


# --- 2. aborted transactions per client ---------------------------------------------------------

def test_confluent_aborted_invisible_to_read_committed(broker):
    """confluent-kafka: 40 records in an aborted transaction, then 60 in a committed one (over 2
    partitions). read_committed reads exactly the 60, at offsets after the abort marker;
    read_uncommitted reads all 100. A third, open transaction holds the LSO at its first
    offset until it commits."""
    topic = unique_topic("txn-cf")
    create_topic(broker.bootstrap, topic, 2)
    a = admin(broker.bootstrap)
    p = txn_producer(broker.bootstrap, unique_id("cf"))
    p.init_transactions(30)

    p.begin_transaction()
    aborted = spread("aborted", 40, 2)
    aborted_at = produce_values(p, topic, aborted)  # flushed: all in the log before the abort
    p.abort_transaction(30)
    p.begin_transaction()
    committed = spread("committed", 60, 2)
    committed_at = produce_values(p, topic, committed)
    p.commit_transaction(30)

    # per partition: aborted 0..19, abort marker 20, committed 21..50, commit marker 51
    assert aborted_at == [(i % 2, i // 2) for i in range(40)]
    assert committed_at == [(i % 2, 21 + i // 2) for i in range(60)]
    wait_marks(a, topic, {0: (52, 52), 1: (52, 52)})
    ab, co = per_partition(aborted, aborted_at), per_partition(committed, committed_at)

    ends, got = read_to_end(broker.bootstrap, topic, 2, READ_COMMITTED)
    assert ends == {0: 52, 1: 52}
    assert offset_values(got) == co
    ends, got = read_to_end(broker.bootstrap, topic, 2, READ_UNCOMMITTED)
    assert ends == {0: 52, 1: 52}
    assert offset_values(got) == merged(ab, co)

    # open: in the log (high watermark 57) but not stable (LSO 52, its first offset)
    p.begin_transaction()
    opened = spread("open", 10, 2)
    opened_at = produce_values(p, topic, opened)
    assert opened_at == [(i % 2, 52 + i // 2) for i in range(10)]
    op = per_partition(opened, opened_at)
    assert end_offsets(a, topic, 2) == {0: (57, 52), 1: (57, 52)}
    ends, got = read_to_end(broker.bootstrap, topic, 2, READ_COMMITTED)
    assert (ends, offset_values(got)) == ({0: 52, 1: 52}, co)
    ends, got = read_to_end(broker.bootstrap, topic, 2, READ_UNCOMMITTED)
    assert (ends, offset_values(got)) == ({0: 57, 1: 57}, merged(ab, co, op))

    p.commit_transaction(30)
    wait_marks(a, topic, {0: (58, 58), 1: (58, 58)})
    ends, got = read_to_end(broker.bootstrap, topic, 2, READ_COMMITTED)
    assert (ends, offset_values(got)) == ({0: 58, 1: 58}, merged(co, op))


def kpy_read(bootstrap: str, topic: str, partitions: int, isolation: str, timeout: float = 60):
    """kafka-python: reads every partition from the beginning until the consumer's position
    reaches the end offset its ListOffsets reports (the LSO for read_committed; kafka-python
    moves the position past markers and aborted batches). Returns (ends, {p: [(offset, value)]})."""
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                      auto_offset_reset="earliest", isolation_level=isolation, request_timeout_ms=30000)
    try:
        tps = [KTopicPartition(topic, p) for p in range(partitions)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        ends = {tp.partition: off for tp, off in c.end_offsets(tps).items()}
        got: dict[int, list] = {p: [] for p in range(partitions)}
        deadline = time.monotonic() + timeout
        def behind(tp) -> bool:
            pos = c.position(tp, timeout_ms=10000)
            return pos is None or pos < ends[tp.partition]

        while any(behind(tp) for tp in tps):
            assert time.monotonic() < deadline, \
                f"timed out reading {topic} ({isolation}): {({p: len(v) for p, v in got.items()})}, ends {ends}"
            for tp, recs in c.poll(timeout_ms=200).items():
                got[tp.partition].extend((r.offset, r.value) for r in recs)
        return ends, {p: v for p, v in got.items() if v}
    finally:
        c.close()


def test_kafka_python_aborted_invisible_to_read_committed(broker):
    """kafka-python 3.x has a transactional KafkaProducer (transactional_id, init_transactions,
    begin/commit/abort_transaction; kafka/producer/kafka.py): the same abort-then-commit,
    read back by KafkaConsumers with isolation_level read_committed and read_uncommitted."""
    topic = unique_topic("txn-kpy")
    create_topic(broker.bootstrap, topic, 2)
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, transactional_id=unique_id("kpy"), linger_ms=5,
                      max_block_ms=30000, request_timeout_ms=30000)
    try:
        bounded(p.init_transactions, 45, "init_transactions")

        def send_all(values):
            futures = [p.send(topic, key=f"k-{v}".encode(), value=v.encode(), partition=part) for part, v in values]
            p.flush(timeout=30)
            return [(md.partition, md.offset) for md in (f.get(timeout=10) for f in futures)]

        p.begin_transaction()
        aborted = spread("kpy-aborted", 12, 2)
        aborted_at = send_all(aborted)
        bounded(p.abort_transaction, 30, "abort_transaction")
        p.begin_transaction()
        committed = spread("kpy-committed", 20, 2)
        committed_at = send_all(committed)
        bounded(p.commit_transaction, 30, "commit_transaction")
    finally:
        p.close(timeout=10)

    # per partition: aborted 0..5, abort marker 6, committed 7..16, commit marker 17
    assert aborted_at == [(i % 2, i // 2) for i in range(12)]
    assert committed_at == [(i % 2, 7 + i // 2) for i in range(20)]
    ab, co = per_partition(aborted, aborted_at), per_partition(committed, committed_at)
    wait_marks(admin(broker.bootstrap), topic, {0: (18, 18), 1: (18, 18)})

    assert kpy_read(broker.bootstrap, topic, 2, READ_COMMITTED) == ({0: 18, 1: 18}, co)
    assert kpy_read(broker.bootstrap, topic, 2, READ_UNCOMMITTED) == ({0: 18, 1: 18}, merged(ab, co))
    # and librdkafka agrees
    ends, got = read_to_end(broker.bootstrap, topic, 2, READ_COMMITTED)
    assert (ends, offset_values(got)) == ({0: 18, 1: 18}, co)


def test_kafkajs_transactions(broker_factory):
    """kafkajs (js/txn.js): a transactional producer (idempotent, maxInFlightRequests 1) sends 6
    records and offsets {0: 1, 1: 1} in a transaction it aborts, then 10 records and offsets
    {0: 3, 1: 2} in one it commits; a readUncommitted false consumer gets exactly the 10, a
    readUncommitted true one all 16; fetchOffsets returns the committed transaction's offsets."""
    b = broker_factory(overrides=FAST)
    topic, prefix = unique_topic("txn-js"), unique_id("js")
    r = subprocess.run(["node", str(JS_DIR / "txn.js"), b.bootstrap, topic, f"{prefix}-txn", prefix, "6", "10"],
                       capture_output=True, timeout=120, cwd=JS_DIR,
                       env={**os.environ, "KAFKAJS_NO_PARTITIONER_WARNING": "1"})
    assert r.returncode == 0, f"txn.js exited {r.returncode}\n{r.stderr.decode(errors='replace')[-4000:]}"
    out = json.loads(r.stdout)
    assert out["created"] is True

    # per partition: aborted 0..2, abort marker 3, committed 4..8, commit marker 9
    def bases(sends):
        return sorted((s["partition"], s["errorCode"], s["baseOffset"]) for s in sends)
    assert bases(out["abortedSend"]) == [(0, 0, "0"), (1, 0, "0")]
    assert bases(out["committedSend"]) == [(0, 0, "4"), (1, 0, "4")]

    def table(msgs):
        return sorted((m["partition"], int(m["offset"]), m["key"], m["value"]) for m in msgs)
    aborted = [(i % 2, i // 2, f"a-{i}", f"js-aborted-{i}") for i in range(6)]
    committed = [(j % 2, 4 + j // 2, f"c-{j}", f"js-committed-{j}") for j in range(10)]
    assert table(out["readCommitted"]) == sorted(committed)
    assert table(out["readUncommitted"]) == sorted(aborted + committed)
    # in offset order per partition, as fetched
    for key in ("readCommitted", "readUncommitted"):
        for q in (0, 1):
            offs = [int(m["offset"]) for m in out[key] if m["partition"] == q]
            assert offs == sorted(offs), f"{key} partition {q} out of order: {offs}"
    assert out["fetchOffsets"] == [{"topic": topic, "partitions": [
        {"partition": 0, "offset": "3"}, {"partition": 1, "offset": "2"}]}], out["fetchOffsets"]

    a = admin(b.bootstrap)
    wait_marks(a, topic, {0: (10, 10), 1: (10, 10)})
    ends, got = read_to_end(b.bootstrap, topic, 2, READ_COMMITTED)
    assert {p: [(o, v.decode()) for o, v in recs] for p, recs in offset_values(got).items()} == \
        {q: [(o, v) for p, o, _, v in sorted(committed) if p == q] for q in (0, 1)}


# --- 3. zombie fencing ---------------------------------------------------------------------------

@pytest.mark.parametrize("zombie_next", ["produce", "commit"])
def test_zombie_producer_is_fenced(broker, zombie_next):
    """Producer A has an open transaction with 5 records in the log; producer B with the same
    transactional.id calls init_transactions, which aborts A's transaction. A's next produce
    (or its commit) fails with a fatal fencing error; nothing of A is visible to
    read_committed, B's committed records are."""
    topic = unique_topic("txn-zombie")
    create_topic(broker.bootstrap, topic, 1)
    a = admin(broker.bootstrap)
    tid = unique_id("zombie")

    zombie = txn_producer(broker.bootstrap, tid)
    zombie.init_transactions(30)
    zombie.begin_transaction()
    assert produce_values(zombie, topic, spread("zombie", 5, 1)) == [(0, i) for i in range(5)]
    assert end_offsets(a, topic, 1) == {0: (5, 0)}

    fresh = txn_producer(broker.bootstrap, tid)
    fresh.init_transactions(30)
    # the zombie's transaction was aborted: its marker at 5 makes everything stable (Kafka's
    # InitProducerId answers only once that abort is complete)
    wait_marks(a, topic, {0: (6, 6)})

    late: list = []
    if zombie_next == "produce":
        zombie.produce(topic, value=b"zombie-late", partition=0, on_delivery=lambda err, msg: late.append(err))
    with pytest.raises(KafkaException) as exc:
        zombie.commit_transaction(15)
    err = exc.value.args[0]
    assert err.code() in FENCED and err.fatal(), f"{err.name()}: {err.str()} (fatal={err.fatal()})"
    if zombie_next == "produce":
        zombie.flush(10)  # serves the delivery report of the refused record
        assert len(late) == 1 and late[0] is not None, f"the zombie's late record was delivered: {late}"
    del zombie

    fresh.begin_transaction()
    # after the zombie's 5 records (0..4) and the abort marker (5)
    assert produce_values(fresh, topic, spread("fresh", 3, 1)) == [(0, 6), (0, 7), (0, 8)]
    fresh.commit_transaction(30)
    wait_marks(a, topic, {0: (10, 10)})

    fresh_recs = [(6, b"fresh-0"), (7, b"fresh-1"), (8, b"fresh-2")]
    ends, got = read_to_end(broker.bootstrap, topic, 1, READ_COMMITTED)
    assert (ends, offset_values(got)) == ({0: 10}, {0: fresh_recs})
    ends, got = read_to_end(broker.bootstrap, topic, 1, READ_UNCOMMITTED)
    assert (ends, offset_values(got)) == ({0: 10}, {0: [(i, f"zombie-{i}".encode()) for i in range(5)] + fresh_recs})


# --- 4. the broker aborts a transaction that outlives its timeout --------------------------------

def test_transaction_timeout_aborts_on_the_broker(broker_factory):
    """A transaction with transaction.timeout.ms=2000 (InitProducerId's timeout) and 5 flushed
    records, left alone: the broker aborts it no sooner than 2 s after it began (its check
    runs every 200 ms here): the abort marker moves the LSO to the log end, read_committed
    never sees the records, the producer's commit afterwards fails (it was fenced), and a new
    producer with the same transactional.id works."""
    b = broker_factory(overrides={"transaction.abort.timed.out.transaction.cleanup.interval.ms": 200})
    topic = unique_topic("txn-timeout")
    create_topic(b.bootstrap, topic, 1)
    a = admin(b.bootstrap)
    tid = unique_id("timeout")
    p = txn_producer(b.bootstrap, tid, **{"transaction.timeout.ms": 2000})
    p.init_transactions(10)

    began = time.monotonic()
    p.begin_transaction()
    assert produce_values(p, topic, spread("expired", 5, 1), timeout=10) == [(0, i) for i in range(5)]
    assert end_offsets(a, topic, 1) == {0: (5, 0)}, "the open transaction should hold the LSO at 0"

    # the broker aborts it: an abort marker at 5, LSO = log end
    wait_marks(a, topic, {0: (6, 6)}, timeout=20)
    elapsed = time.monotonic() - began
    # the transaction began on the broker (its first AddPartitionsToTxn) after `began`
    assert elapsed >= 2.0, f"aborted {elapsed:.2f}s after the transaction began, before its 2 s timeout"
    assert elapsed < 10.0, f"aborted only {elapsed:.2f}s after the transaction began (timeout 2 s, checks every 200 ms)"

    ends, got = read_to_end(b.bootstrap, topic, 1, READ_COMMITTED)
    assert (ends, offset_values(got)) == ({0: 6}, {})
    ends, got = read_to_end(b.bootstrap, topic, 1, READ_UNCOMMITTED)
    assert (ends, offset_values(got)) == ({0: 6}, {0: [(i, f"expired-{i}".encode()) for i in range(5)]})

    # the coordinator bumped the epoch when it aborted: EndTxn(commit) with the old epoch is
    # PRODUCER_FENCED (INVALID_TXN_STATE from brokers that do not bump), fatal in librdkafka
    with pytest.raises(KafkaException) as exc:
        p.commit_transaction(10)
    err = exc.value.args[0]
    assert err.code() in FENCED | {KafkaError.INVALID_TXN_STATE} and (err.fatal() or err.txn_requires_abort()), \
        f"{err.name()}: {err.str()} (fatal={err.fatal()}, txn_requires_abort={err.txn_requires_abort()})"
    assert end_offsets(a, topic, 1) == {0: (6, 6)}, "the failed commit changed the log"
    del p

    p2 = txn_producer(b.bootstrap, tid)
    p2.init_transactions(30)
    p2.begin_transaction()
    assert produce_values(p2, topic, spread("after", 2, 1)) == [(0, 6), (0, 7)]
    p2.commit_transaction(30)
    wait_marks(a, topic, {0: (9, 9)})
    ends, got = read_to_end(b.bootstrap, topic, 1, READ_COMMITTED)
    assert (ends, offset_values(got)) == ({0: 9}, {0: [(6, b"after-0"), (7, b"after-1")]})


# --- 5. broker crashes ---------------------------------------------------------------------------

def test_transactions_across_broker_kill9(broker_factory):
    """kill -9 of the broker (log.flush.interval.messages=1) while a transaction is open with its
    records flushed: after the restart the same producer commits it (retrying retriable
    errors); another open across a second kill -9 is aborted after the restart; a third is
    committed. read_committed reads exactly the first and the third, at their offsets."""
    b = broker_factory(overrides={"log.flush.interval.messages": 1})
    topic = unique_topic("txn-kill9")
    create_topic(b.bootstrap, topic, 2)
    a = admin(b.bootstrap)
    p = txn_producer(b.bootstrap, unique_id("kill9"))
    p.init_transactions(30)

    p.begin_transaction()
    first = spread("first", 10, 2)
    first_at = produce_values(p, topic, first)
    b.kill()
    b.start()
    retry_retriable(lambda: p.commit_transaction(15), "commit_transaction after the restart")

    p.begin_transaction()
    second = spread("second", 10, 2)
    second_at = produce_values(p, topic, second)
    b.kill()
    b.start()
    retry_retriable(lambda: p.abort_transaction(15), "abort_transaction after the restart")

    p.begin_transaction()
    third = spread("third", 10, 2)
    third_at = produce_values(p, topic, third)
    retry_retriable(lambda: p.commit_transaction(15), "commit_transaction")

    # per partition: first 0..4, commit 5, second 6..10, abort 11, third 12..16, commit 17
    assert first_at == [(i % 2, i // 2) for i in range(10)]
    assert second_at == [(i % 2, 6 + i // 2) for i in range(10)]
    assert third_at == [(i % 2, 12 + i // 2) for i in range(10)]
    wait_marks(a, topic, {0: (18, 18), 1: (18, 18)})
    c1, c2, c3 = per_partition(first, first_at), per_partition(second, second_at), per_partition(third, third_at)
    ends, got = read_to_end(b.bootstrap, topic, 2, READ_COMMITTED)
    assert (ends, offset_values(got)) == ({0: 18, 1: 18}, merged(c1, c3))
    ends, got = read_to_end(b.bootstrap, topic, 2, READ_UNCOMMITTED)
    assert (ends, offset_values(got)) == ({0: 18, 1: 18}, merged(c1, c2, c3))


@pytest.mark.parametrize("client", ["killed", "retries"])
def test_prepared_commit_is_completed_after_a_crash(broker_factory, jobs, client):
    """The broker runs with SLUICE_CRASH_POINT=end-txn-after-prepare: it dies on the EndTxn of a
    transaction (10 records on 2 partitions, flushed) right after recording PrepareCommit,
    before any marker. The producer's commit_transaction(5 s) fails while the broker is down.
    The broker restarts without the crash point: with the producer process killed before
    the restart, the coordinator completes the commit on its own ("killed"); with the
    producer alive, its commit_transaction called again succeeds ("retries", as librdkafka
    documents for a timed-out commit). Either way read_committed then reads the 10 records,
    and a new producer with the same transactional.id commits another transaction."""
    b = broker_factory(overrides={"log.flush.interval.messages": 1},
                       env={"SLUICE_CRASH_POINT": "end-txn-after-prepare"})
    topic = unique_topic("txn-prepared")
    create_topic(b.bootstrap, topic, 2)
    tid = unique_id("prepared")
    values = spread("prepared", 10, 2)
    job = jobs("txn", {"bootstrap": b.bootstrap, "topic": topic, "txn_id": tid,
                       "values": [[part, v] for part, v in values], "commit_timeout": 5}, f"txn-{client}")
    flushed = job.wait_event("flushed", 60)
    assert flushed["deliveries"] == [[i % 2, i // 2, None] for i in range(10)]

    wait_for(lambda: not b.running(), 30, "the broker to die at the crash point (EndTxn after PrepareCommit)")
    assert b.proc.returncode != 0, "the broker exited cleanly instead of crashing at the crash point"
    failed = job.wait_event(("commit_failed", "committed"), 30)
    assert failed["ev"] == "commit_failed", f"the commit succeeded with the broker dead: {failed}"

    if client == "killed":
        job.kill()  # no client left to retry the EndTxn
    b.env = {}
    b.start()
    if client == "retries":
        # librdkafka: "On timeout the application may call the function again"
        assert failed["retriable"], f"the failed commit is not retriable: {failed}"
        job.send("retry")
        done = job.wait_event(("commit_failed", "committed"), 90, n=2)
        assert done["ev"] == "committed", f"the retried commit failed: {done}"
        job.stop("exit")

    a = admin(b.bootstrap)

    # the commit markers of the prepared transaction: LSO = log end = 6
    wait_marks(a, topic, {0: (6, 6), 1: (6, 6)}, timeout=60)
    prepared = per_partition(values, [(i % 2, i // 2) for i in range(10)])
    ends, got = read_to_end(b.bootstrap, topic, 2, READ_COMMITTED)
    assert (ends, offset_values(got)) == ({0: 6, 1: 6}, prepared)

    p2 = txn_producer(b.bootstrap, tid)
    p2.init_transactions(30)
    p2.begin_transaction()
    after = spread("after", 4, 2)
    after_at = produce_values(p2, topic, after)
    assert after_at == [(i % 2, 6 + i // 2) for i in range(4)]
    p2.commit_transaction(30)
    wait_marks(a, topic, {0: (9, 9), 1: (9, 9)})
    ends, got = read_to_end(b.bootstrap, topic, 2, READ_COMMITTED)
    assert (ends, offset_values(got)) == ({0: 9, 1: 9}, merged(prepared, per_partition(after, after_at)))


# --- 6. offsets sent to a transaction --------------------------------------------------------------

def test_transactional_offsets_visible_only_after_commit(broker):
    """send_offsets_to_transaction (AddOffsetsToTxn + TxnOffsetCommit): the group's committed
    offsets do not change with an aborted transaction, and equal the sent offsets after a
    committed one. While a transaction with offsets is open, OffsetFetch returns the
    previous commit, and with require_stable (a read_committed consumer's committed(),
    KIP-447) does not return a result before the transaction ends."""
    topic = unique_topic("txn-offsets")
    create_topic(broker.bootstrap, topic, 2)
    produce_values(producer(broker.bootstrap), topic, spread("in", 60, 2))
    group = unique_id("txn-offsets-group")
    a = admin(broker.bootstrap)
    base = {"bootstrap.servers": broker.bootstrap, "group.id": group, "enable.auto.commit": False}
    # never subscribed: the group metadata of a consumer with a manual assignment (generation -1)
    stable = Consumer({**base, "isolation.level": READ_COMMITTED})
    plain = Consumer({**base, "isolation.level": READ_UNCOMMITTED})
    md = stable.consumer_group_metadata()
    p = txn_producer(broker.bootstrap, unique_id("offsets"))
    p.init_transactions(30)

    def send(o0: int, o1: int) -> None:
        p.send_offsets_to_transaction([TopicPartition(topic, 0, o0), TopicPartition(topic, 1, o1)], md, 30)

    def settles_at(want: dict[int, int]) -> None:
        """Once the transaction is complete (Kafka applies or drops the pending offsets when
        it writes the markers, after EndTxn returned), which is when an OffsetFetch with
        require_stable answers, the offsets read with it, without it, and by the
        AdminClient all equal `want`."""
        last: dict = {}

        def cond():
            try:
                res = stable.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=2)
            except KafkaException as e:  # UNSTABLE_OFFSET_COMMIT, retried by librdkafka until the timeout
                last["stable"] = e.args[0].name()
                return False
            if any(tp.error is not None for tp in res):
                last["stable"] = [str(tp.error) for tp in res]
                return False
            last["stable"] = {tp.partition: tp.offset for tp in res}
            last["plain"] = consumer_committed(plain, topic, 2)
            last["admin"] = group_offsets(a, group, topic, 2)
            return last["stable"] == last["plain"] == last["admin"] == want

        try:
            wait_for(cond, 20, f"the group's committed offsets to settle at {want}")
        except AssertionError as e:
            raise AssertionError(f"{e}; last: {last}") from None

    nothing = {0: OFFSET_INVALID, 1: OFFSET_INVALID}
    p.begin_transaction()
    send(5, 7)
    p.abort_transaction(30)
    settles_at(nothing)

    p.begin_transaction()
    produce_values(p, topic, [(0, "with-offsets")])
    send(10, 3)
    p.commit_transaction(30)
    settles_at({0: 10, 1: 3})

    p.begin_transaction()
    send(20, 20)
    # open: the pending offsets are not the group's offsets
    assert group_offsets(a, group, topic, 2) == {0: 10, 1: 3}
    assert consumer_committed(plain, topic, 2) == {0: 10, 1: 3}
    # require_stable: UNSTABLE_OFFSET_COMMIT, which librdkafka retries until the call times out
    try:
        res = stable.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=3)
    except KafkaException as e:
        assert e.args[0].code() == KafkaError._TIMED_OUT, e.args[0]
    else:
        assert [tp.error.code() if tp.error else None for tp in res] == [KafkaError.UNSTABLE_OFFSET_COMMIT] * 2, \
            f"OffsetFetch(require_stable) during an open transaction returned {[(tp.offset, tp.error) for tp in res]}"
    p.abort_transaction(30)
    settles_at({0: 10, 1: 3})

    p.begin_transaction()
    send(25, 30)
    p.commit_transaction(30)
    settles_at({0: 25, 1: 30})
    stable.close()
    plain.close()


# --- 7. operator views (KIP-664 tooling) ----------------------------------------------------------

def test_operator_views_describe_list_and_producers(broker):
    """kafka-python's admin client (the calls behind kafka-transactions.sh): while a
    confluent-kafka transaction is open over two partitions, DescribeTransactions reports it
    Ongoing with its producer id, epoch, timeout, start time and partitions; ListTransactions
    finds it by state, producer id, duration and id pattern (and not by other values);
    DescribeProducers shows the producer with its last sequence and the open transaction's
    first offset. After the commit: CompleteCommit, no partitions, no open transaction. An
    unknown id is TRANSACTIONAL_ID_NOT_FOUND."""
    from kafka import KafkaAdminClient
    from kafka.errors import TransactionalIdNotFoundError

    topic = unique_topic("txn-views")
    create_topic(broker.bootstrap, topic, 2)
    produce_values(producer(broker.bootstrap, **{"enable.idempotence": True}), topic,
                   [(0, "plain-0"), (0, "plain-1")])
    tid = unique_id("views")
    p = txn_producer(broker.bootstrap, tid, **{"transaction.timeout.ms": 45000})
    p.init_transactions(30)
    kadmin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15000)
    try:
        before = time.time() * 1000
        p.begin_transaction()
        produce_values(p, topic, [(0, "a"), (0, "b"), (0, "c"), (1, "d")])
        after = time.time() * 1000

        d = kadmin.describe_transactions([tid])[tid]
        assert d.state.value == "Ongoing"
        assert d.producer_id >= 0 and d.producer_epoch == 0
        assert d.transaction_timeout_ms == 45000
        assert before - 1000 <= d.transaction_start_time_ms <= after + 1000
        assert d.topic_partitions == {KTopicPartition(topic, 0), KTopicPartition(topic, 1)}
        pid = d.producer_id

        def listed(**filters):
            rows = [t for ts in kadmin.list_transactions(**filters).values() for t in ts]
            return {(t.transactional_id, t.producer_id, t.state.value) for t in rows if t.transactional_id == tid}

        mine = {(tid, pid, "Ongoing")}
        assert listed() == mine
        assert listed(state_filters=["Ongoing"]) == mine
        assert listed(state_filters=["CompleteCommit"]) == set()
        assert listed(producer_id_filters=[pid]) == mine
        assert listed(producer_id_filters=[pid + 1000]) == set()
        assert listed(transactional_id_pattern="^views-") == mine
        assert listed(transactional_id_pattern="^nomatch") == set()
        wait_for(lambda: listed(duration_filter_ms=50) == mine, 10, "the transaction to run for 50 ms")
        assert listed(duration_filter_ms=3_600_000) == set()

        states = kadmin.describe_producers([KTopicPartition(topic, 0), KTopicPartition(topic, 1)])
        p0 = {s.producer_id: s for s in states[KTopicPartition(topic, 0)].active_producers}
        p1 = {s.producer_id: s for s in states[KTopicPartition(topic, 1)].active_producers}
        # partition 0: the idempotent plain producer's 2 records at 0-1, then a, b, c from 2
        assert (p0[pid].producer_epoch, p0[pid].last_sequence, p0[pid].current_transaction_start_offset) == (0, 2, 2)
        assert (p1[pid].producer_epoch, p1[pid].last_sequence, p1[pid].current_transaction_start_offset) == (0, 0, 0)
        assert [s.current_transaction_start_offset for q, s in p0.items() if q != pid] == [-1]

        p.commit_transaction(30)
        d = kadmin.describe_transactions([tid])[tid]
        assert (d.state.value, d.producer_id, d.topic_partitions) == ("CompleteCommit", pid, set())
        assert listed(state_filters=["Ongoing"]) == set()
        assert listed() == {(tid, pid, "CompleteCommit")}
        states = kadmin.describe_producers([KTopicPartition(topic, 0)])
        p0 = {s.producer_id: s for s in states[KTopicPartition(topic, 0)].active_producers}
        assert p0[pid].current_transaction_start_offset == -1

        with pytest.raises(TransactionalIdNotFoundError):
            kadmin.describe_transactions([unique_id("nobody")])
    finally:
        kadmin.close()


def test_operator_abort_of_an_open_transaction(broker):
    """kafka-python's admin `abort_transaction` (WriteTxnMarkers with an ABORT marker, what
    `kafka-transactions.sh abort` sends for a hanging transaction) ends the open transaction
    on the one partition it names: that partition's LSO reaches its high watermark past the
    marker and read_committed never returns the records; the other partition stays open.
    When the producer then commits, only the untouched partition's records are committed."""
    from kafka import KafkaAdminClient
    from kafka.admin._transactions import AbortTransactionSpec

    topic = unique_topic("txn-admin-abort")
    create_topic(broker.bootstrap, topic, 2)
    a = admin(broker.bootstrap)
    tid = unique_id("hanging")
    p = txn_producer(broker.bootstrap, tid)
    p.init_transactions(30)
    kadmin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15000)
    try:
        p.begin_transaction()
        produce_values(p, topic, [(0, "a"), (0, "b"), (0, "c"), (1, "d")])
        assert end_offsets(a, topic, 2) == {0: (3, 0), 1: (1, 0)}
        d = kadmin.describe_transactions([tid])[tid]
        kadmin.abort_transaction(AbortTransactionSpec(
            topic_partition=KTopicPartition(topic, 0), producer_id=d.producer_id,
            producer_epoch=d.producer_epoch))
        # the ABORT marker takes offset 3 and ends the transaction on partition 0 only
        assert end_offsets(a, topic, 2) == {0: (4, 4), 1: (1, 0)}
        ends, got = read_to_end(broker.bootstrap, topic, 2, READ_COMMITTED)
        assert (ends, offset_values(got)) == ({0: 4, 1: 0}, {})

        p.commit_transaction(30)
        wait_marks(a, topic, {0: (5, 5), 1: (2, 2)})
        ends, got = read_to_end(broker.bootstrap, topic, 2, READ_COMMITTED)
        assert (ends, offset_values(got)) == ({0: 5, 1: 2}, {1: [(0, b"d")]})
        ends, got = read_to_end(broker.bootstrap, topic, 2, READ_UNCOMMITTED)
        assert offset_values(got) == {0: [(0, b"a"), (1, b"b"), (2, b"c")], 1: [(0, b"d")]}
    finally:
        kadmin.close()


def test_transaction_timeout_above_the_broker_maximum_is_refused(broker_factory):
    """A producer asking for a transaction.timeout.ms above the broker's
    transaction.max.timeout.ms gets INVALID_TRANSACTION_TIMEOUT from init_transactions, as
    from Kafka; one at the maximum is accepted."""
    b = broker_factory(overrides={"transaction.max.timeout.ms": 20000})
    too_long = txn_producer(b.bootstrap, unique_id("too-long"), **{"transaction.timeout.ms": 20001})
    with pytest.raises(KafkaException) as e:
        too_long.init_transactions(20)
    assert e.value.args[0].code() == KafkaError.INVALID_TRANSACTION_TIMEOUT, e.value.args[0]
    at_max = txn_producer(b.bootstrap, unique_id("at-max"), **{"transaction.timeout.ms": 20000})
    at_max.init_transactions(20)


def test_idle_transactional_ids_expire(broker_factory):
    """transactional.id.expiration.ms: an id idle for longer is forgotten (DescribeTransactions
    answers TRANSACTIONAL_ID_NOT_FOUND) and its next producer gets a new producer id; an id
    that keeps working is kept."""
    from kafka import KafkaAdminClient
    from kafka.errors import TransactionalIdNotFoundError

    b = broker_factory(overrides={"transactional.id.expiration.ms": 1500,
                                  "transaction.remove.expired.transaction.cleanup.interval.ms": 100})
    topic = unique_topic("txn-expiry")
    create_topic(b.bootstrap, topic, 1)
    tid = unique_id("idle")
    kadmin = KafkaAdminClient(bootstrap_servers=b.bootstrap, request_timeout_ms=15000)
    try:
        p = txn_producer(b.bootstrap, tid)
        p.init_transactions(30)
        p.begin_transaction()
        produce_values(p, topic, [(0, "x")])
        p.commit_transaction(30)
        first_pid = kadmin.describe_transactions([tid])[tid].producer_id

        def forgotten():
            try:
                kadmin.describe_transactions([tid])
                return False
            except TransactionalIdNotFoundError:
                return True

        started = time.monotonic()
        wait_for(forgotten, 15, f"{tid} to expire")
        assert time.monotonic() - started >= 1.0, "expired before transactional.id.expiration.ms"
        p2 = txn_producer(b.bootstrap, tid)
        p2.init_transactions(30)
        d = kadmin.describe_transactions([tid])[tid]
        assert d.producer_id != first_pid
        assert (d.state.value, d.producer_epoch) == ("Empty", 0)
    finally:
        kadmin.close()
