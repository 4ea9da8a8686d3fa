"""Brokers that reach each other only over SASL_SSL with mutual TLS: followers' fetches and
transaction markers go through the inter-broker listener with its trust store, its key
store as the client certificate and the SASL login of its JAAS configuration. With the
authorizer on and only that login a super user, an acks=all write to three replicas is
answered only if the followers fetched as that user over that listener."""

from __future__ import annotations

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import free_port, start_up_error
from e2e import produce_and_report
from pki import make_cert, pki  # noqa: F401  (the fixture)

USERS = {"broker": "broker-secret", "alice": "alice-secret"}
JAAS = ("org.apache.kafka.common.security.plain.PlainLoginModule required "
        'username="broker" password="broker-secret" '
        + " ".join(f'user_{u}="{p}"' for u, p in USERS.items()) + ";")
PEER_EXT = ("basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
            "extendedKeyUsage=serverAuth,clientAuth\n")


def secure_props(pki, port: int, plain_port: int) -> dict[str, str]:
    listeners = f"PLAINTEXT://127.0.0.1:{plain_port},SECURE://127.0.0.1:{port}"
    return {
        "listeners": listeners,
        "advertised.listeners": listeners,
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SECURE:SASL_SSL",
        "inter.broker.listener.name": "SECURE",
        "sasl.mechanism.inter.broker.protocol": "PLAIN",
        "sasl.enabled.mechanisms": "PLAIN",
        "listener.name.secure.plain.sasl.jaas.config": JAAS,
        "listener.name.secure.ssl.keystore.type": "PEM",
        "listener.name.secure.ssl.keystore.location": str(pki / "peer-keystore.pem"),
        "listener.name.secure.ssl.truststore.type": "PEM",
        "listener.name.secure.ssl.truststore.location": str(pki / "ca.pem"),
        "listener.name.secure.ssl.client.auth": "required",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:broker",
        "auto.create.topics.enable": "false",
    }


def client(pki, bootstrap: str, user: str = "broker") -> dict:
    return {"bootstrap.servers": bootstrap, "security.protocol": "SASL_SSL",
            "ssl.ca.location": str(pki / "ca.pem"),
            "ssl.certificate.location": str(pki / "alice.pem"), "ssl.key.location": str(pki / "alice.key"),
            "sasl.mechanism": "PLAIN", "sasl.username": user, "sasl.password": USERS[user]}


def test_replication_goes_over_sasl_ssl_with_mutual_tls(cluster_factory, pki):  # noqa: F811
    make_cert(pki, "peer", "ca", "/O=Sluice/CN=localhost", PEER_EXT)
    (pki / "peer-keystore.pem").write_text((pki / "peer.key").read_text() + (pki / "peer.pem").read_text())
    cluster = cluster_factory(3, start=False)
    secure = {}
    for node_id, b in cluster.brokers.items():
        port = free_port()
        b.overrides.update(secure_props(pki, port, b.port))
        secure[node_id] = f"127.0.0.1:{port}"
    cluster.start()
    bootstrap = ",".join(secure.values())

    admin = AdminClient(client(pki, bootstrap))
    admin.create_topics([NewTopic("vault", 3, 3, config={"min.insync.replicas": "3"})])["vault"].result(30)

    def replicated():
        parts = admin.list_topics("vault", timeout=10).topics["vault"].partitions
        return len(parts) == 3 and all(sorted(p.isrs) == [1, 2, 3] for p in parts.values())

    cluster.wait_for(replicated, what="vault led with three in-sync replicas")
    leaders = sorted(p.leader for p in admin.list_topics("vault", timeout=10).topics["vault"].partitions.values())
    assert leaders == [1, 2, 3]

    # Every broker leads one partition: each acks=all write needs both others' fetches.
    producer = Producer({**client(pki, bootstrap), "acks": "all", "enable.idempotence": True})
    records = [("vault", f"k{i}".encode(), f"secret {i}".encode(), None, i % 3) for i in range(300)]
    reports = produce_and_report(producer, records, timeout=60)
    assert [err for err, _, _ in reports if err is not None] == []

    # The PLAINTEXT listener's principal is nobody: it may not write, nor could it replicate.
    anonymous = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "message.timeout.ms": 10000})
    [(err, _, _)] = produce_and_report(anonymous, [("vault", None, b"intruder", None, 0)], timeout=30)
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED

    consumer = Consumer({**client(pki, bootstrap), "group.id": "vault-check", "enable.auto.commit": False})
    consumer.assign([TopicPartition("vault", p, 0) for p in range(3)])
    got: dict[int, list[bytes]] = {0: [], 1: [], 2: []}
    polls = 0
    while sum(map(len, got.values())) < 300 and polls < 200:
        polls += 1
        for msg in consumer.consume(100, timeout=0.5):
            if not msg.error():
                got[msg.partition()].append(msg.value())
    consumer.close()
    assert got == {p: [f"secret {i}".encode() for i in range(p, 300, 3)] for p in range(3)}


def test_an_inter_broker_listener_that_cannot_log_in_stops_start_up(tmp_path, pki):  # noqa: F811
    props = secure_props(pki, free_port(), free_port())
    props.update({"log.dirs": tmp_path / "data", "metadata.etcd.endpoints": "http://127.0.0.1:1"})
    del props["sasl.mechanism.inter.broker.protocol"]
    err = start_up_error(props)
    assert "sasl.mechanism.inter.broker.protocol" in err and "GSSAPI" in err, err
    props["sasl.mechanism.inter.broker.protocol"] = "PLAIN"
    props["listener.name.secure.plain.sasl.jaas.config"] = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required user_broker=\"x\";")
    err = start_up_error(props)
    assert "listener.name.secure.plain.sasl.jaas.config" in err and "username" in err, err
    del props["listener.name.secure.ssl.truststore.location"]
    del props["listener.name.secure.ssl.client.auth"]
    props["listener.name.secure.plain.sasl.jaas.config"] = JAAS
    err = start_up_error(props)
    assert "listener.name.secure.ssl.truststore.location" in err, err
