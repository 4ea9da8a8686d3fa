"""The built-in Schema Registry, driven by confluent-kafka's own SchemaRegistryClient and
Avro serializers: register, produce, consume, evolve compatibly and incompatibly, across a
broker restart; and bad requests answered with Confluent's error codes."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition, OFFSET_BEGINNING
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from conftest import free_port
from e2e import create_topic, unique_topic

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


def registry_broker(broker_factory, **extra):
    port = free_port()
    overrides = {"schema.registry.listeners": f"http://127.0.0.1:{port}"}
    overrides.update(extra)
    b = broker_factory(overrides=overrides)
    return b, f"http://127.0.0.1:{port}"


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
    b, url = registry_broker(broker_factory)
    topic = unique_topic("orders")
    create_topic(b.bootstrap, topic, 1)
    subject = f"{topic}-value"
    client = SchemaRegistryClient({"url": url})

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
