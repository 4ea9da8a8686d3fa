"""Transactions in a three-broker cluster, driven by confluent-kafka (librdkafka): the
transaction coordinator of a transactional id is the leader of its partition of the
replicated `__transaction_state`, markers reach partitions led by other brokers, offsets
sent to a transaction wait in `__consumer_offsets` for its marker, and an exactly-once
copy job loses nothing and duplicates nothing when the transaction coordinator and the
group coordinator are killed with kill -9 under it.

Offsets in the comments: with one producer, a transaction's records on a partition are
followed directly by its marker."""

from __future__ import annotations

import os

from confluent_kafka.admin import ConfigResource
from kafka.protocol.consumer import OffsetFetchRequest
from kafka.protocol.metadata import FindCoordinatorRequest

import wire
from cluster import create_topic
from e2e import admin, produce_and_report, producer, wait_for
from test_cluster_coordinators import OFFSETS_TOPIC, java_hash_partition, raw_client
from test_transactions import (  # noqa: F401  (jobs is a fixture)
    READ_COMMITTED,
    READ_UNCOMMITTED,
    end_offsets,
    jobs,
    mismatch,
    offset_values,
    produce_values,
    read_to_end,
    spread,
    txn_producer,
    wait_marks,
)
from test_transactions_v2 import NONE as _NONE, INVALID_PRODUCER_EPOCH, RawTv2Producer

TXN_TOPIC = "__transaction_state"
FAST = {"group.initial.rebalance.delay.ms": 0}
NONE = 0
NOT_LEADER_OR_FOLLOWER = 6
TRANSACTION_COORDINATOR_FENCED = 52


def txn_coordinator(cluster, transactional_id: str) -> int:
    """The leader of the id's partition of __transaction_state, as metadata shows it."""
    return cluster.leader(TXN_TOPIC, java_hash_partition(transactional_id))


def committed_offsets(cluster, group: str, topic: str, partitions: int) -> dict[int, int] | None:
    """The group's committed offsets as its coordinator answers OffsetFetch over a raw
    connection; None while the coordinator moves. (librdkafka's admin client crashes on an
    OffsetFetch answered NOT_COORDINATOR: it hands the error to a consumer group it does
    not have, so it is not used while coordinators are killed.)"""
    client = raw_client(cluster)
    try:
        node = next(i for i, b in cluster.brokers.items() if b.running())
        found = client.send_and_receive(
            node, FindCoordinatorRequest(key=group, key_type=0, coordinator_keys=[group]),
            timeout_ms=10000).coordinators[0]
        if found.error_code != NONE:
            return None
        topics = [OffsetFetchRequest.OffsetFetchRequestTopic(name=topic, partition_indexes=list(range(partitions)))]
        r = client.send_and_receive(found.node_id, OffsetFetchRequest(group_id=group, topics=topics, max_version=7),
                                    timeout_ms=10000)
        if r.error_code != NONE or any(p.error_code != NONE for t in r.topics for p in t.partitions):
            return None
        return {p.partition_index: p.committed_offset for t in r.topics for p in t.partitions}
    except Exception:  # a connection to a broker that was just killed
        return None
    finally:
        client.close()


def test_a_transaction_commits_and_aborts_across_partitions_led_by_every_broker(cluster_factory):
    cluster = cluster_factory(3, FAST)
    create_topic(cluster, "orders", 3)
    assert sorted(cluster.leader("orders", p) for p in range(3)) == [1, 2, 3]

    p = txn_producer(cluster.bootstrap, "orders-writer")
    p.init_transactions(30)
    # The coordinator's state is replicated like any partition: RF 3, min ISR 2.
    state = cluster.partition(TXN_TOPIC, java_hash_partition("orders-writer"))
    assert sorted(state.replicas) == [1, 2, 3]
    a = admin(cluster.bootstrap)
    described = a.describe_configs([ConfigResource("topic", TXN_TOPIC)])
    configs = next(iter(described.values())).result(30)
    assert configs["min.insync.replicas"].value == "2"
    assert configs["cleanup.policy"].value == "compact"

    p.begin_transaction()
    first = produce_values(p, "orders", spread("c1", 9, 3))
    p.commit_transaction(30)
    p.begin_transaction()
    aborted = produce_values(p, "orders", spread("ab", 6, 3))
    p.abort_transaction(30)
    p.begin_transaction()
    second = produce_values(p, "orders", spread("c2", 3, 3))
    p.commit_transaction(30)
    # Per partition: c1 at 0-2, COMMIT 3, ab at 4-5, ABORT 6, c2 at 7, COMMIT 8.
    assert sorted(first) == sorted((q, o) for q in range(3) for o in range(3))
    assert sorted(aborted) == sorted((q, o) for q in range(3) for o in (4, 5))
    assert sorted(second) == [(q, 7) for q in range(3)]
    wait_marks(a, "orders", {q: (9, 9) for q in range(3)})

    _, committed = read_to_end(cluster.bootstrap, "orders", 3, READ_COMMITTED)
    want = {q: [(o, f"c1-{q + 3 * o}".encode()) for o in range(3)] + [(7, f"c2-{q}".encode())]
            for q in range(3)}
    assert offset_values(committed) == want
    _, everything = read_to_end(cluster.bootstrap, "orders", 3, READ_UNCOMMITTED)
    for q in range(3):
        assert [o for o, _ in offset_values(everything)[q]] == [0, 1, 2, 4, 5, 7]


def test_a_transaction_survives_its_coordinators_death(cluster_factory):
    """A transaction open when its coordinator is killed with kill -9 goes on with the new
    coordinator (the leader elected for the id's partition of __transaction_state), and its
    commit reaches every partition."""
    cluster = cluster_factory(3, FAST)
    create_topic(cluster, "ledger", 3)
    tid = "ledger-writer"
    p = txn_producer(cluster.bootstrap, tid)
    p.init_transactions(30)
    p.begin_transaction()
    produce_values(p, "ledger", spread("before", 6, 3))

    old = txn_coordinator(cluster, tid)
    cluster.brokers[old].kill()
    cluster.wait_for(lambda: txn_coordinator(cluster, tid) not in (-1, old), timeout=30,
                     what="a new leader of the transactional id's partition")
    client = raw_client(cluster)
    node = next(i for i in cluster.brokers if i != old)
    found = cluster.wait_for(
        lambda: (lambda c: c if c.error_code == NONE else None)(
            client.send_and_receive(node, FindCoordinatorRequest(key=tid, key_type=1, coordinator_keys=[tid]),
                                    timeout_ms=30000).coordinators[0]),
        timeout=30, what="FindCoordinator to name the new coordinator")
    new = found.node_id
    assert new not in (-1, old)
    client.close()

    # Records of the open transaction written to partitions the dead broker led go to
    # their new leaders; the transaction commits as a whole.
    produce_values(p, "ledger", spread("after", 3, 3), timeout=60)
    p.commit_transaction(60)
    cluster.brokers[old].start()
    cluster.wait_for(lambda: all(len(cluster.partition("ledger", q).isrs) == 3 for q in range(3)),
                     timeout=60, what="the restarted broker back in every ISR")
    a = admin(cluster.bootstrap)
    # Per partition: two records before the kill, one after, the COMMIT marker.
    wait_marks(a, "ledger", {q: (4, 4) for q in range(3)})
    _, committed = read_to_end(cluster.bootstrap, "ledger", 3, READ_COMMITTED)
    got = {q: [v for _, v in recs] for q, recs in offset_values(committed).items()}
    assert got == {q: [f"before-{q}".encode(), f"before-{q + 3}".encode(), f"after-{q}".encode()]
                   for q in range(3)}


EOS_MESSAGES = 20_000
EOS_PARTITIONS = 4


def test_eos_copy_survives_the_kill_of_its_transaction_and_group_coordinators(cluster_factory, jobs):
    """eos_job.py copies 20,000 records between two 4-partition RF=3 topics in transactions
    of up to 200 (records and consumer offsets). Meanwhile the broker coordinating its
    transactional id is killed with kill -9 and restarted, then the broker coordinating its
    group. The output read with read_committed holds every input record exactly once, in
    order per partition, and the group's committed offsets are the input's end offsets."""
    cluster = cluster_factory(3, FAST)
    src, dst = "eos-in", "eos-out"
    create_topic(cluster, src, EOS_PARTITIONS)
    create_topic(cluster, dst, EOS_PARTITIONS)
    fast = producer(cluster.bootstrap, **{"linger.ms": 20, "enable.idempotence": True, "acks": "all"})
    reports = produce_and_report(fast, [(src, str(i).encode(), f"v{i}".encode(), None, None)
                                        for i in range(EOS_MESSAGES)], timeout=120)
    placed: dict[int, list[tuple[int, int]]] = {q: [] for q in range(EOS_PARTITIONS)}
    for i, (err, part, off) in enumerate(reports):
        assert err is None, f"input record {i}: {err}"
        placed[part].append((off, i))
    want = {q: [(str(i).encode(), f"out-v{i}".encode()) for _, i in sorted(offs)] for q, offs in placed.items()}
    ends = {q: len(offs) for q, offs in placed.items()}
    assert all(n > 0 for n in ends.values()), ends
    del fast

    group, tid = "eos-group", "eos-txn"
    cfg = {"bootstrap": cluster.bootstrap, "input": src, "output": dst, "group": group,
           "instance": "eos-instance", "txn_id": tid, "batch": 200,
           "debug": os.environ.get("SLUICE_EOS_DEBUG", "")}
    job = jobs("copy", cfg, "copy")
    def after_more_commits(n: int) -> None:
        job.wait_event("commit", 120, n=len(job.events("commit")) + n)

    def kill_leader_of(topic: str, partition: int) -> int:
        """kill -9 of the partition's leader; it is started again once another broker
        leads: librdkafka's send_offsets_to_transaction() can wait forever for a group
        coordinator that left the cluster's metadata until some broker's state changes, a
        client bug that Kafka triggers alike, so the test does not leave a broker dead."""
        victim = cluster.leader(topic, partition)
        cluster.brokers[victim].kill()
        cluster.wait_for(lambda: cluster.leader(topic, partition) not in (-1, victim), timeout=30,
                         what=f"a new leader of {topic}-{partition}")
        cluster.brokers[victim].start()
        return victim

    after_more_commits(5)
    victim = kill_leader_of(TXN_TOPIC, java_hash_partition(tid))
    after_more_commits(5)
    # Those commits went through another coordinator, before the job was done.
    assert txn_coordinator(cluster, tid) not in (-1, victim)
    assert not job.events("stopped") and len(job.events("commit")) < EOS_MESSAGES // 200
    cluster.wait_for(lambda: len(cluster.partition(TXN_TOPIC, java_hash_partition(tid)).isrs) == 3
                     and len(cluster.partition(OFFSETS_TOPIC, java_hash_partition(group)).isrs) == 3,
                     timeout=60, what="the restarted broker back in the coordinators' ISRs")
    victim = kill_leader_of(OFFSETS_TOPIC, java_hash_partition(group))
    after_more_commits(5)
    assert cluster.leader(OFFSETS_TOPIC, java_hash_partition(group)) not in (-1, victim)
    assert len(job.events("commit")) < EOS_MESSAGES // 200

    a = admin(cluster.bootstrap)

    def caught_up():
        if job.proc.poll() is not None:
            raise AssertionError(f"the job exited {job.proc.returncode}\n{job.summary()}")
        return committed_offsets(cluster, group, src, EOS_PARTITIONS) == ends

    wait_for(caught_up, 180, f"the group's committed offsets to reach the input ends {ends}", interval=0.5)
    job.stop()
    assert job.events("fatal", "garbage", "consume_error") == []
    wait_for(lambda: all(hw == lso for hw, lso in end_offsets(a, dst, EOS_PARTITIONS).values()), 30,
             "the output's LSO to reach its high watermark on every partition")
    _, committed = read_to_end(cluster.bootstrap, dst, EOS_PARTITIONS, READ_COMMITTED, timeout=120)
    for q in range(EOS_PARTITIONS):
        got = [(r.key, r.value) for r in committed[q]]
        assert got == want[q], f"output partition {q} (read_committed): {mismatch(got, want[q])}"
    cluster.wait_for(lambda: all(len(cluster.partition(dst, q).isrs) == 3 for q in range(EOS_PARTITIONS)),
                     timeout=60, what="the restarted brokers back in the output's ISRs")


def test_a_marker_from_a_deposed_coordinator_is_refused(cluster_factory):
    """WriteTxnMarkers as transaction coordinators send it to partition leaders (raw frames,
    kafka-python's request classes): once a marker of coordinator epoch 5 is written for a
    producer, one of epoch 4 (a coordinator that lost its partition without noticing) is
    TRANSACTION_COORDINATOR_FENCED and writes nothing, while epoch 5 is taken again; a
    broker that does not lead the partition answers NOT_LEADER_OR_FOLLOWER."""
    import wire
    from kafka.protocol.producer.transaction import WriteTxnMarkersRequest

    cluster = cluster_factory(3)
    create_topic(cluster, "fenced", 1)
    leader = cluster.leader("fenced", 0)
    follower = next(i for i in cluster.brokers if i != leader)

    def marker(node_id: int, coordinator_epoch: int) -> int:
        marker_cls = WriteTxnMarkersRequest.WritableTxnMarker
        request = WriteTxnMarkersRequest(markers=[marker_cls(
            producer_id=4242, producer_epoch=0, transaction_result=False, coordinator_epoch=coordinator_epoch,
            topics=[marker_cls.WritableTxnMarkerTopic(name="fenced", partition_indexes=[0])])])
        b = cluster.brokers[node_id]
        with wire.Conn(b.host, b.port) as c:
            r = wire.call(c, request, version=1)
        return r.markers[0].topics[0].partitions[0].error_code

    assert marker(leader, 5) == NONE
    assert marker(leader, 4) == TRANSACTION_COORDINATOR_FENCED
    assert marker(leader, 5) == NONE
    assert marker(follower, 6) == NOT_LEADER_OR_FOLLOWER
    # Two markers were written, at offsets 0 and 1, on every replica.
    a = admin(cluster.bootstrap)
    assert end_offsets(a, "fenced", 1) == {0: (2, 2)}


def test_a_v2_transaction_adds_partitions_led_by_other_brokers(cluster_factory):
    """Transactions v2 across brokers: each partition's leader asks the transaction
    coordinator to add the partition (AddPartitionsToTxn v5) before the producer's first
    Produce v12 there, the markers carry the bumped epoch to every leader, and a batch
    of the ended transaction is refused by a leader that is not the coordinator."""
    cluster = cluster_factory(3, FAST)
    create_topic(cluster, "tv2", 3)
    leaders = {q: cluster.leader("tv2", q) for q in range(3)}
    assert sorted(leaders.values()) == [1, 2, 3]
    conns = {i: wire.Conn(b.host, b.port) for i, b in cluster.brokers.items()}
    try:
        p = RawTv2Producer(conns[1], "tv2-writer")
        coordinator = p.find_coordinator(p.id, 1)
        p.conn = conns[coordinator]
        p.init()
        pid, e0 = p.producer_id, p.epoch
        for q in range(3):
            assert p.produce("tv2", q, [f"v-{q}".encode()], sequence=0, conn=conns[leaders[q]]) == (_NONE, 0)
        assert p.end(commit=True) == (_NONE, pid, e0 + 1)
        for q in range(3):
            assert p.partition_epoch("tv2", q, conn=conns[leaders[q]]) == e0 + 1
        other = next(q for q in range(3) if leaders[q] != coordinator)
        late = p.produce("tv2", other, [b"late"], sequence=1, epoch=e0, conn=conns[leaders[other]])
        assert late[0] == INVALID_PRODUCER_EPOCH
    finally:
        for c in conns.values():
            c.close()
    _, committed = read_to_end(cluster.bootstrap, "tv2", 3, READ_COMMITTED)
    assert offset_values(committed) == {q: [(0, f"v-{q}".encode())] for q in range(3)}
