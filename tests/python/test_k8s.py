"""The Kubernetes manifests in docker/k8s: valid against the Kubernetes API schemas, wired
together (probes, ports, volumes, labels, the image's user), and carrying properties the
real broker starts with, advertising the pod's DNS name and answering on the probe paths."""

from __future__ import annotations

import urllib.request
import kubernetes_validate
import yaml
from confluent_kafka.admin import AdminClient

from conftest import REPO, free_port

K8S = REPO / "docker" / "k8s"
KUBERNETES_VERSION = "1.30.0"


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


def test_the_broker_runs_with_the_pod_configuration(broker_factory):
    docs = manifests()
    props = properties(docs[("ConfigMap", "sluice-config")]["data"]["server.properties"])
    container = docs[("StatefulSet", "sluice")]["spec"]["template"]["spec"]["containers"][0]
    # What Kubernetes makes of the container's arguments for pod sluice-0 in namespace default.
    args = [a.replace("$(POD_NAME)", "sluice-0").replace("$(POD_NAMESPACE)", "default")
            for a in container["args"]]
    overrides = dict(props)
    for flag, value in zip(args, args[1:]):
        if flag == "--override":
            k, v = value.split("=", 1)
            overrides[k] = v
    advertised = overrides["advertised.listeners"]
    assert advertised == "PLAINTEXT://sluice-0.sluice-headless.default.svc.cluster.local:9092"

    # Only where it listens and keeps its data differ on this machine.
    metrics_port = free_port()
    b = broker_factory(start=False)
    overrides.update({"listeners": f"PLAINTEXT://127.0.0.1:{b.port}",
                      "log.dirs": str(b.log_dir),
                      "metrics.listener": f"127.0.0.1:{metrics_port}"})
    b.overrides = overrides
    b.start()

    md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10)
    assert [(x.id, x.host, x.port) for x in md.brokers.values()] == [
        (1, "sluice-0.sluice-headless.default.svc.cluster.local", 9092)]
    for probe in ("/health", "/ready"):
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}{probe}", timeout=5) as r:
            assert r.status == 200
