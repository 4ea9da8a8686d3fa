"""The built-in Schema Registry's security: HTTPS with the broker's TLS settings, HTTP
basic auth against the broker's SCRAM users, and subjects following their topics' ACLs,
driven by confluent-kafka's SchemaRegistryClient."""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka.admin import AclBinding, AclOperation, AclPermissionType, ResourcePatternType, ResourceType
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from conftest import free_port
from e2e import admin
from pki import pki  # noqa: F401 (fixture)

USERS = {"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret"}
STRING = '"string"'
RECORD = json.dumps({"type": "record", "name": "Payment", "fields": [{"name": "cents", "type": "long"}]})


def secured_registry(broker_factory, pki: Path) -> tuple:
    """HTTPS and basic auth, the authorizer on; User:admin (and the PLAINTEXT listener's
    anonymous admin client) are super users; SCRAM users set before start-up."""
    b = broker_factory(start=False)
    port = free_port()
    b.overrides.update({
        "schema.registry.listeners": f"https://127.0.0.1:{port}",
        "schema.registry.authentication.method": "BASIC",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(pki / "server-keystore.pem"),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:admin;User:ANONYMOUS",
    })
    for user, password in USERS.items():
        r = subprocess.run([*b.argv(), "scram", "set", "--user", user, "--mechanism", "SCRAM-SHA-256"],
                           input=f"{password}\n".encode(), capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr.decode(errors="replace")
    b.start()
    return b, f"https://127.0.0.1:{port}"


def client(url: str, pki: Path, user: str, password: str | None = None) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": url, "ssl.ca.location": str(pki / "ca.pem"),
                                 "basic.auth.user.info": f"{user}:{password or USERS[user]}"})


def allow(principal: str, topic: str, op) -> AclBinding:
    return AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, principal, "*", op,
                      AclPermissionType.ALLOW)


def status_of(url: str, pki: Path, path: str, auth: str | None) -> tuple[int, dict, str | None]:
    import ssl
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    req = urllib.request.Request(url + path)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=30, context=ctx) as r:
            return r.status, json.loads(r.read()), None
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), e.headers.get("WWW-Authenticate")


def test_basic_auth_and_subject_acls(broker_factory, pki):
    b, url = secured_registry(broker_factory, pki)
    a = admin(b.bootstrap)  # held until its futures resolve
    for f in a.create_acls([allow("User:alice", "orders", AclOperation.WRITE),
                            allow("User:bob", "payments", AclOperation.READ)]).values():
        f.result(10)

    # Who may call at all.
    status, body, challenge = status_of(url, pki, "/subjects", None)
    assert (status, body["error_code"], challenge) == (401, 401, 'Basic realm="SchemaRegistry"')
    assert status_of(url, pki, "/subjects", "alice:wrong")[0] == 401
    assert status_of(url, pki, "/subjects", "mallory:alice-secret")[0] == 401
    with pytest.raises(SchemaRegistryError) as refused:
        client(url, pki, "alice", "wrong").get_subjects()
    assert refused.value.http_status_code == 401

    admin_client = client(url, pki, "admin")
    payments_id = admin_client.register_schema("payments-value", Schema(RECORD, "AVRO"))

    # alice writes orders: she registers its subject, and sees only it.
    alice = client(url, pki, "alice")
    orders_id = alice.register_schema("orders-value", Schema(STRING, "AVRO"))
    assert alice.get_subjects() == ["orders-value"]
    assert alice.get_latest_version("orders-value").schema_id == orders_id
    with pytest.raises(SchemaRegistryError) as denied:
        alice.register_schema("payments-value", Schema(STRING, "AVRO"))
    assert (denied.value.http_status_code, denied.value.error_code) == (403, 40301)
    with pytest.raises(SchemaRegistryError) as denied:
        alice.get_latest_version("payments-value")
    assert denied.value.error_code == 40301
    # A deserializer needs schemas by id, whatever the subject.
    assert json.loads(alice.get_schema(payments_id).schema_str) == json.loads(RECORD)

    # bob reads payments: he looks it up but cannot register under it.
    bob = client(url, pki, "bob")
    assert bob.get_latest_version("payments-value").schema_id == payments_id
    assert bob.lookup_schema("payments-value", Schema(RECORD, "AVRO")).version == 1
    with pytest.raises(SchemaRegistryError) as denied:
        bob.register_schema("payments-value", Schema(RECORD.replace("cents", "euros"), "AVRO"))
    assert denied.value.error_code == 40301

    # The global level needs ALTER on the cluster; a record-named subject too.
    with pytest.raises(SchemaRegistryError) as denied:
        alice.set_compatibility(level="NONE")
    assert denied.value.error_code == 40301
    with pytest.raises(SchemaRegistryError) as denied:
        alice.register_schema("shop.Payment", Schema(RECORD, "AVRO"))
    assert denied.value.error_code == 40301
    assert admin_client.set_compatibility(level="FULL")["compatibility"] == "FULL"
    assert sorted(admin_client.get_subjects()) == ["orders-value", "payments-value"]
