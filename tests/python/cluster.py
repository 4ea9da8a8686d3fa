"""A cluster for the end-to-end suites: etcd (Debian's etcd-server) and several `sluice`
brokers on free loopback ports, each with its own data directory.

`cluster_factory(brokers=3, overrides={...})` gives a started `Cluster`; everything it
started is stopped at teardown. Helpers read the cluster as a client does (Metadata through
confluent-kafka) and wait on conditions with a deadline.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from conftest import Broker, BrokerError, free_port

ETCD_BIN = shutil.which("etcd") or "/usr/bin/etcd"


def stopped(pid: int, tid: str) -> bool:
    """Whether thread `tid` of `pid` is stopped by a signal (state T) or gone."""
    try:
        stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "T"


class Etcd:
    """One etcd member on loopback ports."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.client_port = free_port()
        self.peer_port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.client_port}"
        self.log = workdir / "etcd.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> "Etcd":
        if not Path(ETCD_BIN).exists():
            raise BrokerError("etcd not found: install Debian's etcd-server (tests/run does)")
        argv = [
            ETCD_BIN, "--name", "sluice-test", "--data-dir", str(self.workdir / "etcd-data"),
            "--listen-client-urls", self.endpoint, "--advertise-client-urls", self.endpoint,
            "--listen-peer-urls", f"http://127.0.0.1:{self.peer_port}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.peer_port}",
            "--initial-cluster", f"sluice-test=http://127.0.0.1:{self.peer_port}",
            # Short leases (a broker's session) need a short election timeout.
            "--heartbeat-interval", "25", "--election-timeout", "250",
        ]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise BrokerError(f"etcd exited with {self.proc.returncode}\n{self.tail()}")
            if self.healthy():
                return self
            if time.monotonic() > deadline:
                raise BrokerError(f"etcd not healthy after {timeout}s\n{self.tail()}")
            time.sleep(0.05)  # retry interval of the readiness poll

    def healthy(self) -> bool:
        import urllib.request
        try:
            with urllib.request.urlopen(f"{self.endpoint}/health", timeout=0.5) as r:
                return b'"health":"true"' in r.read()
        except OSError:
            return False

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no etcd log)"


class Cluster:
    """etcd and brokers with node ids 1..n."""

    def __init__(self, workdir: Path, brokers: int, overrides: dict[str, object] | None):
        self.workdir = workdir
        self.etcd = Etcd(workdir)
        self.prefix = f"/sluice-test-{uuid.uuid4().hex[:8]}"
        self.brokers: dict[int, Broker] = {}
        # brokers stopped with SIGSTOP: still running, but left out of the bootstrap list
        self.paused: set[int] = set()
        for node_id in range(1, brokers + 1):
            bdir = workdir / f"broker-{node_id}"
            bdir.mkdir()
            props = {
                "node.id": node_id,
                "metadata.etcd.endpoints": self.etcd.endpoint,
                "metadata.etcd.prefix": self.prefix,
                "broker.session.timeout.ms": 3000,
                "broker.heartbeat.interval.ms": 500,
                "replica.lag.time.max.ms": 5000,
            }
            props.update(overrides or {})
            self.brokers[node_id] = Broker(bdir, props)

    @property
    def bootstrap(self) -> str:
        return ",".join(b.bootstrap for i, b in self.brokers.items()
                        if b.running() and i not in self.paused)

    def pause(self, node_id: int) -> None:
        """SIGSTOP: the process holds its sockets but answers nothing (a long GC pause, a
        frozen VM)."""
        pid = self.brokers[node_id].pid
        os.kill(pid, signal.SIGSTOP)
        self.paused.add(node_id)
        # The signal stops the threads asynchronously: until each has stopped, the broker
        # may still read a request sent after the kill() returned.
        self.wait_for(lambda: all(stopped(pid, t) for t in os.listdir(f"/proc/{pid}/task")),
                      timeout=10, what=f"every thread of broker {node_id} stopped")

    def resume(self, node_id: int) -> None:
        self.brokers[node_id].proc.send_signal(signal.SIGCONT)
        self.paused.discard(node_id)

    def start(self) -> "Cluster":
        self.etcd.start()
        for b in self.brokers.values():
            b.start()
        self.wait_for(lambda: len(self.metadata().brokers) == len(self.brokers),
                      what="every broker registered")
        return self

    def stop(self) -> list[str]:
        errors = []
        for node_id in list(self.paused):
            self.resume(node_id)
        for b in self.brokers.values():
            try:
                b.stop()
            except BrokerError as e:
                errors.append(str(e))
        self.etcd.stop()
        return errors

    def admin(self):
        from confluent_kafka.admin import AdminClient
        return AdminClient({"bootstrap.servers": self.bootstrap})

    def metadata(self, topic: str | None = None):
        return self.admin().list_topics(topic=topic, timeout=10)

    def partition(self, topic: str, index: int):
        """The partition's metadata (leader, replicas, isrs) as a client sees it."""
        return self.metadata(topic).topics[topic].partitions[index]

    def leader(self, topic: str, index: int) -> int:
        return self.partition(topic, index).leader

    def wait_for(self, condition, timeout: float = 30.0, what: str = "condition"):
        deadline = time.monotonic() + timeout
        last_error = None
        while True:
            try:
                value = condition()
                if value:
                    return value
            except Exception as e:  # a broker mid-restart refuses connections
                last_error = e
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; last error: {last_error}")
            time.sleep(0.1)  # retry interval of the poll, not a wait for a condition

    def logs(self) -> str:
        parts = [f"--- etcd\n{self.etcd.tail()}"]
        for node_id, b in self.brokers.items():
            parts.append(f"--- broker {node_id}\n{b.stderr_tail()}")
        return "\n".join(parts)


def create_topic(cluster: Cluster, name: str, partitions: int, rf: int = 3, configs: dict | None = None,
                 assignment: list[list[int]] | None = None):
    """Creates a topic (with Kafka's placement, or `assignment`) and waits until every
    partition has a leader and a full ISR."""
    from confluent_kafka.admin import NewTopic

    if assignment is not None:
        topic = NewTopic(name, num_partitions=len(assignment),
                         replica_assignment=assignment, config=configs or {})
        rf = len(assignment[0])
    else:
        topic = NewTopic(name, num_partitions=partitions, replication_factor=rf, config=configs or {})
    admin = cluster.admin()  # held until the answer: a destroyed client fails its futures
    futures = admin.create_topics([topic], operation_timeout=30)
    futures[name].result(timeout=30)
    cluster.wait_for(lambda: all(p.leader >= 0 and len(p.isrs) == rf
                                 for p in cluster.metadata(name).topics[name].partitions.values()),
                     what=f"{name} has leaders and full ISRs")


def produce(cluster: Cluster, topic: str, values: list[bytes], partition: int | None = None,
            extra: dict | None = None) -> list[tuple[int, int, bytes]]:
    """Produces with acks=all and idempotence; returns (partition, offset, value) of every
    acknowledged record and fails on any delivery error."""
    from confluent_kafka import Producer

    acked, errors = [], []

    def report(err, msg):
        if err is not None:
            errors.append(err)
        else:
            acked.append((msg.partition(), msg.offset(), msg.value()))

    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all",
                  "enable.idempotence": True, "linger.ms": 5, **(extra or {})})
    for v in values:
        if partition is None:
            p.produce(topic, v, key=v, on_delivery=report)
        else:
            p.produce(topic, v, partition=partition, on_delivery=report)
        p.poll(0)
    assert p.flush(60) == 0, "undelivered records"
    assert not errors, errors
    return acked


def segment_bytes(broker: Broker, topic: str, partition: int) -> bytes:
    """A replica's log as stored: its segment files concatenated in offset order."""
    d = Path(broker.log_dir) / f"{topic}-{partition}"
    files = sorted(d.glob("*.log"), key=lambda f: int(f.stem))
    return b"".join(f.read_bytes() for f in files)


def new_cluster(base: Path, brokers: int = 3, overrides: dict[str, object] | None = None) -> Cluster:
    workdir = Path(tempfile.mkdtemp(prefix="sluice-cluster-", dir=base))
    return Cluster(workdir, brokers, overrides)
