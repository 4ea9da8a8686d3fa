"""The Kubernetes manifests in docker/k8s: valid against the Kubernetes API schemas, wired
together (probes, ports, volumes, labels, the image's user), and carrying properties that
three real brokers start with as three pods: node ids from the pod ordinals, the pods' DNS
names advertised, a cluster through etcd that replicates and answers on the probe paths."""

from __future__ import annotations

import time
import urllib.request

import kubernetes_validate
import yaml
from kafka.protocol.admin import CreateTopicsRequest
from kafka.protocol.metadata import MetadataRequest

import wire
from cluster import Etcd
from conftest import REPO

K8S = REPO / "docker" / "k8s"
KUBERNETES_VERSION = "1.30.0"
UNKNOWN_TOPIC_OR_PARTITION = 3
NOT_LEADER_OR_FOLLOWER = 6


def manifests() -> dict[tuple[str, str], dict]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs = {}
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((K8S / name).read_text()):
            docs[(doc["kind"], doc["metadata"]["name"])] = doc
    return docs


def properties(text: str) -> dict[str, str]:
    props = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            k, v = line.split("=", 1)
            props[k.strip()] = v.strip()
    return props


def test_manifests_are_valid_and_wired_together():
    docs = manifests()
    assert set(docs) == {("ConfigMap", "sluice-config"), ("Service", "sluice-headless"),
                         ("Service", "sluice"), ("StatefulSet", "sluice")}
    for doc in docs.values():
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)

    sts = docs[("StatefulSet", "sluice")]
    pod = sts["spec"]["template"]
    container = pod["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"kafka": 9092, "metrics": 9644}

    # The probes ask the metrics listener the ConfigMap configures.
    props = properties(docs[("ConfigMap", "sluice-config")]["data"]["server.properties"])
    assert props["metrics.listener"].endswith(f":{ports['metrics']}")
    assert props["listeners"].endswith(f":{ports['kafka']}")
    probes = {k: container[k]["httpGet"] for k in ("livenessProbe", "readinessProbe", "startupProbe")}
    assert {k: (p["path"], p["port"]) for k, p in probes.items()} == {
        "livenessProbe": ("/health", "metrics"), "readinessProbe": ("/ready", "metrics"),
        "startupProbe": ("/ready", "metrics")}

    # Data on the claim, under the log.dirs the ConfigMap names; properties from the ConfigMap.
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    assert props["log.dirs"].startswith(mounts["data"] + "/")
    assert pod["spec"]["volumes"] == [{"name": "config", "configMap": {"name": "sluice-config"}}]
    assert container["args"][:2] == ["--config", f"{mounts['config']}/server.properties"]

    # The pod runs as the image's user (docker/Dockerfile: uid and gid 10001).
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    assert "--uid 10001" in dockerfile and "--gid 10001" in dockerfile
    assert pod["spec"]["securityContext"]["runAsUser"] == 10001
    assert pod["spec"]["securityContext"]["fsGroup"] == 10001

    # Both services select the pods; the headless one is the StatefulSet's.
    labels = pod["metadata"]["labels"]
    assert sts["spec"]["selector"]["matchLabels"] == labels
    for name in ("sluice", "sluice-headless"):
        assert docs[("Service", name)]["spec"]["selector"] == labels
    assert docs[("Service", "sluice-headless")]["spec"]["clusterIP"] == "None"
    assert sts["spec"]["serviceName"] == "sluice-headless"


def pod_overrides(docs, index: int) -> dict[str, str]:
    """The properties pod sluice-<index> in namespace default starts with: the ConfigMap's,
    then the container's --override arguments as Kubernetes expands them."""
    props = properties(docs[("ConfigMap", "sluice-config")]["data"]["server.properties"])
    container = docs[("StatefulSet", "sluice")]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"] if "valueFrom" in e}
    assert env["POD_INDEX"] == "metadata.labels['apps.kubernetes.io/pod-index']"
    values = {"POD_NAME": f"sluice-{index}", "POD_NAMESPACE": "default", "POD_INDEX": str(index)}
    args = []
    for a in container["args"]:
        for name, value in values.items():
            a = a.replace(f"$({name})", value)
        args.append(a)
    overrides = dict(props)
    for flag, value in zip(args, args[1:]):
        if flag == "--override":
            k, v = value.split("=", 1)
            overrides[k] = v
    return overrides


def pod_dns(index: int) -> str:
    return f"sluice-{index}.sluice-headless.default.svc.cluster.local"


def test_three_pods_form_a_cluster_with_the_pod_configuration(broker_factory, tmp_path):
    """Three brokers started as the StatefulSet starts its pods: each resolves the pods'
    DNS names (its own /etc/hosts: pod i is 127.0.0.<i+2>) and listens on its pod's
    address; only where etcd is, where each listens and keeps its data differ."""
    docs = manifests()
    assert docs[("StatefulSet", "sluice")]["spec"]["replicas"] == 3
    etcd = Etcd(tmp_path)
    etcd.start()
    try:
        run_pods(docs, etcd, broker_factory)
    finally:
        etcd.stop()


def run_pods(docs, etcd, broker_factory):
    ips = {i: f"127.0.0.{i + 2}" for i in range(3)}
    pods = {}
    for i, ip in ips.items():
        overrides = pod_overrides(docs, i)
        assert overrides["node.id"] == str(i)
        assert overrides["advertised.listeners"] == f"PLAINTEXT://{pod_dns(i)}:9092"
        assert overrides["metadata.etcd.endpoints"] == "http://etcd:2379"
        b = broker_factory(start=False)
        b.host, b.port, b.bootstrap = ip, 9092, f"{ip}:9092"
        b.hosts = {pod_dns(j): ips[j] for j in ips}
        overrides.update({"listeners": f"PLAINTEXT://{ip}:9092",
                          "log.dirs": str(b.log_dir),
                          "metrics.listener": f"{ip}:9644",
                          "metadata.etcd.endpoints": etcd.endpoint})
        b.overrides = overrides
        pods[i] = b
    for b in pods.values():
        b.start()

    def metadata(topic: str | None = None):
        with wire.Conn(pods[0].host, pods[0].port, timeout=5) as conn:
            topics = None if topic is None else [MetadataRequest.MetadataRequestTopic(name=topic)]
            return wire.call(conn, MetadataRequest(topics=topics, allow_auto_topic_creation=False), 12)

    wait_until(lambda: len(metadata().brokers) == 3, "three pods registered")
    assert sorted((b.node_id, b.host, b.port) for b in metadata().brokers) == [
        (i, pod_dns(i), 9092) for i in range(3)]

    # The ConfigMap's default.replication.factor: three replicas, leaders spread.
    with wire.Conn(pods[1].host, pods[1].port, timeout=30) as conn:
        request = CreateTopicsRequest(topics=[CreateTopicsRequest.CreatableTopic(
            name="orders", num_partitions=3, replication_factor=-1, assignments=[], configs=[])],
            timeout_ms=30000, validate_only=False)
        (created,) = wire.call(conn, request, 5).topics
    assert created.error_code == 0, created.error_message
    assert created.replication_factor == 3

    def leaders():
        parts = metadata("orders").topics[0].partitions
        if len(parts) != 3 or any(sorted(p.isr_nodes) != [0, 1, 2] for p in parts):
            return None
        return {p.partition_index: p.leader_id for p in parts}

    led = wait_until(leaders, "every partition of orders led with three in-sync replicas")
    assert sorted(led.values()) == [0, 1, 2]

    # acks=all through each leader: answered once the other pods, which reach it by its
    # DNS name, have fetched the batch.
    for partition, leader in led.items():
        batch = wire.record_batch([(b"k", f"order {partition}".encode())], int(time.time() * 1000))

        def produce():
            with wire.Conn(pods[leader].host, pods[leader].port, timeout=30) as conn:
                _, [(_, _, err, base)] = wire.parse_produce_response(8, conn.request(
                    wire.produce_request(8, 3, "orders", partition, batch, acks=-1, timeout_ms=20000)))
            # A leader that has not read the new topic from etcd yet says so (retriable).
            return None if err in (UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER) else (err, base)

        assert wait_until(produce, f"a produce to orders-{partition}") == (0, 0)
    for b in pods.values():
        with urllib.request.urlopen(f"http://{b.host}:9644/ready", timeout=5) as r:
            assert r.status == 200


def wait_until(condition, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
            if value:
                return value
        except OSError:
            pass  # a pod still starting refuses connections
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)  # retry interval of the poll, not a wait for a condition
