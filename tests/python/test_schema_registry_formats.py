"""JSON Schema and Protobuf through the built-in Schema Registry, with confluent-kafka's
JSONSerializer/JSONDeserializer and ProtobufSerializer/ProtobufDeserializer: register,
produce, consume, evolve compatibly (accepted) and incompatibly (409), across a broker
restart."""

from __future__ import annotations

import json

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from test_schema_registry import consume_raw, produce_avro as produce_serialized, registry_topic

ORDER_JSON = {
    "$schema": "http://json-schema.org/draft-07/schema#", "title": "Order", "type": "object",
    "properties": {"id": {"type": "integer"}, "item": {"type": "string"}, "note": {"type": "string"}},
}


def with_changes(base: dict, **properties) -> dict:
    schema = json.loads(json.dumps(base))
    for name, spec in properties.items():
        if spec is None:
            del schema["properties"][name]
        else:
            schema["properties"][name] = spec
    return schema


def test_json_schema_register_produce_consume_evolve_across_a_restart(broker_factory):
    b, url, topic, client = registry_topic(broker_factory, "jsonorders")
    subject = f"{topic}-value"
    ctx = SerializationContext(topic, MessageField.VALUE)

    v1 = JSONSerializer(json.dumps(ORDER_JSON), client)
    first = [{"id": i, "item": f"item-{i}", "note": "n"} for i in range(5)]
    produce_serialized(b.bootstrap, topic, v1, first)
    registered = client.get_latest_version(subject)
    assert (registered.version, registered.schema.schema_type) == (1, "JSON")

    # Dropping a property of an open content model, and widening integer to number: accepted.
    v2_schema = with_changes(ORDER_JSON, note=None, id={"type": "number"})
    v2 = JSONSerializer(json.dumps(v2_schema), client)
    second = [{"id": 10.5, "item": "half"}]
    produce_serialized(b.bootstrap, topic, v2, second)
    assert client.get_versions(subject) == [1, 2]

    # Adding a property to an open content model: 409, as Confluent's registry answers.
    v3 = with_changes(v2_schema, qty={"type": "integer"})
    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema(subject, Schema(json.dumps(v3), "JSON"))
    assert (refused.value.http_status_code, refused.value.error_code) == (409, 409)
    # A schema that is not a JSON Schema: 42201.
    with pytest.raises(SchemaRegistryError) as invalid:
        client.register_schema(subject, Schema(json.dumps({"type": 12}), "JSON"))
    assert (invalid.value.http_status_code, invalid.value.error_code) == (422, 42201)

    b.restart()

    fresh = SchemaRegistryClient({"url": url})
    assert fresh.get_versions(subject) == [1, 2]
    assert json.loads(fresh.get_schema(1).schema_str) == ORDER_JSON
    deserialize = JSONDeserializer(None, schema_registry_client=fresh)
    assert [deserialize(v, ctx) for v in consume_raw(b.bootstrap, topic, 6)] == first + second


def order_classes():
    """Two versions of a Protobuf message `shop.Order`, built from descriptors (no protoc)."""
    F = descriptor_pb2.FieldDescriptorProto
    classes = []
    for version, fields in enumerate([
        [("id", 1, F.TYPE_INT64), ("item", 2, F.TYPE_STRING)],
        [("id", 1, F.TYPE_INT64), ("item", 2, F.TYPE_STRING), ("qty", 3, F.TYPE_INT32)],
        [("id", 1, F.TYPE_DOUBLE), ("item", 2, F.TYPE_STRING)],
    ]):
        fdp = descriptor_pb2.FileDescriptorProto(name=f"order_v{version}.proto", package="shop", syntax="proto3")
        m = fdp.message_type.add(name="Order")
        for name, number, kind in fields:
            m.field.add(name=name, number=number, type=kind, label=F.LABEL_OPTIONAL)
        pool = descriptor_pool.DescriptorPool()
        pool.AddSerializedFile(fdp.SerializeToString())
        classes.append(message_factory.GetMessageClass(pool.FindMessageTypeByName("shop.Order")))
    return classes


def test_protobuf_register_produce_consume_evolve_across_a_restart(broker_factory):
    b, url, topic, client = registry_topic(broker_factory, "protoorders")
    subject = f"{topic}-value"
    ctx = SerializationContext(topic, MessageField.VALUE)
    v1, v2, bad = order_classes()

    first = [v1(id=i, item=f"item-{i}") for i in range(5)]
    produce_serialized(b.bootstrap, topic, ProtobufSerializer(v1, client), first)
    assert client.get_latest_version(subject).schema.schema_type == "PROTOBUF"

    # A new field: accepted, as version 2.
    second = [v2(id=9, item="nine", qty=3)]
    produce_serialized(b.bootstrap, topic, ProtobufSerializer(v2, client), second)
    assert client.get_versions(subject) == [1, 2]

    # int64 to double on the same field number: 409.
    with pytest.raises(Exception) as refused:
        produce_serialized(b.bootstrap, topic, ProtobufSerializer(bad, client), [bad(id=1.5, item="x")])
    assert "409" in str(refused.value)
    assert client.get_versions(subject) == [1, 2]
    # The same schema as .proto text is the version already registered.
    text = 'syntax = "proto3";\npackage shop;\n\nmessage Order {\n  int64 id = 1;\n  string item = 2;\n}\n'
    assert client.lookup_schema(subject, Schema(text, "PROTOBUF")).version == 1

    b.restart()

    fresh = SchemaRegistryClient({"url": url})
    raw = consume_raw(b.bootstrap, topic, 6)
    read = ProtobufDeserializer(v2, {"use.deprecated.format": False}, fresh)
    decoded = [read(v, ctx) for v in raw]
    assert [(m.id, m.item, m.qty) for m in decoded] == [(i, f"item-{i}", 0) for i in range(5)] + [(9, "nine", 3)]
    assert fresh.get_versions(subject) == [1, 2]
