"""TLS listeners (rustls) with Kafka's PEM settings: confluent-kafka and kcat over SSL next
to a PLAINTEXT listener, mutual TLS with `ssl.client.auth=required` (a client without a
certificate, with one from another CA or with an X.509 v1 one is refused, the last with
the reason logged), an encrypted key with
`ssl.key.password`, certificates reloaded when the key store file changes, plaintext and
garbage on the TLS port, and start-up errors that name the bad setting."""

from __future__ import annotations

import re
import socket
import subprocess
from pathlib import Path

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import free_port, start_up_error
from e2e import roundtrip, unique_topic, wait_for
from pki import pki  # noqa: F401  (a fixture)


def tls_broker(broker_factory, pki: Path, **extra):
    """A broker with a PLAINTEXT listener (the fixture's port) and an SSL one; it logs each
    TLS connection's principal."""
    b = broker_factory(start=False, env={"RUST_LOG": "info,sluice_broker::server=debug"})
    ssl_port = free_port()
    listeners = f"PLAINTEXT://127.0.0.1:{b.port},SSL://127.0.0.1:{ssl_port}"
    b.overrides.update({
        "listeners": listeners,
        "advertised.listeners": listeners,
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(pki / "server-keystore.pem"),
    })
    b.overrides.update({k: str(v) for k, v in extra.items()})
    b.start()
    b.ssl_bootstrap = f"127.0.0.1:{ssl_port}"
    return b


def ssl_conf(pki: Path, client: str | None = None, ca: str = "ca") -> dict:
    conf = {"security.protocol": "SSL", "ssl.ca.location": str(pki / f"{ca}.pem")}
    if client:
        conf["ssl.certificate.location"] = str(pki / f"{client}.pem")
        conf["ssl.key.location"] = str(pki / f"{client}.key")
    return conf


def refused(bootstrap: str, conf: dict) -> bool:
    """True when a client with `conf` cannot get metadata."""
    a = AdminClient({"bootstrap.servers": bootstrap, **conf})
    try:
        a.list_topics(timeout=4)
        return False
    except KafkaException:
        return True


def test_ssl_listener_next_to_plaintext(broker_factory, pki):
    """confluent-kafka and kcat produce and consume over the SSL listener (Metadata there
    advertises the SSL address, else the consumer's fetches would fail); the PLAINTEXT
    listener keeps serving; a client that does not trust the broker's CA is refused."""
    b = tls_broker(broker_factory, pki)
    roundtrip(b.ssl_bootstrap, ssl_conf(pki))
    roundtrip(b.bootstrap, {})
    assert "principal=User:ANONYMOUS" in b.stderr.read_text()
    md = AdminClient({"bootstrap.servers": b.ssl_bootstrap, **ssl_conf(pki)}).list_topics(timeout=10)
    assert [f"{x.host}:{x.port}" for x in md.brokers.values()] == [b.ssl_bootstrap]
    assert refused(b.ssl_bootstrap, ssl_conf(pki, ca="other-ca"))

    topic = unique_topic("tls-kcat")
    kc = ["-X", "security.protocol=SSL", "-X", f"ssl.ca.location={pki / 'ca.pem'}"]
    lines = "".join(f"key{i}:value{i}\n" for i in range(500))
    r = subprocess.run(["kcat", "-P", "-b", b.ssl_bootstrap, *kc, "-t", topic, "-p", "0", "-K:"],
                       input=lines.encode(), capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["kcat", "-C", "-b", b.ssl_bootstrap, *kc, "-t", topic, "-p", "0", "-o", "beginning",
                        "-e", "-q", "-f", "%o %k %s\n"], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode() == "".join(f"{i} key{i} value{i}\n" for i in range(500))


def test_mutual_tls_required(broker_factory, pki):
    """ssl.client.auth=required: a client with a certificate from the trusted CA produces
    and consumes, as the principal its subject maps to by ssl.principal.mapping.rules
    (User:alice); one without a certificate and one with a certificate from another CA are
    refused at the handshake, and the broker goes on serving."""
    b = tls_broker(broker_factory, pki, **{
        "ssl.client.auth": "required",
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": pki / "ca.pem",
        "ssl.principal.mapping.rules": "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L,DEFAULT",
    })
    roundtrip(b.ssl_bootstrap, ssl_conf(pki, "alice"))
    assert refused(b.ssl_bootstrap, ssl_conf(pki))
    assert refused(b.ssl_bootstrap, ssl_conf(pki, "mallory"))
    roundtrip(b.ssl_bootstrap, ssl_conf(pki, "alice"), n=10)
    log = b.stderr.read_text()
    assert "TLS handshake failed" in log
    assert "principal=User:alice" in log
    assert "principal=User:ANONYMOUS" not in log


def test_x509_v1_client_certificate_refused_with_the_reason_logged(broker_factory, pki):
    """ssl.client.auth=required and a client certificate that openssl made as X.509 v1 (no
    extensions) by the trusted CA: the client is refused (rustls' WebPKI takes only v3, so
    chain validation is not weakened for it) and the broker log says why and how to
    re-issue it; a v3 client is still served."""
    b = tls_broker(broker_factory, pki, **{
        "ssl.client.auth": "required",
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": pki / "ca.pem",
    })
    assert refused(b.ssl_bootstrap, ssl_conf(pki, "v1-client"))
    reason = (r'TLS handshake failed peer=127\.0\.0\.1:\d+ error=invalid peer certificate: .*'
              r'the client certificate "O=Sluice, CN=v1-client" is X\.509 version 1 \(it has no extensions\)'
              r'.*re-issue it as X\.509 v3.*basicConstraints=CA:FALSE.*extendedKeyUsage=clientAuth')
    wait_for(lambda: re.search(reason, b.stderr.read_text()), 10, "the explained refusal in the log")
    roundtrip(b.ssl_bootstrap, ssl_conf(pki, "alice"), n=10)


def test_encrypted_key_and_certificate_reload(broker_factory, pki, tmp_path):
    """A key store with an encrypted PKCS#8 key and ssl.key.password serves TLS; when the
    key store file is replaced by one signed by another CA, new connections get the new
    certificate without a restart."""
    keystore = tmp_path / "keystore.pem"
    keystore.write_text((pki / "server-enc-keystore.pem").read_text())
    b = tls_broker(broker_factory, pki, **{"ssl.keystore.location": keystore, "ssl.key.password": "s3cret"})
    roundtrip(b.ssl_bootstrap, ssl_conf(pki), n=20)
    assert refused(b.ssl_bootstrap, ssl_conf(pki, ca="other-ca"))

    keystore.write_text((pki / "server2-keystore.pem").read_text())
    wait_for(lambda: not refused(b.ssl_bootstrap, ssl_conf(pki, ca="other-ca")), 30,
             "a client trusting the new CA to connect")
    assert refused(b.ssl_bootstrap, ssl_conf(pki))
    roundtrip(b.ssl_bootstrap, ssl_conf(pki, ca="other-ca"), n=20)
    assert re.search(r"reloaded what=listener SSL TLS certificates", b.stderr.read_text())


def test_plaintext_and_garbage_on_the_tls_port(broker_factory, pki):
    """A Kafka request in plaintext and random bytes sent to the SSL port are answered by
    closing the connection; TLS clients are served before and after."""
    b = tls_broker(broker_factory, pki)
    host, port = b.ssl_bootstrap.split(":")
    # ApiVersions v0 in plaintext: size, api key 18, version 0, correlation id 1, client id -1
    api_versions = bytes.fromhex("0000000a" "0012" "0000" "00000001" "ffff")
    for payload in (api_versions, bytes(range(256)) * 8):
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(payload)
            s.settimeout(10)
            data = b""
            try:
                while chunk := s.recv(4096):
                    data += chunk
            except ConnectionResetError:
                pass
            # at most a TLS alert record (content type 21), never a Kafka response
            assert data == b"" or data[0] == 21, data[:16]
    roundtrip(b.ssl_bootstrap, ssl_conf(pki), n=10)


@pytest.mark.parametrize("setting,value,named", [
    ("ssl.keystore.type", "JKS", "ssl.keystore.type"),
    ("ssl.key.password", "wrong", "ssl.key.password"),
    ("ssl.client.auth", "required", "ssl.truststore.location"),
    ("ssl.keystore.location", "/nonexistent/keystore.pem", "/nonexistent/keystore.pem"),
])
def test_bad_tls_settings_stop_start_up(tmp_path, pki, setting, value, named):
    """A bad TLS setting stops the broker at start-up with a message naming it."""
    props = {
        "listeners": f"SSL://127.0.0.1:{free_port()}",
        "log.dirs": str(tmp_path / "data"),
        "ssl.keystore.location": str(pki / "server-enc-keystore.pem" if setting == "ssl.key.password"
                                     else pki / "server-keystore.pem"),
        setting: value,
    }
    err = start_up_error(props)
    assert named in err, err[-2000:]
