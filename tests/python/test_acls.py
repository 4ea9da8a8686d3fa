"""ACLs with the built-in authorizer (`authorizer.class.name` set to Kafka's standard
authorizer), driven by confluent-kafka's AdminClient as the super user, against clients
that authenticate with SASL/PLAIN: write without read, users without ACLs seeing no
topics, DENY over a prefixed ALLOW, group and transactional-id ACLs, super users, ACLs
surviving a restart, and kcat seeing only what it may."""

from __future__ import annotations

import json
import subprocess

import pytest
from confluent_kafka import (Consumer, ConsumerGroupTopicPartitions, KafkaError, KafkaException, Producer,
                             TopicPartition)
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                   NewTopic, ResourcePatternType, ResourceType)

from conftest import free_port, start_up_error
from e2e import produce_and_report, unique_topic, wait_for

USERS = {"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret", "carol": "carol-secret"}
JAAS = ("org.apache.kafka.common.security.plain.PlainLoginModule required "
        + " ".join(f'user_{u}="{p}"' for u, p in USERS.items()) + ";")


def acl_broker(broker_factory):
    """A SASL_PLAINTEXT listener with PLAIN users and the authorizer on; User:admin is a
    super user. The fixture's PLAINTEXT port stays (as User:ANONYMOUS, with no ACLs)."""
    b = broker_factory(start=False, env={"RUST_LOG": "info"})
    sasl_port = free_port()
    listeners = f"PLAINTEXT://127.0.0.1:{b.port},SASL_PLAINTEXT://127.0.0.1:{sasl_port}"
    b.overrides.update({
        "listeners": listeners,
        "advertised.listeners": listeners,
        "sasl.enabled.mechanisms": "PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:admin",
        "auto.create.topics.enable": "false",
    })
    b.start()
    b.sasl_bootstrap = f"127.0.0.1:{sasl_port}"
    return b


def conf(b, user: str) -> dict:
    return {"bootstrap.servers": b.sasl_bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "PLAIN", "sasl.username": user, "sasl.password": USERS[user]}


def admin(b, user: str = "admin") -> AdminClient:
    return AdminClient(conf(b, user))


def allow(principal: str, restype, name: str, op, pattern=ResourcePatternType.LITERAL,
          permission=AclPermissionType.ALLOW) -> AclBinding:
    return AclBinding(restype, name, pattern, principal, "*", op, permission)


def create_acls(b, bindings: list[AclBinding], user: str = "admin") -> None:
    a = admin(b, user)  # the futures need their client alive
    for f in a.create_acls(bindings).values():
        f.result(10)


def create_topics(b, *names: str) -> None:
    a = admin(b)
    for f in a.create_topics([NewTopic(n, 1, 1) for n in names]).values():
        f.result(10)


def produce(b, user: str, topic: str, n: int, **extra) -> list:
    p = Producer({**conf(b, user), **extra})
    return produce_and_report(p, [(topic, None, f"v{i}".encode(), None, 0) for i in range(n)])


def read_error_or_records(b, user: str, topic: str, n: int, group: str | None = None, timeout: float = 20):
    """Reads partition 0 from offset 0 (subscribing with `group` when given): (values, error code)."""
    c = Consumer({**conf(b, user), "group.id": group or "unused", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    if group:
        c.subscribe([topic])
    else:
        c.assign([TopicPartition(topic, 0, 0)])
    values: list[bytes] = []
    error = None

    def done() -> bool:
        nonlocal error
        m = c.poll(0.2)
        if m is not None:
            if m.error():
                ignored = {KafkaError._PARTITION_EOF}
                if not group:
                    # librdkafka still looks up the coordinator of its (unused) group id
                    ignored.add(KafkaError.GROUP_AUTHORIZATION_FAILED)
                if m.error().code() not in ignored:
                    error = m.error().code()
            else:
                values.append(m.value())
        return error is not None or len(values) >= n
    wait_for(done, timeout, f"{user} to read {n} records or an error from {topic}")
    if group and error is None:
        c.commit(asynchronous=False)
    c.close()
    return values, error


def test_write_without_read_and_invisible_topics(broker_factory):
    """alice may write `orders` but not read it: her produce succeeds and her fetch gets
    TOPIC_AUTHORIZATION_FAILED; bob, with no ACLs, sees no topics at all (and is refused
    by name); the super user sees and reads everything; kcat shows each user its share."""
    b = acl_broker(broker_factory)
    create_topics(b, "orders", "payments")
    create_acls(b, [allow("User:alice", ResourceType.TOPIC, "orders", AclOperation.WRITE)])

    reports = produce(b, "alice", "orders", 10)
    assert [(e, off) for e, _, off in reports] == [(None, i) for i in range(10)]
    values, error = read_error_or_records(b, "alice", "orders", 10)
    assert (values, error) == ([], KafkaError.TOPIC_AUTHORIZATION_FAILED)
    reports = produce(b, "alice", "payments", 1)
    assert reports[0][0] is not None and reports[0][0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED

    assert sorted(admin(b, "alice").list_topics(timeout=10).topics) == ["orders"]
    assert admin(b, "bob").list_topics(timeout=10).topics == {}
    md = admin(b, "bob").list_topics("orders", timeout=10)
    assert md.topics["orders"].error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert sorted(admin(b).list_topics(timeout=10).topics) == ["orders", "payments"]
    values, error = read_error_or_records(b, "admin", "orders", 10)
    assert (values, error) == ([f"v{i}".encode() for i in range(10)], None)

    def kcat_topics(user: str) -> list[str]:
        r = subprocess.run(["kcat", "-L", "-J", "-b", b.sasl_bootstrap, "-X", "security.protocol=SASL_PLAINTEXT",
                            "-X", "sasl.mechanism=PLAIN", "-X", f"sasl.username={user}",
                            "-X", f"sasl.password={USERS[user]}"], capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return sorted(t["topic"] for t in json.loads(r.stdout)["topics"])
    assert kcat_topics("alice") == ["orders"]
    assert kcat_topics("bob") == []
    # The consumers' FindCoordinator made __consumer_offsets, which Kafka lists too.
    assert kcat_topics("admin") == ["__consumer_offsets", "orders", "payments"]
    # the unauthenticated PLAINTEXT listener's User:ANONYMOUS has no ACLs either
    assert AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10).topics == {}


def test_deny_overrides_a_prefixed_allow(broker_factory):
    """carol may do anything on topics prefixed `pay-`, except write `pay-secret`: DENY
    wins there, and only there."""
    b = acl_broker(broker_factory)
    create_topics(b, "pay-eu", "pay-secret")
    create_acls(b, [
        allow("User:carol", ResourceType.TOPIC, "pay-", AclOperation.ALL, ResourcePatternType.PREFIXED),
        allow("User:carol", ResourceType.TOPIC, "pay-secret", AclOperation.WRITE,
              permission=AclPermissionType.DENY),
    ])
    assert [e for e, _, _ in produce(b, "carol", "pay-eu", 5)] == [None] * 5
    reports = produce(b, "carol", "pay-secret", 1)
    assert reports[0][0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    values, error = read_error_or_records(b, "carol", "pay-eu", 5)
    assert (values, error) == ([f"v{i}".encode() for i in range(5)], None)
    # reading pay-secret is still allowed by the prefixed ALL (it is empty)
    assert sorted(admin(b, "carol").list_topics(timeout=10).topics) == ["pay-eu", "pay-secret"]


def test_group_and_transactional_id_acls(broker_factory):
    """A consumer group needs Read on the group: alice's own group consumes and commits,
    another group is refused with GROUP_AUTHORIZATION_FAILED. A transactional producer
    needs Write on its transactional id: a denied id fails init_transactions with
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED, an allowed one commits a transaction."""
    b = acl_broker(broker_factory)
    topic = unique_topic("acl-g")
    create_topics(b, topic)
    create_acls(b, [
        allow("User:alice", ResourceType.TOPIC, topic, AclOperation.ALL),
        allow("User:alice", ResourceType.GROUP, "alice-", AclOperation.READ, ResourcePatternType.PREFIXED),
        allow("User:alice", ResourceType.TRANSACTIONAL_ID, "alice-tx", AclOperation.WRITE),
    ])
    assert [e for e, _, _ in produce(b, "alice", topic, 5)] == [None] * 5
    values, error = read_error_or_records(b, "alice", topic, 5, group="alice-consumers")
    assert (values, error) == ([f"v{i}".encode() for i in range(5)], None)
    a = admin(b)
    committed = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions("alice-consumers")])
    offsets = committed["alice-consumers"].result(10).topic_partitions
    assert [(tp.topic, tp.partition, tp.offset) for tp in offsets] == [(topic, 0, 5)]
    values, error = read_error_or_records(b, "alice", topic, 5, group="other-consumers")
    assert (values, error) == ([], KafkaError.GROUP_AUTHORIZATION_FAILED)

    denied = Producer({**conf(b, "alice"), "transactional.id": "bob-tx"})
    with pytest.raises(KafkaException) as e:
        denied.init_transactions(10)
    assert e.value.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED

    p = Producer({**conf(b, "alice"), "transactional.id": "alice-tx"})
    p.init_transactions(10)
    p.begin_transaction()
    for i in range(3):
        p.produce(topic, value=f"tx{i}".encode(), partition=0)
    p.commit_transaction(10)
    values, error = read_error_or_records(b, "alice", topic, 8, group="alice-readers")
    assert (values, error) == ([f"v{i}".encode() for i in range(5)] + [f"tx{i}".encode() for i in range(3)], None)


def test_acl_admin_api_and_persistence(broker_factory):
    """CreateAcls needs Alter on the cluster (alice is refused); DescribeAcls lists by
    filter; ACLs survive a restart; DeleteAcls removes what its filter matches, and the
    permission goes with it."""
    b = acl_broker(broker_factory)
    create_topics(b, "events")
    with pytest.raises(KafkaException) as e:
        create_acls(b, [allow("User:alice", ResourceType.TOPIC, "events", AclOperation.READ)], user="alice")
    assert e.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    bindings = [
        allow("User:alice", ResourceType.TOPIC, "events", AclOperation.WRITE),
        allow("User:alice", ResourceType.TOPIC, "events", AclOperation.DESCRIBE),
        allow("User:bob", ResourceType.GROUP, "*", AclOperation.READ),
    ]
    create_acls(b, bindings)

    def described(principal: str | None = None) -> list:
        f = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, principal, None, AclOperation.ANY,
                             AclPermissionType.ANY)
        a = admin(b)
        got = a.describe_acls(f).result(10)
        return sorted((x.restype.name, x.name, x.principal, x.operation.name) for x in got)
    expected = [("GROUP", "*", "User:bob", "READ"), ("TOPIC", "events", "User:alice", "DESCRIBE"),
                ("TOPIC", "events", "User:alice", "WRITE")]
    assert described() == expected
    assert described("User:bob") == [("GROUP", "*", "User:bob", "READ")]

    b.restart()
    assert described() == expected
    assert [e for e, _, _ in produce(b, "alice", "events", 2)] == [None, None]

    f = AclBindingFilter(ResourceType.TOPIC, "events", ResourcePatternType.MATCH, "User:alice", None,
                         AclOperation.WRITE, AclPermissionType.ANY)
    a = admin(b)
    deleted = a.delete_acls([f])[f].result(10)
    assert [(x.name, x.operation.name) for x in deleted] == [("events", "WRITE")]
    reports = produce(b, "alice", "events", 1)
    assert reports[0][0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert described("User:alice") == [("TOPIC", "events", "User:alice", "DESCRIBE")]


def test_unknown_authorizer_stops_start_up(tmp_path):
    """An authorizer class that is not Kafka's standard one stops start-up, naming it."""
    err = start_up_error({"listeners": f"PLAINTEXT://127.0.0.1:{free_port()}", "log.dirs": tmp_path / "data",
                          "authorizer.class.name": "com.example.RangerAuthorizer"})
    assert "authorizer.class.name" in err, err[-2000:]
