"""The container image and the compose files, against a real Docker engine.

`tests/docker/engine-up` starts the engine with the team's tool; where it cannot, these
tests are skipped with its reason. The image is built from docker/Dockerfile (BuildKit
caches keep rebuilds incremental); the compose files run under their own project names on
free host ports, and are taken down with their volumes afterwards.
"""

from __future__ import annotations

import json
import re
import os
import subprocess
import urllib.request
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from conftest import REPO, free_port
from e2e import wait_for

ENGINE_UP = REPO / "tests" / "docker" / "engine-up"
IMAGE = "sluice:local"
# The first build compiles RocksDB inside the image: tens of minutes on two cores.
BUILD_TIMEOUT = 3600

# As the engine tool does: its Debian docker CLI (BuildKit built in) before any other on PATH.
DOCKER_ENV = {"PATH": "/usr/bin:" + os.environ.get("PATH", ""), "DOCKER_BUILDKIT": "1"}

pytestmark = pytest.mark.timeout(BUILD_TIMEOUT + 600)


def run(argv: list[str], timeout: float = 120, env: dict[str, str] | None = None,
        input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(argv, capture_output=True, timeout=timeout, input=input,
                       env={**os.environ, **DOCKER_ENV, **(env or {})}, cwd=REPO)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {r.returncode}:\n"
                             f"{r.stdout.decode(errors='replace')[-3000:]}\n"
                             f"{r.stderr.decode(errors='replace')[-3000:]}")
    return r


@pytest.fixture(scope="module")
def image():
    r = subprocess.run([str(ENGINE_UP)], capture_output=True, timeout=1200)
    if r.returncode != 0:
        pytest.skip("no container engine on this machine: "
                    + r.stderr.decode(errors="replace").strip().replace("\n", "; "))
    run(["docker", "build", "-f", "docker/Dockerfile", "-t", IMAGE, "."], timeout=BUILD_TIMEOUT)
    return IMAGE


class Compose:
    """One compose project on free host ports; `down -v` at the end."""

    def __init__(self, file: str, env: dict[str, str]):
        self.file = file
        self.project = f"sluicetest{uuid.uuid4().hex[:8]}"
        self.env = env

    def __call__(self, *args: str, timeout: float = 180, check: bool = True, input: bytes | None = None):
        return run(["docker-compose", "-f", self.file, "-p", self.project, *args],
                   timeout=timeout, env=self.env, check=check, input=input)

    def up(self) -> None:
        """Starts the project from the built image; a failure carries the containers' logs."""
        r = self("up", "-d", "--no-build", check=False)
        if r.returncode != 0:
            raise AssertionError(f"compose up failed:\n{r.stderr.decode(errors='replace')[-2000:]}\n"
                                 f"{self.logs()[-4000:]}")

    def container(self, service: str) -> str:
        return self("ps", "-q", service).stdout.decode().strip()

    def inspect(self, fmt: str, service: str) -> str:
        return run(["docker", "inspect", "-f", fmt, self.container(service)]).stdout.decode().strip()

    def wait_healthy(self, service: str = "sluice") -> None:
        wait_for(lambda: self.inspect("{{.State.Health.Status}}", service) == "healthy", 120,
                 f"{service} healthy", interval=0.5)

    def logs(self) -> str:
        return self("logs", "--no-color", check=False).stdout.decode(errors="replace")


@pytest.fixture
def compose_factory(image):
    projects: list[Compose] = []

    def make(file: str, env: dict[str, str]) -> Compose:
        c = Compose(file, env)
        projects.append(c)
        return c

    yield make
    for c in projects:
        c("down", "-v", "--remove-orphans", check=False)


def avro_roundtrip(bootstrap: str, registry: str) -> None:
    """The README's example: an Avro producer registering its schema, and a consumer
    decoding with the schema fetched by id."""
    schema = json.dumps({"type": "record", "name": "Payment",
                         "fields": [{"name": "id", "type": "string"}, {"name": "cents", "type": "long"}]})
    client = SchemaRegistryClient({"url": registry})
    serialize = AvroSerializer(client, schema)
    p = Producer({"bootstrap.servers": bootstrap})
    p.produce("payments", value=serialize({"id": "p-1", "cents": 1250},
                                          SerializationContext("payments", MessageField.VALUE)))
    assert p.flush(30) == 0
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "readme", "auto.offset.reset": "earliest"})
    c.subscribe(["payments"])
    deserialize = AvroDeserializer(client)
    try:
        for _ in range(60):
            m = c.poll(1)
            if m is not None and m.error() is None:
                value = deserialize(m.value(), SerializationContext("payments", MessageField.VALUE))
                assert value == {"id": "p-1", "cents": 1250}
                return
        raise AssertionError("no record read back")
    finally:
        c.close()


def kcat(*args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
    return run(["kcat", *args], timeout=60, input=input, check=check)


def test_compose_serves_host_and_network_clients_and_keeps_data(compose_factory):
    port, metrics_port, registry_port = free_port(), free_port(), free_port()
    c = compose_factory("docker/docker-compose.yml",
                        {"SLUICE_HOST_PORT": str(port), "SLUICE_METRICS_PORT": str(metrics_port),
                         "SLUICE_REGISTRY_PORT": str(registry_port)})
    c.up()
    c.wait_healthy()
    bootstrap = f"127.0.0.1:{port}"

    # The image runs as its own user, not root.
    assert c("exec", "-T", "sluice", "id", "-u").stdout.decode().strip() == "10001"

    # A host client is told localhost:<published port>, and produces and reads back exactly.
    meta = kcat("-L", "-b", bootstrap).stdout.decode()
    assert f"at localhost:{port}" in meta, meta
    kcat("-P", "-b", bootstrap, "-t", "docked", "-K:", input=b"k1:alpha\nk2:beta\nk3:gamma\n")
    out = kcat("-C", "-b", bootstrap, "-t", "docked", "-e", "-f", "%k=%s@%o\n").stdout.decode()
    assert out.splitlines() == ["k1=alpha@0", "k2=beta@1", "k3=gamma@2"]

    # A container on the compose network bootstraps from sluice:29092 and is told the same.
    inside = c("run", "--rm", "--no-deps", "-T", "--entrypoint", "/usr/local/bin/sluice", "sluice",
               "consume", "docked", "--bootstrap-server", "sluice:29092", "--from-beginning",
               "--max-messages", "3", "--print-key", "--key-separator", "=").stdout.decode()
    assert inside.splitlines() == ["k1=alpha", "k2=beta", "k3=gamma"]

    # Metrics and probes are published on the host.
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/ready", timeout=5) as r:
        assert r.status == 200
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    assert 'sluice_topic_messages_in_total{topic="docked"} 3' in text

    # The Schema Registry: the README's Avro example, from the host.
    registry = f"http://127.0.0.1:{registry_port}"
    avro_roundtrip(bootstrap, registry)

    # SIGTERM (compose stop) shuts down cleanly; the named volume keeps the data.
    c("stop", "-t", "30", "sluice", timeout=60)
    assert c.inspect("{{.State.ExitCode}}", "sluice") == "0"
    c("down", timeout=60)
    c.up()
    c.wait_healthy()
    assert "recovery_work=0" in c.logs().replace('"', "")
    out = kcat("-C", "-b", bootstrap, "-t", "docked", "-e", "-f", "%k=%s@%o\n").stdout.decode()
    assert out.splitlines() == ["k1=alpha@0", "k2=beta@1", "k3=gamma@2"]
    assert SchemaRegistryClient({"url": registry}).get_subjects() == ["payments-value"]


def test_secure_compose_authenticates_over_tls(compose_factory, tmp_path: Path):
    certs = tmp_path / "certs"
    run([str(REPO / "docker" / "secure" / "make-certs.sh"), str(certs)])
    port, metrics_port = free_port(), free_port()
    c = compose_factory("docker/docker-compose.secure.yml", {
        "SLUICE_HOST_PORT": str(port), "SLUICE_METRICS_PORT": str(metrics_port),
        "SLUICE_CERTS_DIR": str(certs), "SLUICE_ADMIN_PASSWORD": "s3cret-admin"})
    c.up()
    c.wait_healthy()
    bootstrap = f"localhost:{port}"
    tls = ["-X", "security.protocol=SASL_SSL", "-X", f"ssl.ca.location={certs / 'ca.crt'}"]
    admin = tls + ["-X", "sasl.mechanisms=SCRAM-SHA-512", "-X", "sasl.username=admin",
                   "-X", "sasl.password=s3cret-admin"]

    kcat("-P", "-b", bootstrap, *admin, "-t", "vault", input=b"one\ntwo\n")
    out = kcat("-C", "-b", bootstrap, *admin, "-t", "vault", "-e", "-f", "%s@%o\n").stdout.decode()
    assert out.splitlines() == ["one@0", "two@1"]

    # A wrong password is refused.
    wrong = tls + ["-X", "sasl.mechanisms=SCRAM-SHA-512", "-X", "sasl.username=admin",
                   "-X", "sasl.password=nope", "-m", "10"]
    r = kcat("-L", "-b", bootstrap, *wrong, check=False)
    assert r.returncode != 0
    assert b"invalid credentials with SASL mechanism SCRAM-SHA-512" in r.stderr, r.stderr
    # alice authenticates with PLAIN but has no ACLs: the topic is hidden from her.
    alice = tls + ["-X", "sasl.mechanisms=PLAIN", "-X", "sasl.username=alice",
                   "-X", "sasl.password=alice-secret"]
    def topics(auth: list[str]) -> list[str]:
        return sorted(t["topic"] for t in json.loads(kcat("-L", "-J", "-b", bootstrap, *auth).stdout)["topics"])
    assert topics(admin) == ["vault"]
    assert topics(alice) == []


def test_compose_cluster_replicates_over_three_brokers_and_survives_one(compose_factory, image):
    run(["docker", "build", "-f", "docker/etcd.Dockerfile", "-t", "sluice-etcd:local", "."], timeout=900)
    ports = [free_port() for _ in range(3)]
    c = compose_factory("docker/docker-compose.cluster.yml",
                        {f"SLUICE_HOST_PORT_{i + 1}": str(p) for i, p in enumerate(ports)})
    c.up()
    for service in ("sluice-1", "sluice-2", "sluice-3"):
        c.wait_healthy(service)
    bootstrap = ",".join(f"127.0.0.1:{p}" for p in ports)
    wait_for(lambda: "3 brokers:" in kcat("-L", "-b", bootstrap).stdout.decode(), 60, "three brokers")

    # An auto-created topic gets the compose file's three replicas, all in sync.
    kcat("-P", "-b", bootstrap, "-t", "replicated", "-K:", "-X", "acks=all",
         input=b"k1:alpha\nk2:beta\nk3:gamma\n")

    def partition_zero():
        """(leader, replicas, isrs) of replicated-0 as kcat -L shows them."""
        meta = kcat("-L", "-b", bootstrap, "-t", "replicated").stdout.decode()
        m = re.search(r"partition 0, leader (-?\d+), replicas: ([\d,]+), isrs: ([\d,]*)", meta)
        if m is None:
            return None
        return int(m[1]), sorted(m[2].split(",")), sorted(filter(None, m[3].split(",")))

    wait_for(lambda: (p := partition_zero()) and p[1] == p[2] == ["1", "2", "3"], 60,
             "three in-sync replicas")
    leader = partition_zero()[0]

    # The leader's container stops: another broker leads, acks=all still gets in (two
    # in-sync replicas left), and every record reads back in order.
    c("stop", "-t", "30", f"sluice-{leader}", timeout=60)
    wait_for(lambda: (p := partition_zero()) and p[0] not in (-1, leader), 60, "a new leader")
    kcat("-P", "-b", bootstrap, "-t", "replicated", "-K:", "-X", "acks=all", input=b"k4:delta\n")
    out = kcat("-C", "-b", bootstrap, "-t", "replicated", "-e", "-f", "%k=%s@%o\n").stdout.decode()
    assert out.splitlines() == ["k1=alpha@0", "k2=beta@1", "k3=gamma@2", "k4=delta@3"]
