"""ACLs, SCRAM credentials and client quotas in a three-broker cluster: they live in the
cluster's metadata store (etcd), so one created or deleted through any broker applies on
every broker, and a restarted broker has them. ACLs: Driven by confluent-kafka's AdminClient as the super user (each admin client
talking to one broker) and by producers that authenticate with SASL/PLAIN and write to
three partitions led by brokers 1, 2 and 3, so that each broker decides for its own.

The brokers' PLAINTEXT listener carries replication; the test makes its principal
(User:ANONYMOUS) a super user, as an operator must with a PLAINTEXT inter-broker listener
(test_cluster_inter_broker_security.py replicates over SASL_SSL instead)."""

from __future__ import annotations

import subprocess

from confluent_kafka import ElectionType, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                   NewTopic, ResourcePatternType, ResourceType, ScramCredentialInfo,
                                   ScramMechanism, UserScramCredentialDeletion, UserScramCredentialUpsertion)

from cluster import create_topic
from conftest import free_port
from e2e import produce_and_report, wait_for
from test_quotas import alter_quotas, describe_quotas, produce_for

USERS = {"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret"}
JAAS = ("org.apache.kafka.common.security.plain.PlainLoginModule required "
        + " ".join(f'user_{u}="{p}"' for u, p in USERS.items()) + ";")
WRITE_LEDGER = AclBinding(ResourceType.TOPIC, "ledger", ResourcePatternType.LITERAL, "User:alice", "*",
                          AclOperation.WRITE, AclPermissionType.ALLOW)


def secured_cluster(cluster_factory, seed: tuple[str, str] | None = None):
    """Three brokers, each with a SASL_PLAINTEXT listener for clients and the authorizer on;
    `seed` (user, password) is set with `sluice scram` in broker 1's data directory first."""
    cluster = cluster_factory(3, {"auto.create.topics.enable": "false"}, start=False)
    cluster.sasl = {}
    for node_id, b in cluster.brokers.items():
        port = free_port()
        listeners = f"PLAINTEXT://127.0.0.1:{b.port},SASL_PLAINTEXT://127.0.0.1:{port}"
        b.overrides.update({
            "listeners": listeners,
            "advertised.listeners": listeners,
            "inter.broker.listener.name": "PLAINTEXT",
            "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": "User:admin;User:ANONYMOUS",
        })
        cluster.sasl[node_id] = f"127.0.0.1:{port}"
    if seed is not None:
        user, password = seed
        r = subprocess.run([*cluster.brokers[1].argv(), "scram", "set", "--user", user, "--mechanism",
                            "SCRAM-SHA-256"], input=f"{password}\n".encode(), capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr.decode(errors="replace")
    return cluster.start()


def conf(cluster, node_id: int, user: str) -> dict:
    """A client of one broker only."""
    return {"bootstrap.servers": cluster.sasl[node_id], "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "PLAIN", "sasl.username": user, "sasl.password": USERS[user]}


def produce_one(cluster, leader: int, user: str, value: bytes):
    """One acks=all record to the partition `leader` leads: None, or the delivery error's
    code."""
    partition = next(p for p in range(3) if cluster.leader("ledger", p) == leader)
    p = Producer({**conf(cluster, leader, user), "acks": "all", "message.timeout.ms": 10000,
                  "enable.idempotence": False})
    [(err, _, _)] = produce_and_report(p, [("ledger", None, value, None, partition)], timeout=30)
    return None if err is None else err.code()


def test_an_acl_made_through_one_broker_applies_on_every_broker(cluster_factory):
    cluster = secured_cluster(cluster_factory)
    admin1 = AdminClient(conf(cluster, 1, "admin"))
    admin1.create_topics([NewTopic("ledger", 3, 3)])["ledger"].result(30)
    cluster.wait_for(lambda: all(len(cluster.partition("ledger", p).isrs) == 3 for p in range(3)),
                     what="ledger fully replicated")
    assert sorted(cluster.leader("ledger", p) for p in range(3)) == [1, 2, 3]

    # Without an ACL nobody but the super users may write, on any broker.
    for node_id in cluster.brokers:
        assert produce_one(cluster, node_id, "alice", b"early") == KafkaError.TOPIC_AUTHORIZATION_FAILED

    admin1.create_acls([WRITE_LEDGER])[WRITE_LEDGER].result(30)
    # Created through broker 1; every leader lets alice write, and only alice.
    for node_id in cluster.brokers:
        wait_for(lambda: produce_one(cluster, node_id, "alice", f"from-{node_id}".encode()) is None, 30,
                 f"broker {node_id} to apply the new ACL")
        assert produce_one(cluster, node_id, "bob", b"bob") == KafkaError.TOPIC_AUTHORIZATION_FAILED

    # Broker 3 describes it.
    admin3 = AdminClient(conf(cluster, 3, "admin"))
    any_topic = AclBindingFilter(ResourceType.TOPIC, None, ResourcePatternType.ANY, None, None,
                                 AclOperation.ANY, AclPermissionType.ANY)
    assert admin3.describe_acls(any_topic).result(30) == [WRITE_LEDGER]

    # A restarted broker has it.
    cluster.brokers[2].stop()
    cluster.brokers[2].start()
    admin2 = AdminClient(conf(cluster, 2, "admin"))
    wait_for(lambda: admin2.describe_acls(any_topic).result(30) == [WRITE_LEDGER], 30,
             "the restarted broker to list the ACL")
    # Its partition's leadership back, so that each broker leads one partition again.
    cluster.wait_for(lambda: all(len(cluster.partition("ledger", p).isrs) == 3 for p in range(3)),
                     what="the restarted broker back in sync")
    admin2.elect_leaders(ElectionType.PREFERRED, [TopicPartition("ledger", p) for p in range(3)]).result(30)
    cluster.wait_for(lambda: sorted(cluster.leader("ledger", p) for p in range(3)) == [1, 2, 3],
                     what="the preferred leaders back")

    # Deleted through broker 3: nobody may write on any broker.
    deleted = admin3.delete_acls([any_topic])[any_topic].result(30)
    assert deleted == [WRITE_LEDGER]
    for node_id in cluster.brokers:
        wait_for(lambda: produce_one(cluster, node_id, "alice", b"late") == KafkaError.TOPIC_AUTHORIZATION_FAILED,
                 30, f"broker {node_id} to drop the deleted ACL")
    assert admin1.describe_acls(any_topic).result(30) == []


def scram_login(cluster, node_id: int, user: str, password: str) -> bool:
    """Whether a SCRAM-SHA-256 client of broker `node_id` alone gets its metadata."""
    a = AdminClient({"bootstrap.servers": cluster.sasl[node_id], "security.protocol": "SASL_PLAINTEXT",
                     "sasl.mechanism": "SCRAM-SHA-256", "sasl.username": user, "sasl.password": password})
    try:
        a.list_topics(timeout=5)
        return True
    except KafkaException:
        return False


def test_a_scram_user_made_through_one_broker_logs_in_on_every_broker(cluster_factory):
    # erin was set up with `sluice scram` in broker 1's data directory before it started:
    # the credential moves into the cluster when the broker joins.
    cluster = secured_cluster(cluster_factory, seed=("erin", "erin-secret"))
    for node_id in cluster.brokers:
        wait_for(lambda: scram_login(cluster, node_id, "erin", "erin-secret"), 30,
                 f"erin to log in on broker {node_id}")
    admin1 = AdminClient(conf(cluster, 1, "admin"))
    upsert = UserScramCredentialUpsertion("dora", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096),
                                          b"dora-secret")
    admin1.alter_user_scram_credentials([upsert])["dora"].result(30)
    for node_id in cluster.brokers:
        wait_for(lambda: scram_login(cluster, node_id, "dora", "dora-secret"), 30,
                 f"dora to log in on broker {node_id}")
        assert not scram_login(cluster, node_id, "dora", "wrong")

    admin3 = AdminClient(conf(cluster, 3, "admin"))
    described = admin3.describe_user_scram_credentials(["dora"])["dora"].result(30)
    assert [(str(i.mechanism), i.iterations) for i in described.scram_credential_infos] == \
        [("ScramMechanism.SCRAM_SHA_256", 4096)]

    admin3.alter_user_scram_credentials([UserScramCredentialDeletion("dora", ScramMechanism.SCRAM_SHA_256)])[
        "dora"].result(30)
    for node_id in cluster.brokers:
        wait_for(lambda: not scram_login(cluster, node_id, "dora", "dora-secret"), 30,
                 f"broker {node_id} to refuse the deleted user")


def test_a_client_quota_set_through_one_broker_applies_on_every_broker(cluster_factory):
    """Raw AlterClientQuotas/DescribeClientQuotas (what kafka-configs.sh sends) and a
    confluent-kafka producer throttled by a leader other than the broker the quota was set
    through."""
    cluster = cluster_factory(3, {"quota.window.num": 3, "quota.window.size.seconds": 1})
    slow = [("client-id", "slow")]
    assert alter_quotas(cluster.brokers[1], [(slow, [("producer_byte_rate", 1048576.0, False)])]) == [(0, None)]
    want = (0, {(("client-id", "slow"),): {"producer_byte_rate": 1048576.0}})
    for node_id, b in cluster.brokers.items():
        wait_for(lambda: describe_quotas(b) == want, 30, f"broker {node_id} to describe the quota")

    create_topic(cluster, "metered", 1, assignment=[[2, 3, 1]])
    assert cluster.leader("metered", 0) == 2
    rate, throttle = produce_for(cluster.brokers[2], "slow", "metered", 5)
    assert throttle > 0, f"broker 2 did not throttle (rate {rate:.0f} B/s)"
    assert rate < 2.5 * 1048576, f"{rate:.0f} B/s over a 1 MiB/s quota"

    assert alter_quotas(cluster.brokers[3], [(slow, [("producer_byte_rate", 0.0, True)])]) == [(0, None)]
    for node_id, b in cluster.brokers.items():
        wait_for(lambda: describe_quotas(b) == (0, {}), 30, f"broker {node_id} to drop the quota")
