"""Certificates made with `openssl` for the TLS and SASL_SSL suites: two CAs, server and
client certificates from each (and an X.509 v1 client certificate), and key stores laid out as Kafka's PEM key store wants
them (the key, then the certificate chain)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


def openssl(*args: str, cwd: Path) -> None:
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode(errors="replace")


def make_ca(d: Path, name: str) -> None:
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem",
            "-days", "2", "-subj", f"/CN={name}", cwd=d)


def make_cert(d: Path, name: str, ca: str, subject: str, ext: str | None) -> None:
    """`subject` lists the names most general first, as certificates encode them; Java (and
    so the principal) writes them the other way round: CN=...,OU=...,O=... Without `ext`,
    openssl makes an X.509 v1 certificate."""
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
            "-subj", subject, cwd=d)
    extfile = []
    if ext is not None:
        (d / f"{name}.ext").write_text(ext)
        extfile = ["-extfile", f"{name}.ext"]
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "2", *extfile, cwd=d)


SERVER_EXT = "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
CLIENT_EXT = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    """Two CAs; a server certificate, a client certificate and an X.509 v1 client
    certificate from the first, a server and a client certificate from the second; key stores as Kafka's PEM key store wants them
    (key, then certificate chain), one with an encrypted PKCS#8 key."""
    d = tmp_path_factory.mktemp("pki")
    make_ca(d, "ca")
    make_ca(d, "other-ca")
    make_cert(d, "server", "ca", "/O=Sluice/CN=localhost", SERVER_EXT)
    make_cert(d, "server2", "other-ca", "/O=Sluice/CN=localhost", SERVER_EXT)
    make_cert(d, "alice", "ca", "/O=Sluice/OU=ServiceUsers/CN=alice", CLIENT_EXT)
    make_cert(d, "mallory", "other-ca", "/O=Sluice/OU=ServiceUsers/CN=mallory", CLIENT_EXT)
    make_cert(d, "v1-client", "ca", "/O=Sluice/CN=v1-client", None)
    for name in ("server", "server2"):
        (d / f"{name}-keystore.pem").write_text((d / f"{name}.key").read_text() + (d / f"{name}.pem").read_text())
    openssl("pkcs8", "-topk8", "-in", "server.key", "-out", "server-enc.key", "-passout", "pass:s3cret", cwd=d)
    (d / "server-enc-keystore.pem").write_text((d / "server-enc.key").read_text() + (d / "server.pem").read_text())
    return d
