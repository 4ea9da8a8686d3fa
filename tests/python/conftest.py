"""Fixtures that start the real `sluice` binary for the end-to-end suites.

`broker` gives one broker with default settings; `broker_factory(overrides={...})` starts
brokers with extra `--override key=value` properties (and `env={...}`, extra environment
variables such as a crash point, kept in `Broker.env`: change it before a restart to start
without them). Each broker gets a free loopback
port and a fresh log dir; it is stopped (SIGTERM, then SIGKILL if it hangs) at teardown.
When a test fails, the tail of every broker's stderr is attached to the report.

`s3_store` (once per server: SeaweedFS, then moto), `seaweedfs` and `moto_s3` give a
started S3-compatible store with a bucket, for tiered storage (tests/python/s3.py); its
log tail is attached to a failed test's report too.
"""

from __future__ import annotations

import gc
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEFAULT_TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or Path.home() / ".cache" / "sluice-target")
SLUICE_BIN = Path(os.environ.get("SLUICE_BIN") or DEFAULT_TARGET / "debug" / "sluice")

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0


def _ephemeral_range() -> tuple[int, int]:
    try:
        lo, hi = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999


_handed_out: set[int] = set()


def free_port() -> int:
    """A free loopback port outside the kernel's ephemeral range. A port the kernel picked
    for bind(0) is also one it hands to outgoing connections: between choosing it and the
    broker binding it, a client socket (another broker's connection to etcd, say) can take
    it, and the broker fails to start with "address in use"."""
    lo, hi = _ephemeral_range()
    candidates = [p for p in range(20000, 65536) if not lo <= p <= hi and p not in _handed_out]
    for port in random.sample(candidates, min(200, len(candidates))):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_up_error(props: dict[str, object]) -> str:
    """Starts the broker with `props` (as --override pairs), expects it to refuse to
    start, and returns what it printed."""
    argv = [str(SLUICE_BIN)]
    for k, v in props.items():
        argv += ["--override", f"{k}={v}"]
    r = subprocess.run(argv, capture_output=True, timeout=30)
    assert r.returncode != 0, f"the broker started with {props}"
    return (r.stdout + r.stderr).decode(errors="replace")


class BrokerError(AssertionError):
    pass


class Broker:
    """One sluice process; restartable on the same port and data dir."""

    def __init__(self, workdir: Path, overrides: dict[str, object] | None = None, port: int | None = None,
                 env: dict[str, str] | None = None):
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.bootstrap = f"{self.host}:{self.port}"
        self.workdir = workdir
        self.log_dir = workdir / "data"
        self.stderr = workdir / "broker.stderr.log"
        self.overrides = {str(k): str(v) for k, v in (overrides or {}).items()}
        # extra environment of the broker process; read at each start()
        self.env = {str(k): str(v) for k, v in (env or {}).items()}
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        # the group id the process runs with (None: ours); read at each start(). A group of
        # its own lets a test match the broker's packets with iptables' owner module.
        self.group: int | None = None
        # when set, the data directory is a tmpfs of this many MiB of the process's own
        # (a mount namespace): a disk that fills up, to fail writes with ENOSPC. What was
        # written is gone with the process, as with a replaced disk. Read at each start().
        self.disk_mib: int | None = None
        # when set, names the process resolves, as /etc/hosts lines of its own (a mount
        # namespace): a pod's view of DNS. Read at each start().
        self.hosts: dict[str, str] | None = None

    # -- lifecycle -------------------------------------------------------------------
    def argv(self) -> list[str]:
        props = {
            "listeners": f"PLAINTEXT://{self.bootstrap}",
            "advertised.listeners": f"PLAINTEXT://{self.bootstrap}",
            "log.dirs": str(self.log_dir),
        }
        props.update(self.overrides)
        argv = [str(SLUICE_BIN)]
        for k, v in props.items():
            argv += ["--override", f"{k}={v}"]
        setup = []
        if self.disk_mib is not None:
            setup.append(f'mkdir -p "{self.log_dir}" && '
                         f'mount -t tmpfs -o size={int(self.disk_mib)}m sluice-disk "{self.log_dir}"')
        if self.hosts is not None:
            hosts = self.workdir / "hosts"
            hosts.write_text("127.0.0.1 localhost\n"
                             + "".join(f"{ip} {name}\n" for name, ip in self.hosts.items()))
            setup.append(f'mount --bind "{hosts}" /etc/hosts')
        if setup:
            # unshare execs sh, which execs the broker: the process keeps its pid.
            own_root = [] if os.geteuid() == 0 else ["--map-root-user"]
            script = " && ".join(setup) + ' && exec "$@"'
            argv = ["unshare", "--mount", "--propagation", "private", *own_root, "sh", "-c", script, "sh"] + argv
        return argv

    def start(self, timeout: float = READY_TIMEOUT) -> "Broker":
        if self.proc is not None and self.proc.poll() is None:
            raise BrokerError("broker already running")
        if not SLUICE_BIN.exists():
            raise BrokerError(f"sluice binary not found at {SLUICE_BIN} (build it: cargo build --bin sluice)")
        self.starts += 1
        with open(self.stderr, "ab") as err:
            env_note = "".join(f"{k}={v} " for k, v in sorted(self.env.items()))
            err.write(f"\n===== start #{self.starts}: {env_note}{' '.join(self.argv())}\n".encode())
            err.flush()
            self.proc = subprocess.Popen(
                self.argv(),
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                cwd=self.workdir,
                env={**os.environ, "NO_COLOR": "1", **self.env},
                group=self.group,
            )
        self.wait_ready(timeout)
        return self

    def listener_addresses(self) -> list[tuple[str, int]]:
        """Every address of the `listeners` the broker is started with."""
        listeners = self.overrides.get("listeners", f"PLAINTEXT://{self.bootstrap}")
        out = []
        for item in listeners.split(","):
            host, _, port = item.split("://", 1)[-1].rpartition(":")
            host = host.strip("[]")
            out.append(("127.0.0.1" if host in ("", "0.0.0.0") else host, int(port)))
        return out

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Until every listener accepts: they are bound one after another, and a test may
        use any of them as soon as this returns."""
        deadline = time.monotonic() + timeout
        pending = self.listener_addresses()
        while True:
            code = self.proc.poll()
            if code is not None:
                raise BrokerError(f"broker exited with {code} before accepting connections\n{self.stderr_tail()}")
            while pending:
                try:
                    with socket.create_connection(pending[0], timeout=0.5):
                        pending.pop(0)
                except OSError:
                    break
            if not pending:
                return
            if time.monotonic() > deadline:
                raise BrokerError(f"broker not accepting on {self.bootstrap} after {timeout}s\n{self.stderr_tail()}")
            time.sleep(0.02)  # retry interval of the readiness poll, not a wait for a condition

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM and wait; a broker that does not exit in time is killed and reported."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise BrokerError(f"broker did not exit within {timeout}s of SIGTERM\n{self.stderr_tail()}")
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL and wait: a crash, as far as the data on disk is concerned."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> "Broker":
        self.stop()
        return self.start()

    # -- diagnostics -----------------------------------------------------------------
    def stderr_tail(self, lines: int = 60) -> str:
        try:
            text = self.stderr.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no broker stderr)"
        # A start-up error printed with RUST_BACKTRACE set ends in stack frames that would
        # push its message out of the tail.
        frame = re.compile(r"^\s+(\d+: |at )")
        return "\n".join([line for line in text if not frame.match(line)][-lines:])

    def cpu_ticks(self) -> int:
        """utime + stime of the broker process, in clock ticks."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # after the comm field: state is fields[0]; utime, stime are stat fields 14, 15
        return int(fields[11]) + int(fields[12])

    def __repr__(self) -> str:
        return f"Broker({self.bootstrap}, log_dir={self.log_dir})"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for i, b in enumerate(getattr(item, "_sluice_brokers", [])):
            report.sections.append((f"broker {i} stderr tail ({b.stderr})", b.stderr_tail()))
        for c in getattr(item, "_sluice_clusters", []):
            report.sections.append((f"etcd log tail ({c.etcd.log})", c.etcd.tail()))
        for s in getattr(item, "_sluice_s3", []):
            report.sections.append((f"{s.name} log tail ({s.log})", s.tail()))


@pytest.fixture
def broker_factory(request, tmp_path_factory):
    """broker_factory(overrides={...}, start=True, env={...}) -> Broker. All are torn down after."""
    brokers: list[Broker] = []
    request.node._sluice_brokers = brokers

    def make(overrides: dict[str, object] | None = None, start: bool = True,
             env: dict[str, str] | None = None) -> Broker:
        workdir = Path(tempfile.mkdtemp(prefix="sluice-", dir=tmp_path_factory.getbasetemp()))
        b = Broker(workdir, overrides, env=env)
        brokers.append(b)
        if start:
            b.start()
        return b

    yield make

    # Let the test's client handles go while their broker is still up, so that they do not
    # log connection failures into the next test's output.
    gc.collect()
    errors = []
    for b in brokers:
        try:
            b.stop()
        except BrokerError as e:
            errors.append(str(e))
    failed = getattr(request.node, "_sluice_failed", False)
    if not failed and not errors and not os.environ.get("SLUICE_KEEP_LOGS"):
        for b in brokers:
            shutil.rmtree(b.workdir, ignore_errors=True)
    if errors:
        pytest.fail("\n".join(errors))


@pytest.fixture
def broker(broker_factory) -> Broker:
    return broker_factory()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    outcome = yield
    if outcome.excinfo is not None:
        item._sluice_failed = True


@pytest.fixture
def cluster_factory(request, tmp_path_factory):
    """cluster_factory(brokers=3, overrides={...}) -> a started Cluster (tests/python/cluster.py):
    etcd and brokers 1..n on loopback ports. All are stopped after the test."""
    from cluster import new_cluster

    clusters = []

    def make(brokers: int = 3, overrides: dict[str, object] | None = None, start: bool = True):
        c = new_cluster(tmp_path_factory.getbasetemp(), brokers, overrides)
        clusters.append(c)
        request.node._sluice_brokers = [b for c in clusters for b in c.brokers.values()]
        request.node._sluice_clusters = clusters
        if start:
            c.start()
        return c

    yield make

    gc.collect()
    errors = []
    for c in clusters:
        errors += c.stop()
    failed = getattr(request.node, "_sluice_failed", False)
    if not failed and not errors and not os.environ.get("SLUICE_KEEP_LOGS"):
        for c in clusters:
            shutil.rmtree(c.workdir, ignore_errors=True)
    if errors:
        pytest.fail("\n".join(errors))


def _s3_server(request, tmp_path_factory, kind: str):
    """A started S3-compatible store (tests/python/s3.py), killed after the test."""
    from s3 import MotoS3, SeaweedFs

    cls = {"seaweedfs": SeaweedFs, "moto": MotoS3}[kind]
    server = cls(Path(tempfile.mkdtemp(prefix=f"sluice-{kind}-", dir=tmp_path_factory.getbasetemp())))
    if not hasattr(request.node, "_sluice_s3"):
        request.node._sluice_s3 = []
    request.node._sluice_s3.append(server)
    try:
        server.start()
        yield server
    finally:
        # killed, not stopped: what it holds goes with the workdir
        server.kill()
    failed = getattr(request.node, "_sluice_failed", False)
    if not failed and not os.environ.get("SLUICE_KEEP_LOGS"):
        shutil.rmtree(server.workdir, ignore_errors=True)


@pytest.fixture(params=["seaweedfs", "moto"])
def s3_store(request, tmp_path_factory):
    """Each S3-compatible store in turn, started with its bucket (`s3.S3Server`)."""
    yield from _s3_server(request, tmp_path_factory, request.param)


@pytest.fixture
def seaweedfs(request, tmp_path_factory):
    """SeaweedFS: checks credentials, keeps its data across a restart."""
    yield from _s3_server(request, tmp_path_factory, "seaweedfs")


@pytest.fixture
def moto_s3(request, tmp_path_factory):
    """moto's server: any credentials, state in memory only."""
    yield from _s3_server(request, tmp_path_factory, "moto")
