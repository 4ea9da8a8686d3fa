"""Dynamic broker configs (KIP-226) through confluent-kafka and kafka-python admin clients:
IncrementalAlterConfigs and AlterConfigs on the BROKER resource for this node id and for
the cluster default (the empty name), Kafka's refusals with its messages, DescribeConfigs
sources and synonyms in Kafka's precedence, values in force without a restart and kept
across one.

Neither client's admin API takes the empty broker name (confluent-kafka refuses it
locally, kafka-python wants an integer), so the cluster default is reached with
kafka-python's own request classes on its connection, as Kafka's kafka-configs.sh
--entity-default reaches it; synonyms are read through kafka-python too, since
confluent-kafka keeps them in a dict by name and so shows one of two same-named ones."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource, NewTopic

from e2e import admin, assigned_consumer, produce_and_report, producer, unique_topic, wait_for

SET, DELETE = AlterConfigOpType.SET, AlterConfigOpType.DELETE
NODE, CLUSTER = "1", ""


async def _send(k, request):
    return await k._manager.send(request)


def kp_alter(k, name: str, *ops, validate_only: bool = False) -> tuple[int, str | None]:
    """IncrementalAlterConfigs of BROKER `name` -> (error_code, error_message)."""
    from kafka.protocol.admin import IncrementalAlterConfigsRequest

    op_codes = {SET: 0, DELETE: 1}
    request = IncrementalAlterConfigsRequest(
        resources=[(4, name, [(n, op_codes[op], v) for n, v, op in ops])], validate_only=validate_only)
    (r,) = k._manager.run(_send, k, request).responses
    return r.error_code, r.error_message


def kp_describe(k, name: str) -> dict:
    """DescribeConfigs of BROKER `name` with synonyms -> {config: (value, source,
    read_only, [(synonym, value, source)])}, Kafka's source names."""
    from kafka.protocol.admin import DescribeConfigsRequest

    request = DescribeConfigsRequest(resources=[(4, name, None)], include_synonyms=True, min_version=1)
    (r,) = k._manager.run(_send, k, request).results
    assert (r.error_code, r.error_message) == (0, None)
    src = lambda code: ConfigSource(code).name  # noqa: E731
    return {c.name: (c.value, src(c.config_source), c.read_only,
                     [(s.name, s.value, src(s.source)) for s in c.synonyms]) for c in r.configs}


def kp_describe_error(k, name: str) -> tuple[int, str | None]:
    from kafka.protocol.admin import DescribeConfigsRequest

    request = DescribeConfigsRequest(resources=[(4, name, None)], include_synonyms=True, min_version=1)
    (r,) = k._manager.run(_send, k, request).results
    return r.error_code, r.error_message


def kp_admin(b):
    from kafka import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=b.bootstrap, request_timeout_ms=15000)


def alter(a, name: str, *ops, validate_only: bool = False) -> None:
    entries = [ConfigEntry(k, v, incremental_operation=op) for k, v, op in ops]
    res = ConfigResource(ConfigResource.Type.BROKER, name, incremental_configs=entries)
    a.incremental_alter_configs([res], request_timeout=15, validate_only=validate_only)[res].result(20)


def refusal(a, name: str, *ops) -> tuple[int, str]:
    with pytest.raises(KafkaException) as e:
        alter(a, name, *ops)
    return e.value.args[0].code(), e.value.args[0].str()


def describe(a, name: str) -> dict:
    res = ConfigResource(ConfigResource.Type.BROKER, name)
    return a.describe_configs([res], request_timeout=15)[res].result(20)


def source(c: dict, name: str) -> tuple:
    return c[name].value, ConfigSource(c[name].source).name


REFUSED_PER_BROKER = (
    KafkaError.INVALID_REQUEST,
    "Cannot update these configs at default cluster level, broker id must be specified: "
    "Set(sasl.kerberos.min.time.before.relogin)")


def test_per_broker_and_cluster_default_configs_are_described_in_precedence(broker):
    """sasl.kerberos.min.time.before.relogin is one of Kafka's per-broker configs: taken
    for node 1 (DYNAMIC_BROKER_CONFIG over Kafka's default) and refused at the cluster
    default with Kafka's message; log.retention.ms and max.connections at the cluster
    default are DYNAMIC_DEFAULT_BROKER_CONFIG, and the cluster resource lists only them."""
    a = admin(broker.bootstrap)
    k = kp_admin(broker)
    try:
        alter(a, NODE, ("sasl.kerberos.min.time.before.relogin", "1000", SET))
        assert kp_describe(k, NODE)["sasl.kerberos.min.time.before.relogin"] == (
            "1000", "DYNAMIC_BROKER_CONFIG", False,
            [("sasl.kerberos.min.time.before.relogin", "1000", "DYNAMIC_BROKER_CONFIG"),
             ("sasl.kerberos.min.time.before.relogin", "60000", "DEFAULT_CONFIG")])
        assert kp_alter(k, CLUSTER, ("sasl.kerberos.min.time.before.relogin", "1000", SET)) == REFUSED_PER_BROKER

        assert kp_alter(k, CLUSTER, ("log.retention.ms", "3600000", SET), ("max.connections", "500", SET)) == (0, None)
        node = kp_describe(k, NODE)
        assert node["log.retention.ms"] == (
            "3600000", "DYNAMIC_DEFAULT_BROKER_CONFIG", False,
            [("log.retention.ms", "3600000", "DYNAMIC_DEFAULT_BROKER_CONFIG"),
             ("log.retention.hours", "168", "DEFAULT_CONFIG")])
        # Kafka's synonyms of log.retention.hours start at itself; it is not dynamic.
        assert node["log.retention.hours"] == (
            "168", "DEFAULT_CONFIG", True, [("log.retention.hours", "168", "DEFAULT_CONFIG")])
        assert node["log.retention.check.interval.ms"][1:3] == ("DEFAULT_CONFIG", True)
        # log.roll.ms has a null default in Kafka (log.roll.hours carries 168) and is dynamic.
        assert node["log.roll.ms"] == (None, "DEFAULT_CONFIG", False, [])
        assert node["log.roll.hours"] == ("168", "DEFAULT_CONFIG", True, [("log.roll.hours", "168", "DEFAULT_CONFIG")])
        assert node["log.segment.bytes"] == (
            "1073741824", "DEFAULT_CONFIG", False, [("log.segment.bytes", "1073741824", "DEFAULT_CONFIG")])
        assert kp_describe(k, CLUSTER) == {
            "log.retention.ms": ("3600000", "DYNAMIC_DEFAULT_BROKER_CONFIG", False,
                                 [("log.retention.ms", "3600000", "DYNAMIC_DEFAULT_BROKER_CONFIG"),
                                  ("log.retention.hours", "168", "DEFAULT_CONFIG")]),
            "max.connections": ("500", "DYNAMIC_DEFAULT_BROKER_CONFIG", False,
                                [("max.connections", "500", "DYNAMIC_DEFAULT_BROKER_CONFIG"),
                                 ("max.connections", "2147483647", "DEFAULT_CONFIG")]),
        }
        # confluent-kafka sees the same sources
        assert source(describe(a, NODE), "max.connections") == ("500", "DYNAMIC_DEFAULT_BROKER_CONFIG")
    finally:
        k.close()


def test_static_configs_other_nodes_and_bad_values_are_refused(broker):
    """Kafka's exact refusals, all INVALID_REQUEST with nothing stored: a static-only
    config, log.retention.hours (only the first unit of a setting is dynamic), a security
    config without a listener prefix, a value that is not a LONG, another node id; and
    validate_only storing nothing."""
    a = admin(broker.bootstrap)
    k = kp_admin(broker)
    try:
        assert refusal(a, NODE, ("log.dirs", "/elsewhere", SET)) == (
            KafkaError.INVALID_REQUEST, "Cannot update these configs dynamically: Set(log.dirs)")
        assert refusal(a, NODE, ("log.retention.hours", "1", SET)) == (
            KafkaError.INVALID_REQUEST, "Cannot update these configs dynamically: Set(log.retention.hours)")
        assert refusal(a, NODE, ("ssl.keystore.location", "/k.jks", SET)) == (
            KafkaError.INVALID_REQUEST,
            "These security configs can be dynamically updated only per-listener using the listener prefix: "
            "Set(ssl.keystore.location)")
        assert kp_alter(k, CLUSTER, ("log.retention.ms", "soon", SET)) == (
            KafkaError.INVALID_REQUEST, "Invalid value soon for configuration log.retention.ms: Not a number of type LONG")
        # Clients send a node id's request to that node; this one reaches node 1.
        assert kp_alter(k, "2", ("log.retention.ms", "1000", SET)) == (
            KafkaError.INVALID_REQUEST, "Unexpected broker id, expected 1, but received 2")
        assert kp_describe_error(k, "2") == (
            KafkaError.INVALID_REQUEST, "Unexpected broker id, expected 1 or empty string, but received 2")

        assert kp_alter(k, CLUSTER, ("log.retention.ms", "1000", SET), validate_only=True) == (0, None)
        alter(a, NODE, ("message.max.bytes", "5000", SET), validate_only=True)
        assert kp_describe(k, CLUSTER) == {}
        node = kp_describe(k, NODE)
        assert node["log.retention.ms"][:2] == (None, "DEFAULT_CONFIG")
        assert node["message.max.bytes"][:2] == ("1048588", "DEFAULT_CONFIG")
    finally:
        k.close()


def test_cluster_retention_applies_to_topics_without_their_own(broker_factory):
    """A cluster-wide log.retention.ms of 1 ms deletes the old segments of a topic that has
    no retention.ms at the next check, while a topic with its own retention.ms keeps all."""
    b = broker_factory(overrides={"log.retention.check.interval.ms": 200})
    a = admin(b.bootstrap)
    plain, kept = unique_topic("dyn-plain"), unique_topic("dyn-kept")
    for t, extra in ((plain, {}), (kept, {"retention.ms": "86400000"})):
        a.create_topics([NewTopic(t, 1, 1, config={"segment.bytes": "1024", **extra})])[t].result(20)
    p = producer(b.bootstrap, **{"linger.ms": 0})
    for t in (plain, kept):
        reports = produce_and_report(p, [(t, None, b"v" * 300, None, 0) for _ in range(12)])
        assert [off for _, _, off in reports] == list(range(12))
    c = assigned_consumer(b.bootstrap)
    k = kp_admin(b)
    try:
        marks = lambda t: c.get_watermark_offsets(TopicPartition(t, 0), timeout=10, cached=False)  # noqa: E731
        assert (marks(plain), marks(kept)) == ((0, 12), (0, 12))
        assert kp_alter(k, CLUSTER, ("log.retention.ms", "1", SET)) == (0, None)
        wait_for(lambda: marks(plain) == (12, 12), 15, "cluster retention to delete every segment")
        assert marks(kept) == (0, 12)
        topics = {t: ConfigResource(ConfigResource.Type.TOPIC, t) for t in (plain, kept)}
        got = a.describe_configs(list(topics.values()), request_timeout=15)
        assert source(got[topics[plain]].result(20), "retention.ms") == ("1", "DYNAMIC_DEFAULT_BROKER_CONFIG")
        assert source(got[topics[kept]].result(20), "retention.ms") == ("86400000", "DYNAMIC_TOPIC_CONFIG")
    finally:
        c.close()
        k.close()


def test_per_broker_over_cluster_default_delete_falls_back_and_restart_keeps(broker_factory):
    """message.max.bytes: this node's 5000 beats the cluster default's 2000 (a 3000-byte
    message is taken), the values survive a restart, DELETE of the node's value falls
    back to the cluster default (the same message is MSG_SIZE_TOO_LARGE)."""
    b = broker_factory()
    a = admin(b.bootstrap)
    topic = unique_topic("dyn-max")
    a.create_topics([NewTopic(topic, 1, 1)])[topic].result(20)

    def send(p, size: int):
        (err, _, offset), = produce_and_report(p, [(topic, None, b"x" * size, None, 0)])
        return (None, offset) if err is None else (err.code(), None)

    k = kp_admin(b)
    try:
        assert kp_alter(k, CLUSTER, ("message.max.bytes", "2000", SET)) == (0, None)
        alter(a, NODE, ("message.max.bytes", "5000", SET))
        assert kp_describe(k, NODE)["message.max.bytes"] == (
            "5000", "DYNAMIC_BROKER_CONFIG", False,
            [("message.max.bytes", "5000", "DYNAMIC_BROKER_CONFIG"),
             ("message.max.bytes", "2000", "DYNAMIC_DEFAULT_BROKER_CONFIG"),
             ("message.max.bytes", "1048588", "DEFAULT_CONFIG")])
        p = producer(b.bootstrap, **{"linger.ms": 0, "message.max.bytes": 1_000_000})
        assert send(p, 3000) == (None, 0)
    finally:
        k.close()

    b.stop()
    b.start()
    a = admin(b.bootstrap)
    k = kp_admin(b)
    try:
        assert kp_describe(k, NODE)["message.max.bytes"][:2] == ("5000", "DYNAMIC_BROKER_CONFIG")
        assert kp_describe(k, CLUSTER)["message.max.bytes"][:2] == ("2000", "DYNAMIC_DEFAULT_BROKER_CONFIG")
        p = producer(b.bootstrap, **{"linger.ms": 0, "message.max.bytes": 1_000_000})
        assert send(p, 3000) == (None, 1)
        alter(a, NODE, ("message.max.bytes", None, DELETE))
        assert kp_describe(k, NODE)["message.max.bytes"][:2] == ("2000", "DYNAMIC_DEFAULT_BROKER_CONFIG")
        assert send(p, 3000) == (KafkaError.MSG_SIZE_TOO_LARGE, None)
        assert send(p, 1000) == (None, 2)
    finally:
        k.close()


def test_kafka_python_admin_alter_and_legacy_alter_configs(broker):
    """kafka-python's admin client on node 1: alter_configs (incremental) then describe;
    its legacy AlterConfigs, which reads the node's dynamic configs back to resend them;
    a raw legacy AlterConfigs replacing every dynamic config of the node, and refusing
    the cluster default (legacy AlterConfigs wants a node id)."""
    from kafka.protocol.admin import AlterConfigsRequest

    from kafka.admin import ConfigResource as KConfigResource, ConfigResourceType

    k = kp_admin(broker)
    try:
        res = KConfigResource(ConfigResourceType.BROKER, NODE, configs={"log.segment.bytes": "4096"})
        assert k.alter_configs([res]) == {"broker": {NODE: "OK"}}
        got = k.describe_configs([KConfigResource(ConfigResourceType.BROKER, NODE)], config_filter="all")
        seg = got["broker"][NODE]["log.segment.bytes"]
        assert (seg["value"], seg["config_source"], seg["read_only"]) == ("4096", "DYNAMIC_BROKER_CONFIG", False)
        legacy = KConfigResource(ConfigResourceType.BROKER, NODE, configs={"log.cleaner.threads": "2"})
        assert k.alter_configs([legacy], incremental=False) == {"broker": {NODE: "OK"}}
        node = kp_describe(k, NODE)
        assert node["log.segment.bytes"][:2] == ("4096", "DYNAMIC_BROKER_CONFIG")
        assert node["log.cleaner.threads"][:2] == ("2", "DYNAMIC_BROKER_CONFIG")

        def legacy_raw(name: str, configs: list) -> tuple[int, str | None]:
            request = AlterConfigsRequest(resources=[(4, name, configs)], validate_only=False)
            (r,) = k._manager.run(_send, k, request).responses
            return r.error_code, r.error_message

        assert legacy_raw(NODE, [("log.cleaner.threads", "3")]) == (0, None)
        node = kp_describe(k, NODE)
        assert node["log.segment.bytes"][:2] == ("1073741824", "DEFAULT_CONFIG")
        assert node["log.cleaner.threads"][:2] == ("3", "DYNAMIC_BROKER_CONFIG")
        assert legacy_raw(CLUSTER, [("log.cleaner.threads", "3")]) == (
            KafkaError.INVALID_REQUEST, "Node id must be an integer, but it is: ")
    finally:
        k.close()


def test_passwords_and_unknown_names_are_never_sent(broker):
    """Kafka's maybeSensitive: a password under a listener prefix and a name Kafka has no
    definition for (it may hold a secret) are stored but described with a null value and
    is_sensitive, their synonyms too."""
    from kafka.protocol.admin import DescribeConfigsRequest

    k = kp_admin(broker)
    try:
        assert kp_alter(k, NODE, ("listener.name.plaintext.ssl.keystore.password", "hunter2", SET),
                        ("custom.secret", "hunter2", SET)) == (0, None)
        request = DescribeConfigsRequest(
            resources=[(4, NODE, ["listener.name.plaintext.ssl.keystore.password", "custom.secret"])],
            include_synonyms=True, min_version=1)
        (r,) = k._manager.run(_send, k, request).results
        got = {c.name: (c.value, c.is_sensitive, ConfigSource(c.config_source).name,
                        [(s.name, s.value) for s in c.synonyms]) for c in r.configs}
        assert got == {
            "custom.secret": (None, True, "DYNAMIC_BROKER_CONFIG", [("custom.secret", None)]),
            "listener.name.plaintext.ssl.keystore.password": (
                None, True, "DYNAMIC_BROKER_CONFIG", [("listener.name.plaintext.ssl.keystore.password", None)]),
        }
    finally:
        k.close()
