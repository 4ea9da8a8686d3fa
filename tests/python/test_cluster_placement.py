"""Moving replicas and leaders in a three-broker cluster: AlterPartitionReassignments and
ListPartitionReassignments through kafka-python's admin client, ElectLeaders through
confluent-kafka's, and `sluice topic reassign|reassignments|elect`."""

from __future__ import annotations

import os
import signal
import subprocess

from confluent_kafka import KafkaError
from confluent_kafka import TopicPartition as CkTopicPartition
from confluent_kafka.admin import NewTopic
from confluent_kafka import ElectionType
from kafka import TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import InvalidReplicationAssignmentError, NoReassignmentInProgressError
from kafka.protocol.admin import DescribeLogDirsRequest

import wire
from conftest import SLUICE_BIN
from test_cluster import consume_all, produce, segment_bytes


def sluice(cluster, *args: str) -> str:
    argv = [str(SLUICE_BIN), *args, "--bootstrap-server", cluster.bootstrap]
    r = subprocess.run(argv, capture_output=True, timeout=60)
    assert r.returncode == 0, f"{argv[1:]} exited {r.returncode}\n{r.stdout.decode()}\n{r.stderr.decode()}"
    return r.stdout.decode()


def create_placed(cluster, name: str, replicas: list[int]):
    admin = cluster.admin()
    futures = admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=-1, replica_assignment=[replicas])], operation_timeout=30)
    futures[name].result(timeout=30)
    cluster.wait_for(lambda: sorted(cluster.partition(name, 0).isrs) == sorted(replicas),
                     what=f"{name} in sync on {replicas}")


def settled(cluster, name: str, replicas: list[int]):
    """The partition's replicas are exactly `replicas`, all in sync, and no move is listed."""
    p = cluster.partition(name, 0)
    return p.replicas == replicas and sorted(p.isrs) == sorted(replicas) and p.leader in replicas


def hosted(broker, topic: str) -> list[int]:
    """The partitions of `topic` that the broker's DescribeLogDirs lists."""
    with wire.Conn(broker.host, broker.port, timeout=5) as conn:
        (result,) = wire.call(conn, DescribeLogDirsRequest(topics=None), 4).results
    return sorted(p.partition_index for t in result.topics if t.name == topic for p in t.partitions)


def test_a_partition_moves_to_other_brokers_with_every_record(cluster_factory):
    cluster = cluster_factory(3)
    create_placed(cluster, "moving", [1, 2])
    values = [f"rec-{i:04d}".encode() for i in range(500)]
    produce(cluster, "moving", values, partition=0)

    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    try:
        errors = admin.alter_partition_reassignments({TopicPartition("moving", 0): [2, 3]})
        assert errors == {TopicPartition("moving", 0): None}
        cluster.wait_for(lambda: settled(cluster, "moving", [2, 3]), timeout=60,
                         what="moving-0 on brokers 2 and 3")
        cluster.wait_for(lambda: admin.list_partition_reassignments() == {}, what="no move listed")
        # Broker 1, the old leader, was removed: 2 leads now.
        assert cluster.partition("moving", 0).leader == 2
        # Broker 1's copy is deleted, as Kafka deletes a replica its broker stops hosting.
        cluster.wait_for(lambda: hosted(cluster.brokers[1], "moving") == []
                         and segment_bytes(cluster.brokers[1], "moving", 0) == b"",
                         what="broker 1's moved replica deleted")
        assert hosted(cluster.brokers[2], "moving") == hosted(cluster.brokers[3], "moving") == [0]

        # Errors Kafka gives: an unregistered broker, a cancellation with nothing to cancel.
        errors = admin.alter_partition_reassignments({TopicPartition("moving", 0): [2, 9]})
        assert errors == {TopicPartition("moving", 0): InvalidReplicationAssignmentError}
        errors = admin.alter_partition_reassignments({TopicPartition("moving", 0): None})
        assert errors == {TopicPartition("moving", 0): NoReassignmentInProgressError}
    finally:
        admin.close()

    # Every record is on the new replicas, byte for byte the same, and readable.
    cluster.wait_for(lambda: segment_bytes(cluster.brokers[2], "moving", 0)
                     == segment_bytes(cluster.brokers[3], "moving", 0), what="replicas identical")
    got = consume_all(cluster, "moving", len(values))
    assert [(o, v) for _, o, v in sorted(got, key=lambda r: r[1])] == list(enumerate(values))
    more = produce(cluster, "moving", [b"after-the-move"], partition=0)
    assert [(o, v) for _, o, v in more] == [(500, b"after-the-move")]

    # Back again with the CLI, which waits for the move to complete.
    out = sluice(cluster, "topic", "reassign", "moving", "--partition", "0", "--replicas", "3,1", "--wait")
    assert out == "Reassignment of moving-0 to replicas 3,1 completed.\n"
    assert settled(cluster, "moving", [3, 1])
    assert cluster.partition("moving", 0).leader == 3
    assert sluice(cluster, "topic", "reassignments") == ""
    got = consume_all(cluster, "moving", 501)
    assert [v for _, _, v in sorted(got, key=lambda r: r[1])] == values + [b"after-the-move"]


def test_a_partition_moved_away_loses_its_data_while_its_sibling_stays(cluster_factory):
    cluster = cluster_factory(3)
    admin = cluster.admin()
    admin.create_topics([NewTopic("split", num_partitions=2, replication_factor=-1,
                                  replica_assignment=[[1, 2], [2, 1]])])["split"].result(timeout=30)
    cluster.wait_for(lambda: all(len(cluster.partition("split", p).isrs) == 2 for p in (0, 1)),
                     what="split in sync")
    for p in (0, 1):
        produce(cluster, "split", [f"{p}-{i}".encode() for i in range(50)], partition=p)
    out = sluice(cluster, "topic", "reassign", "split", "--partition", "0", "--replicas", "2,3", "--wait")
    assert out == "Reassignment of split-0 to replicas 2,3 completed.\n"

    cluster.wait_for(lambda: hosted(cluster.brokers[1], "split") == [1]
                     and segment_bytes(cluster.brokers[1], "split", 0) == b"",
                     what="broker 1's copy of split-0 emptied")
    # Its other partition is untouched and still in sync.
    assert segment_bytes(cluster.brokers[1], "split", 1) == segment_bytes(cluster.brokers[2], "split", 1) != b""
    assert sorted(cluster.partition("split", 1).isrs) == [1, 2]
    got = consume_all(cluster, "split", 100)
    assert sorted(v for _, _, v in got) == sorted(f"{p}-{i}".encode() for p in (0, 1) for i in range(50))


def test_describe_reports_what_kafka_topics_reports(cluster_factory):
    """`sluice topic describe` with kafka-topics.sh's report options, once broker 3 stopped."""
    cluster = cluster_factory(3)
    admin = cluster.admin()
    topics = [NewTopic("healthy", 1, replication_factor=-1, replica_assignment=[[1, 2, 3]],
                       config={"min.insync.replicas": "2"}),
              NewTopic("strict", 1, replication_factor=-1, replica_assignment=[[1, 2, 3]],
                       config={"min.insync.replicas": "3"}),
              NewTopic("solo", 1, replication_factor=-1, replica_assignment=[[3]])]
    for f in admin.create_topics(topics).values():
        f.result(timeout=30)
    cluster.wait_for(lambda: all(len(cluster.partition(t, 0).isrs) == n
                                 for t, n in [("healthy", 3), ("strict", 3), ("solo", 1)]), what="in sync")
    assert sluice(cluster, "topic", "describe", "--under-replicated-partitions") == ""

    cluster.brokers[3].stop()
    cluster.wait_for(lambda: sorted(cluster.partition("strict", 0).isrs) == [1, 2]
                     and sorted(cluster.partition("healthy", 0).isrs) == [1, 2]
                     and cluster.partition("solo", 0).leader == -1, what="broker 3 gone from the ISRs")

    def reported(flag: str) -> list[str]:
        return [line.split("\t")[1] + "-" + line.split("\t")[2].removeprefix("Partition: ")
                for line in sluice(cluster, "topic", "describe", flag).splitlines()]

    assert reported("--under-replicated-partitions") == ["Topic: healthy-0", "Topic: strict-0"]
    assert reported("--unavailable-partitions") == ["Topic: solo-0"]
    assert reported("--under-min-isr-partitions") == ["Topic: solo-0", "Topic: strict-0"]
    # solo-0 keeps its last in-sync replica while it has no leader: one, its minimum.
    assert reported("--at-min-isr-partitions") == ["Topic: healthy-0", "Topic: solo-0"]
    out = sluice(cluster, "topic", "describe", "strict", "--under-min-isr-partitions")
    assert out == ("\tTopic: strict\tPartition: 0\tLeader: 1\tReplicas: 1,2,3\tIsr: 1,2"
                   "\tLogStartOffset: 0\tLogEndOffset: 0\n")
    argv = [str(SLUICE_BIN), "topic", "describe", "--unavailable-partitions", "--at-min-isr-partitions",
            "--bootstrap-server", cluster.bootstrap]
    r = subprocess.run(argv, capture_output=True, timeout=60)
    assert r.returncode != 0 and b"at most one of" in r.stderr


def test_a_reassignment_waits_for_a_stopped_target_and_can_be_cancelled(cluster_factory):
    # A long session, so that the stopped broker stays registered while the move starts.
    cluster = cluster_factory(3, overrides={"broker.session.timeout.ms": 15000})
    create_placed(cluster, "held", [1, 2])
    produce(cluster, "held", [b"x"] * 10, partition=0)
    os.kill(cluster.brokers[3].pid, signal.SIGSTOP)
    try:
        out = sluice(cluster, "topic", "reassign", "held", "--partition", "0", "--replicas", "1,3")
        assert out == "Reassignment of held-0 to replicas 1,3 started.\n"
        # 3 cannot catch up while stopped: the move is listed, with what it adds and removes.
        listed = sluice(cluster, "topic", "reassignments")
        assert listed == "Topic: held\tPartition: 0\tReplicas: 1,3,2\tAdding: 3\tRemoving: 2\n"
        assert sluice(cluster, "topic", "reassign", "held", "--partition", "0", "--cancel") \
            == "Reassignment of held-0 cancelled.\n"
    finally:
        os.kill(cluster.brokers[3].pid, signal.SIGCONT)
    cluster.wait_for(lambda: settled(cluster, "held", [1, 2]), what="held-0 back on 1 and 2")
    assert sluice(cluster, "topic", "reassignments") == ""


def test_preferred_leader_election_gives_leadership_back(cluster_factory):
    cluster = cluster_factory(3)
    admin = cluster.admin()
    admin.create_topics([NewTopic("pref", 1, replication_factor=3)])["pref"].result(timeout=30)
    cluster.wait_for(lambda: len(cluster.partition("pref", 0).isrs) == 3, what="pref in sync")
    preferred = cluster.partition("pref", 0).replicas[0]
    assert cluster.leader("pref", 0) == preferred
    produce(cluster, "pref", [b"a", b"b"], partition=0)

    cluster.brokers[preferred].kill()
    cluster.wait_for(lambda: cluster.leader("pref", 0) not in (-1, preferred), what="a new leader")
    cluster.brokers[preferred].start()
    cluster.wait_for(lambda: len(cluster.partition("pref", 0).isrs) == 3, timeout=60,
                     what="the preferred replica back in sync")
    assert cluster.leader("pref", 0) != preferred

    tp = CkTopicPartition("pref", 0)
    result = admin.elect_leaders(ElectionType.PREFERRED, [tp]).result(timeout=30)
    assert result == {tp: None}
    cluster.wait_for(lambda: cluster.leader("pref", 0) == preferred, what="the preferred leader")
    # Nothing to do a second time: ELECTION_NOT_NEEDED.
    result = admin.elect_leaders(ElectionType.PREFERRED, [tp]).result(timeout=30)
    assert isinstance(result[tp], KafkaError) and result[tp].name() == "ELECTION_NOT_NEEDED"
    assert sluice(cluster, "topic", "elect", "pref").startswith("pref-0: ELECTION_NOT_NEEDED")

    # The records written before and after the moves are all there.
    produce(cluster, "pref", [b"c"], partition=0)
    assert [v for _, _, v in sorted(consume_all(cluster, "pref", 3), key=lambda r: r[1])] == [b"a", b"b", b"c"]


def test_unclean_election_is_refused_while_a_leader_lives(cluster_factory):
    cluster = cluster_factory(3)
    create_placed(cluster, "u", [1, 2])
    r = subprocess.run([str(SLUICE_BIN), "topic", "elect", "u", "--unclean", "--bootstrap-server", cluster.bootstrap],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().startswith("u-0: ELECTION_NOT_NEEDED")
