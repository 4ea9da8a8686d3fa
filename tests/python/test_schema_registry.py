"""The built-in Schema Registry, driven by confluent-kafka's own SchemaRegistryClient and
Avro serializers: register, produce, consume, evolve compatibly and incompatibly, across a
broker restart; and bad requests answered with Confluent's error codes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition,
)
from confluent_kafka.admin import AlterConfigOpType, NewTopic
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

import wire
from conftest import SLUICE_BIN, free_port
from e2e import admin, create_topic, produce_and_report, producer, unique_topic
from test_configs import incremental
from test_kafka_parity import produce_v8, watermarks
from wire import Conn

ORDER_V1 = json.dumps({
    "type": "record", "name": "Order", "namespace": "shop",
    "fields": [{"name": "id", "type": "long"}, {"name": "item", "type": "string"}],
})
# Adds a field with a default: readers of v2 can read v1 data (BACKWARD).
ORDER_V2 = json.dumps({
    "type": "record", "name": "Order", "namespace": "shop",
    "fields": [{"name": "id", "type": "long"}, {"name": "item", "type": "string"},
               {"name": "qty", "type": "int", "default": 1}],
})
# Adds a field without a default: v3 cannot read v2 data.
ORDER_V3 = json.dumps({
    "type": "record", "name": "Order", "namespace": "shop",
    "fields": [{"name": "id", "type": "long"}, {"name": "item", "type": "string"},
               {"name": "qty", "type": "int", "default": 1}, {"name": "price", "type": "double"}],
})


def registry_broker(broker_factory, extra: dict | None = None):
    port = free_port()
    overrides = {"schema.registry.listeners": f"http://127.0.0.1:{port}"}
    overrides.update(extra or {})
    b = broker_factory(overrides=overrides)
    return b, f"http://127.0.0.1:{port}"


def registry_topic(broker_factory, prefix: str):
    """A broker with the registry on, a new one-partition topic and a registry client."""
    b, url = registry_broker(broker_factory)
    topic = unique_topic(prefix)
    create_topic(b.bootstrap, topic, 1)
    return b, url, topic, SchemaRegistryClient({"url": url})


def produce_avro(bootstrap: str, topic: str, serializer: AvroSerializer, values: list[dict]) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    failures = []
    for v in values:
        p.produce(topic, value=serializer(v, SerializationContext(topic, MessageField.VALUE)),
                  on_delivery=lambda err, _m: err and failures.append(err))
    assert p.flush(30) == 0
    assert failures == []


def consume_raw(bootstrap: str, topic: str, n: int) -> list[bytes]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        out: list[bytes] = []
        for _ in range(200):
            for m in c.consume(num_messages=n - len(out), timeout=0.2):
                assert m.error() is None, m.error()
                out.append(m.value())
            if len(out) >= n:
                break
        assert len(out) == n, f"read {len(out)} of {n}"
        return out
    finally:
        c.close()


def decode_all(url: str, topic: str, raw: list[bytes]) -> list[dict]:
    # A fresh client: every schema comes from the registry by id, not from a cache.
    deserializer = AvroDeserializer(SchemaRegistryClient({"url": url}))
    return [deserializer(v, SerializationContext(topic, MessageField.VALUE)) for v in raw]


def test_avro_register_produce_consume_evolve_across_a_restart(broker_factory):
    b, url, topic, client = registry_topic(broker_factory, "orders")
    subject = f"{topic}-value"

    v1 = AvroSerializer(client, ORDER_V1)
    first = [{"id": i, "item": f"item-{i}"} for i in range(10)]
    produce_avro(b.bootstrap, topic, v1, first)
    assert client.get_subjects() == [subject]
    latest = client.get_latest_version(subject)
    assert (latest.version, latest.schema_id) == (1, 1)

    # Compatible evolution: the serializer registers version 2 under a new id.
    v2 = AvroSerializer(client, ORDER_V2)
    second = [{"id": i, "item": f"item-{i}", "qty": i} for i in range(10, 15)]
    produce_avro(b.bootstrap, topic, v2, second)
    assert client.get_versions(subject) == [1, 2]
    assert client.get_version(subject, 2).schema_id == 2

    # Incompatible evolution: 409 with Confluent's error code, nothing registered.
    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema(subject, Schema(ORDER_V3, "AVRO"))
    assert (refused.value.http_status_code, refused.value.error_code) == (409, 409)
    assert client.get_versions(subject) == [1, 2]
    assert client.test_compatibility(subject, Schema(ORDER_V3, "AVRO")) is False
    assert client.test_compatibility(subject, Schema(ORDER_V2, "AVRO")) is True

    raw = consume_raw(b.bootstrap, topic, 15)
    # Confluent's wire format: magic 0, then the schema id, big-endian.
    assert [r[:5] for r in raw] == [b"\0\0\0\0\x01"] * 10 + [b"\0\0\0\0\x02"] * 5
    assert decode_all(url, topic, raw) == first + second

    b.restart()

    client = SchemaRegistryClient({"url": url})
    assert client.get_subjects() == [subject]
    assert client.get_versions(subject) == [1, 2]
    assert json.loads(client.get_schema(1).schema_str) == json.loads(ORDER_V1)
    assert decode_all(url, topic, consume_raw(b.bootstrap, topic, 15)) == first + second
    # The same schema under another subject keeps its id; a new one gets the next id.
    assert client.register_schema("other-value", Schema(ORDER_V1, "AVRO")) == 1
    with pytest.raises(SchemaRegistryError) as still_refused:
        client.register_schema(subject, Schema(ORDER_V3, "AVRO"))
    assert still_refused.value.error_code == 409
    client.set_compatibility(subject, "NONE")
    assert client.register_schema(subject, Schema(ORDER_V3, "AVRO")) == 3


def test_deleted_schema_ids_are_never_given_again(broker_factory):
    b, url = registry_broker(broker_factory)
    client = SchemaRegistryClient({"url": url})
    assert client.register_schema("gone-value", Schema(ORDER_V1, "AVRO")) == 1
    assert client.register_schema("gone-value", Schema(ORDER_V2, "AVRO")) == 2
    assert client.delete_subject("gone-value") == [1, 2]
    assert client.delete_subject("gone-value", permanent=True) == [1, 2]
    with pytest.raises(SchemaRegistryError) as gone:
        client.get_schema(2)
    assert (gone.value.http_status_code, gone.value.error_code) == (404, 40403)

    b.restart()

    client = SchemaRegistryClient({"url": url})
    assert client.get_subjects() == []
    assert client.register_schema("new-value", Schema(ORDER_V1, "AVRO")) == 3


def call(url: str, method: str, path: str, body: bytes | None = None,
         content_type: str | None = "application/vnd.schemaregistry.v1+json") -> tuple[int, dict]:
    req = urllib.request.Request(url + path, data=body, method=method)
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def raw_post(url: str, path: str, header: str, body: bytes) -> tuple[int, dict]:
    """POSTs over a plain socket (so that the answer is read even if the body is cut short)
    and returns the status and JSON body."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                  f"{header}\r\nConnection: close\r\n\r\n".encode())
        try:
            s.sendall(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the broker answered and closed before taking all of it
        data = b""
        while chunk := s.recv(65536):
            data += chunk
            if b"\r\n\r\n" in data and data.rstrip().endswith(b"}"):
                break
    head, _, payload = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload[payload.index(b"{"):])


def test_bad_requests_get_confluents_error_codes_and_the_broker_keeps_serving(broker_factory):
    b, url = registry_broker(broker_factory)
    register = "/subjects/bad-value/versions"
    status, body = call(url, "POST", register, b'{"schema": ')
    assert (status, body["error_code"]) == (400, 400)
    status, body = call(url, "POST", register, b'{"schema": {"type": "string"}}')
    assert (status, body["error_code"]) == (400, 400)
    status, body = call(url, "POST", register, json.dumps({"schema": "{not avro"}).encode())
    assert (status, body["error_code"]) == (422, 42201)
    status, body = call(url, "POST", register, json.dumps({"schema": ORDER_V1}).encode(), "text/plain")
    assert (status, body["error_code"]) == (415, 415)
    status, body = call(url, "GET", "/subjects/nobody-value/versions")
    assert (status, body["error_code"]) == (404, 40401)
    status, body = call(url, "GET", "/schemas/ids/99")
    assert (status, body["error_code"]) == (404, 40403)
    status, body = call(url, "PUT", "/config", b'{"compatibility": "SIDEWAYS"}')
    assert (status, body["error_code"]) == (422, 42203)
    # 50 MB announced: refused before the body is read.
    assert raw_post(url, register, f"Content-Length: {50 << 20}", b"x" * 65536)[0] == 413
    # 50 MB chunked, with no length announced: refused once the limit is crossed.
    chunk = b"x" * (1 << 20)
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(50)) + b"0\r\n\r\n"
    assert raw_post(url, register, "Transfer-Encoding: chunked", chunks)[0] == 413
    # Still serving, with nothing registered by any of the above.
    status, body = call(url, "POST", register, json.dumps({"schema": ORDER_V1}).encode())
    assert (status, body) == (200, {"id": 1})
    assert call(url, "GET", "/subjects") == (200, ["bad-value"])


# --- broker-side schema validation ---------------------------------------------------------

INVALID_RECORD = 87
USER = json.dumps({"type": "record", "name": "User", "fields": [{"name": "id", "type": "long"}]})


def framed(schema_id: int, payload: bytes = b"\x02") -> bytes:
    return b"\0" + schema_id.to_bytes(4, "big") + payload


def validated_topic(b, prefix: str, **config) -> str:
    topic = unique_topic(prefix)
    a = admin(b.bootstrap)  # held until the answer: a destroyed client fails its futures
    a.create_topics([NewTopic(topic, 1, 1, config=dict(config))])[topic].result(30)
    return topic


def test_validation_refuses_records_the_registry_does_not_vouch_for(broker_factory):
    """confluent.value.schema.validation=true: raw JSON, a wrong magic byte, an unknown id
    and another subject's id each get INVALID_RECORD; records serialized by confluent-kafka's
    AvroSerializer, produced in between by the same producer, land in order."""
    metrics_port = free_port()
    b, url = registry_broker(broker_factory, {"metrics.listener": f"127.0.0.1:{metrics_port}"})
    topic = validated_topic(b, "validated", **{"confluent.value.schema.validation": "true"})
    client = SchemaRegistryClient({"url": url})
    users_id = client.register_schema("users-value", Schema(USER, "AVRO"))
    serialize = AvroSerializer(client, ORDER_V1)
    ctx = SerializationContext(topic, MessageField.VALUE)
    good = [serialize({"id": i, "item": f"item-{i}"}, ctx) for i in range(3)]
    order_id = client.get_latest_version(f"{topic}-value").schema_id
    assert order_id != users_id

    # One record per batch, so that each gets its own answer.
    p = producer(b.bootstrap, **{"linger.ms": 0, "batch.num.messages": 1})
    wrong_magic = b"\x01" + framed(order_id)[1:]
    items = [good[0], b'{"id": 7, "item": "raw json"}', good[1], wrong_magic, framed(999), framed(users_id), good[2]]
    reports = produce_and_report(p, [(topic, None, v, None, 0) for v in items])
    codes = [err.code() if err else None for err, _, _ in reports]
    assert codes == [None, INVALID_RECORD, None, INVALID_RECORD, INVALID_RECORD, INVALID_RECORD, None]
    assert [offset for err, _, offset in reports if err is None] == [0, 1, 2]
    assert consume_raw(b.bootstrap, topic, 3) == good

    # Raw Produce v8: the answer names the record and the reason.
    now = int(time.time() * 1000)
    expect = {
        b'{"id": 7}': "magic byte is 123, not 0: not in the Schema Registry's wire format",
        framed(999): "schema id 999 is not registered",
        framed(users_id): f"schema id {users_id} is not a version of subject {topic}-value",
    }
    with Conn(b.host, b.port) as c:
        for value, reason in expect.items():
            part = produce_v8(c, topic, wire.record_batch([(b"k", good[0]), (b"k", value)], now))
            assert (part.error_code, part.base_offset) == (INVALID_RECORD, -1)
            assert [(e.batch_index, e.batch_index_error_message) for e in part.record_errors] == [
                (1, f"value of record 1: {reason}")]
            assert reason in part.error_message
    assert watermarks(b.bootstrap, topic) == (0, 3)
    body = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    assert f'sluice_schema_validation_failures_total{{topic="{topic}"}} 7' in body.splitlines()
    assert "sluice_schema_registry_subjects 2" in body.splitlines()


def test_validation_off_accepts_anything_and_keys_follow_their_own_setting(broker_factory):
    b, url = registry_broker(broker_factory)
    plain = validated_topic(b, "plain")
    keyed = validated_topic(b, "keyed", **{"confluent.key.schema.validation": "true"})
    client = SchemaRegistryClient({"url": url})
    key_id = client.register_schema(f"{keyed}-key", Schema('"string"', "AVRO"))
    p = producer(b.bootstrap, **{"linger.ms": 0, "batch.num.messages": 1})
    reports = produce_and_report(p, [
        (plain, b"raw", b'{"raw": true}', None, 0),
        (keyed, framed(key_id, b"\x02a"), b'{"raw value": true}', None, 0),
        (keyed, b"raw key", framed(key_id), None, 0),
        (keyed, None, b"no key at all", None, 0),
    ])
    assert [err.code() if err else None for err, _, _ in reports] == [None, None, INVALID_RECORD, None]

    # Turned off on the topic: anything goes again.
    a = admin(b.bootstrap)
    incremental(a, keyed, ("confluent.key.schema.validation", "false", AlterConfigOpType.SET))
    reports = produce_and_report(p, [(keyed, b"raw key", b"v", None, 0)])
    assert reports[0][0] is None


def test_validation_needs_the_registry(broker):
    a = admin(broker.bootstrap)
    topic = unique_topic("novalidation")
    with pytest.raises(KafkaException) as refused:
        a.create_topics([NewTopic(topic, 1, 1, config={"confluent.value.schema.validation": "true"})])[topic].result(30)
    err = refused.value.args[0]
    assert err.code() == KafkaError.INVALID_CONFIG
    assert "schema.registry.listeners" in err.str()


# --- kafkajs ---------------------------------------------------------------------------------

JS_DIR = Path(__file__).resolve().parents[1] / "js"


def run_js(*args: str) -> dict:
    r = subprocess.run(["node", str(JS_DIR / "registry.js"), *args], capture_output=True, timeout=120,
                       cwd=JS_DIR, env={**os.environ, "KAFKAJS_NO_PARTITIONER_WARNING": "1"})
    assert r.returncode == 0, f"registry.js exited {r.returncode}\n{r.stderr.decode(errors='replace')[-4000:]}"
    return json.loads(r.stdout)


def test_kafkajs_schema_registry_client_across_a_restart(broker_factory):
    """@kafkajs/confluent-schema-registry registers, evolves (a field with a default is
    accepted, one without is refused with Confluent's 409), and kafkajs produces; after a
    broker restart a kafkajs consumer decodes every record with the schemas by id."""
    b, url = registry_broker(broker_factory)
    topic = unique_topic("jsregistry")
    create_topic(b.bootstrap, topic, 1)
    wrote = run_js("write", b.bootstrap, url, topic)
    assert wrote["ids"] == [1, 2] and wrote["latest"] == 2
    assert (wrote["incompatible"]["name"], wrote["incompatible"]["status"]) == ("ResponseError", 409)
    assert "incompatible" in wrote["incompatible"]["message"]
    raw = consume_raw(b.bootstrap, topic, 5)
    assert [r[:5] for r in raw] == [b"\0\0\0\0\x01"] * 3 + [b"\0\0\0\0\x02"] * 2

    b.restart()

    got = run_js("read", b.bootstrap, url, topic, "5")
    assert got["latest"] == 2
    assert [(v["offset"], v["value"]) for v in got["values"]] == [
        ("0", {"id": 0, "item": "item-0"}), ("1", {"id": 1, "item": "item-1"}), ("2", {"id": 2, "item": "item-2"}),
        ("3", {"id": 3, "item": "item-3", "qty": 3}), ("4", {"id": 4, "item": "item-4", "qty": 4})]


# --- the CLI ---------------------------------------------------------------------------------

def schema_cli(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SLUICE_BIN), "schema", *args, "--registry", url], capture_output=True, timeout=60)


def test_cli_registers_gets_lists_checks_and_deletes(broker_factory, tmp_path):
    b, url = registry_broker(broker_factory)
    v1, v2, v3 = tmp_path / "v1.avsc", tmp_path / "v2.avsc", tmp_path / "v3.avsc"
    v1.write_text(ORDER_V1)
    v2.write_text(ORDER_V2)
    v3.write_text(ORDER_V3)
    out = lambda r: r.stdout.decode().strip()  # noqa: E731

    r = schema_cli(url, "register", "orders-value", str(v1))
    assert (r.returncode, out(r)) == (0, "1"), r.stderr
    assert out(schema_cli(url, "register", "orders-value", str(v2))) == "2"
    assert out(schema_cli(url, "list")) == "orders-value"
    assert out(schema_cli(url, "list", "orders-value")).splitlines() == ["1", "2"]
    got = json.loads(out(schema_cli(url, "get", "orders-value", "--version", "1")))
    assert (got["subject"], got["version"], got["id"], json.loads(got["schema"])) == (
        "orders-value", 1, 1, json.loads(ORDER_V1))
    assert json.loads(json.loads(out(schema_cli(url, "get", "--id", "2")))["schema"]) == json.loads(ORDER_V2)

    ok = schema_cli(url, "compat", "orders-value", str(v2))
    assert (ok.returncode, out(ok)) == (0, "compatible")
    bad = schema_cli(url, "compat", "orders-value", str(v3))
    assert bad.returncode == 1 and out(bad).splitlines()[0] == "incompatible"
    refused = schema_cli(url, "register", "orders-value", str(v3))
    assert refused.returncode == 1 and "409" in refused.stderr.decode()

    assert out(schema_cli(url, "delete", "orders-value", "--version", "1")) == "1"
    assert out(schema_cli(url, "list", "orders-value")) == "2"
    assert out(schema_cli(url, "delete", "orders-value")) == "[2]"
    assert out(schema_cli(url, "delete", "orders-value", "--permanent")) == "[1,2]"
    missing = schema_cli(url, "get", "orders-value")
    assert missing.returncode == 1 and "40401" in missing.stderr.decode()
    unreachable = schema_cli("http://127.0.0.1:1", "list")
    assert unreachable.returncode == 1 and "cannot reach" in unreachable.stderr.decode()


# --- references ------------------------------------------------------------------------------

ADDRESS = json.dumps({"type": "record", "name": "Address", "namespace": "shop",
                      "fields": [{"name": "city", "type": "string"}]})
CUSTOMER = json.dumps({"type": "record", "name": "Customer", "namespace": "shop",
                       "fields": [{"name": "name", "type": "string"}, {"name": "address", "type": "shop.Address"}]})


def test_avro_references_serialize_decode_and_pin_what_they_reference(broker_factory):
    """A schema naming another subject's record: registered with its reference (refused
    without it, 42201), served with it, used by AvroSerializer and AvroDeserializer; the
    referenced version cannot be deleted while referenced (42206)."""
    from confluent_kafka.schema_registry import SchemaReference

    b, url, topic, client = registry_topic(broker_factory, "customers")
    assert client.register_schema("shop.Address", Schema(ADDRESS, "AVRO")) == 1
    with pytest.raises(SchemaRegistryError) as unresolved:
        client.register_schema(f"{topic}-value", Schema(CUSTOMER, "AVRO"))
    assert unresolved.value.error_code == 42201
    refs = [SchemaReference("shop.Address", "shop.Address", 1)]
    customer_id = client.register_schema(f"{topic}-value", Schema(CUSTOMER, "AVRO", refs))
    assert customer_id == 2
    got = client.get_version(f"{topic}-value", 1)
    assert [(r.name, r.subject, r.version) for r in got.schema.references] == [("shop.Address", "shop.Address", 1)]
    assert call(url, "GET", "/subjects/shop.Address/versions/1/referencedby") == (200, [2])

    serialize = AvroSerializer(client, Schema(CUSTOMER, "AVRO", refs), conf={"auto.register.schemas": False})
    ctx = SerializationContext(topic, MessageField.VALUE)
    values = [{"name": f"c{i}", "address": {"city": f"city-{i}"}} for i in range(3)]
    produce_avro(b.bootstrap, topic, serialize, values)
    raw = consume_raw(b.bootstrap, topic, 3)
    assert [r[:5] for r in raw] == [b"\0\0\0\0\x02"] * 3
    assert decode_all(url, topic, raw) == values

    status, body = call(url, "DELETE", "/subjects/shop.Address/versions/1")
    assert (status, body["error_code"]) == (422, 42206)
    status, body = call(url, "DELETE", "/subjects/shop.Address")
    assert (status, body["error_code"]) == (422, 42206)
    assert client.get_versions("shop.Address") == [1]
