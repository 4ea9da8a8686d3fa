"""SASL on SASL_PLAINTEXT and SASL_SSL listeners, with real clients: confluent-kafka and
kcat authenticate with PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER (JWTs signed by
a key in a JWKS file); wrong passwords, unknown users, expired tokens and tokens from
another issuer are refused with Kafka's error and message; SCRAM users are made by
`sluice scram` before start-up and by AlterUserScramCredentials at run time, and persist;
sessions expire and are renewed on the live connection (KIP-368)."""

from __future__ import annotations

import base64
import json
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import (AdminClient, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialDeletion, UserScramCredentialUpsertion)

from conftest import free_port, start_up_error
from e2e import consume_exact, produce_and_report, producer, roundtrip, unique_topic, wait_for
from pki import openssl, pki  # noqa: F401  (pki is a fixture)

PLAIN_JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
              'username="admin" password="admin-secret" '
              'user_admin="admin-secret" user_alice="alice-secret";')


# -- JWTs signed with openssl ---------------------------------------------------------

def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Issuer:
    """An RSA key pair, its JWKS, and RS256 tokens signed with `openssl dgst`."""

    def __init__(self, d: Path, kid: str):
        self.d, self.kid = d, kid
        self.key = d / f"{kid}.key"
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", self.key.name, cwd=d)
        modulus = subprocess.run(["openssl", "rsa", "-in", str(self.key), "-noout", "-modulus"],
                                 capture_output=True, check=True).stdout.decode().strip().split("=", 1)[1]
        self.jwk = {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
                    "n": b64url(bytes.fromhex(modulus)), "e": b64url((65537).to_bytes(3, "big"))}

    def token(self, sub: str = "alice", lifetime: float = 3600, **claims) -> str:
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        body = {"sub": sub, "iat": now, "exp": now + int(lifetime), "iss": "https://idp.test", "aud": "kafka",
                **claims}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(body).encode())}"
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)], input=signing_input.encode(),
                             capture_output=True, check=True).stdout
        return f"{signing_input}.{b64url(sig)}"


@pytest.fixture(scope="module")
def issuers(tmp_path_factory):
    d = tmp_path_factory.mktemp("jwks")
    good, other = Issuer(d, "idp-1"), Issuer(d, "rogue")
    (d / "jwks.json").write_text(json.dumps({"keys": [good.jwk]}))
    return d / "jwks.json", good, other


# -- the broker -------------------------------------------------------------------------

def sasl_broker(broker_factory, pki: Path, jwks: Path, scram_users=(), start=True, **extra):
    """PLAINTEXT (the fixture's port), SASL_PLAINTEXT and SASL_SSL listeners offering every
    mechanism; SCRAM users are set with `sluice scram` before the broker starts."""
    b = broker_factory(start=False, env={"RUST_LOG": "info,sluice_broker::api::sasl=debug"})
    sasl_port, sasl_ssl_port = free_port(), free_port()
    listeners = (f"PLAINTEXT://127.0.0.1:{b.port},SASL_PLAINTEXT://127.0.0.1:{sasl_port},"
                 f"SASL_SSL://127.0.0.1:{sasl_ssl_port}")
    b.overrides.update({
        "listeners": listeners,
        "advertised.listeners": listeners,
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": PLAIN_JAAS,
        "listener.name.sasl_ssl.plain.sasl.jaas.config": PLAIN_JAAS,
        "listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class":
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
        "listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class":
            "org.apache.kafka.common.security.oauthbearer.internals.unsecured."
            "OAuthBearerUnsecuredValidatorCallbackHandler",
        "sasl.oauthbearer.jwks.endpoint.url": f"file://{jwks}",
        "sasl.oauthbearer.expected.audience": "kafka",
        "sasl.oauthbearer.expected.issuer": "https://idp.test",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(pki / "server-keystore.pem"),
    })
    b.overrides.update({k: str(v) for k, v in extra.items()})
    for user, mechanism, password in scram_users:
        r = subprocess.run([*b.argv(), "scram", "set", "--user", user, "--mechanism", mechanism],
                           input=f"{password}\n".encode(), capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr.decode(errors="replace")
    if start:
        b.start()
    b.sasl_bootstrap = f"127.0.0.1:{sasl_port}"
    b.sasl_ssl_bootstrap = f"127.0.0.1:{sasl_ssl_port}"
    return b


def sasl_conf(pki: Path, mechanism: str, user: str | None = None, password: str | None = None,
              ssl: bool = True) -> dict:
    conf = {"security.protocol": "SASL_SSL" if ssl else "SASL_PLAINTEXT", "sasl.mechanism": mechanism}
    if ssl:
        conf["ssl.ca.location"] = str(pki / "ca.pem")
    if user is not None:
        conf["sasl.username"] = user
        conf["sasl.password"] = password
    return conf


def kcat_args(conf: dict) -> list[str]:
    out = []
    for k, v in conf.items():
        out += ["-X", f"{k}={v}"]
    return out


def kcat_roundtrip(bootstrap: str, conf: dict, n: int = 200) -> None:
    topic = unique_topic("sasl-kcat")
    lines = "".join(f"key{i}:value{i}\n" for i in range(n))
    r = subprocess.run(["kcat", "-P", "-b", bootstrap, *kcat_args(conf), "-t", topic, "-p", "0", "-K:"],
                       input=lines.encode(), capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["kcat", "-C", "-b", bootstrap, *kcat_args(conf), "-t", topic, "-p", "0", "-o", "beginning",
                        "-e", "-q", "-f", "%o %k %s\n"], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode() == "".join(f"{i} key{i} value{i}\n" for i in range(n))


def auth_error(bootstrap: str, conf: dict) -> str:
    """The first error a client with `conf` reports (it connects as soon as it is made);
    fails if none comes."""
    errors: list[str] = []
    p = Producer({"bootstrap.servers": bootstrap, "error_cb": lambda e: errors.append(str(e)), **conf})

    def reported() -> bool:
        p.poll(0.1)
        return bool(errors)
    wait_for(reported, 15, "the client to report an error")
    return " | ".join(errors)


SCRAM_USERS = [("bob", "SCRAM-SHA-256", "bob-secret"), ("bob", "SCRAM-SHA-512", "bob-secret-512")]


# -- tests ------------------------------------------------------------------------------

def test_every_mechanism_with_confluent_kafka_and_kcat(broker_factory, pki, issuers):
    """PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 over SASL_SSL and SASL_PLAINTEXT, and
    OAUTHBEARER over SASL_SSL: exact produce and consume with confluent-kafka and kcat;
    the broker logs each principal."""
    jwks, idp, _ = issuers
    b = sasl_broker(broker_factory, pki, jwks, scram_users=SCRAM_USERS)
    for conf in (sasl_conf(pki, "PLAIN", "alice", "alice-secret"),
                 sasl_conf(pki, "SCRAM-SHA-256", "bob", "bob-secret"),
                 sasl_conf(pki, "SCRAM-SHA-512", "bob", "bob-secret-512")):
        roundtrip(b.sasl_ssl_bootstrap, conf)
        kcat_roundtrip(b.sasl_ssl_bootstrap, conf)
    roundtrip(b.sasl_bootstrap, sasl_conf(pki, "PLAIN", "admin", "admin-secret", ssl=False))
    kcat_roundtrip(b.sasl_bootstrap, sasl_conf(pki, "SCRAM-SHA-512", "bob", "bob-secret-512", ssl=False))

    token = idp.token("carol")
    roundtrip(b.sasl_ssl_bootstrap, {**sasl_conf(pki, "OAUTHBEARER"),
                                     "oauth_cb": lambda _cfg: (token, time.time() + 3600)})
    log = b.stderr.read_text()
    for principal in ("User:alice", "User:bob", "User:admin", "User:carol"):
        assert f"principal={principal}" in log, principal


def test_wrong_credentials_are_refused(broker_factory, pki, issuers):
    """A wrong password and an unknown user, for PLAIN and each SCRAM mechanism, are
    refused with SASL_AUTHENTICATION_FAILED and Kafka's message; the log names the user
    but never the password; well-behaved clients are served throughout."""
    jwks, _, _ = issuers
    b = sasl_broker(broker_factory, pki, jwks, scram_users=SCRAM_USERS)
    cases = [
        ("PLAIN", "alice", "not-alice-secret", "Invalid username or password"),
        ("PLAIN", "nobody", "alice-secret", "Invalid username or password"),
        ("SCRAM-SHA-256", "bob", "guess-256", "invalid credentials with SASL mechanism SCRAM-SHA-256"),
        ("SCRAM-SHA-256", "nobody", "guess-256", "invalid credentials with SASL mechanism SCRAM-SHA-256"),
        ("SCRAM-SHA-512", "bob", "bob-secret", "invalid credentials with SASL mechanism SCRAM-SHA-512"),
    ]
    for mechanism, user, password, message in cases:
        err = auth_error(b.sasl_ssl_bootstrap, sasl_conf(pki, mechanism, user, password))
        assert "Authentication failed" in err and message in err, (mechanism, user, err)
    roundtrip(b.sasl_ssl_bootstrap, sasl_conf(pki, "PLAIN", "alice", "alice-secret"), n=10)
    # kcat with a wrong password exits with an error instead of producing
    r = subprocess.run(["kcat", "-L", "-b", b.sasl_ssl_bootstrap,
                        *kcat_args(sasl_conf(pki, "SCRAM-SHA-256", "bob", "wrong")), "-m", "5"],
                       capture_output=True, timeout=60)
    assert r.returncode != 0
    assert b"Authentication failed" in r.stderr, r.stderr
    # a plaintext client on the SASL listener is closed before any request is served
    err = auth_error(b.sasl_bootstrap, {})
    assert err, "a client that does not authenticate must not be served"
    # the harness's own start line carries the JAAS config; the broker's lines must not
    log = "\n".join(line for line in b.stderr.read_text().splitlines() if not line.startswith("====="))
    assert "SASL authentication failed" in log and "user=\"nobody\"" in log
    for secret in ("not-alice-secret", "guess-256", "bob-secret", "alice-secret"):
        assert secret not in log, f"{secret} was logged"


def test_scram_credentials_are_managed_by_the_admin_api_and_persist(broker_factory, pki, issuers):
    """AlterUserScramCredentials (confluent-kafka's AdminClient) creates a SCRAM-SHA-512
    user that can then authenticate; DescribeUserScramCredentials reports mechanisms and
    iterations; too few iterations and deleting a missing credential get Kafka's errors;
    a deleted user is refused; users survive a restart."""
    jwks, _, _ = issuers
    b = sasl_broker(broker_factory, pki, jwks, scram_users=SCRAM_USERS)
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    futures = a.alter_user_scram_credentials([
        UserScramCredentialUpsertion("carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192),
                                     b"carol-secret"),
        UserScramCredentialUpsertion("dave", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 1000),
                                     b"dave-secret"),
        UserScramCredentialDeletion("erin", ScramMechanism.SCRAM_SHA_256),
    ])
    futures["carol"].result(10)
    with pytest.raises(KafkaException) as e:
        futures["dave"].result(10)
    assert e.value.args[0].name() == "UNACCEPTABLE_CREDENTIAL"
    with pytest.raises(KafkaException) as e:
        futures["erin"].result(10)
    assert e.value.args[0].name() == "RESOURCE_NOT_FOUND"

    described = a.describe_user_scram_credentials().result(10)
    got = {user: sorted((str(i.mechanism), i.iterations) for i in d.scram_credential_infos)
           for user, d in described.items()}
    assert got == {"bob": [("ScramMechanism.SCRAM_SHA_256", 4096), ("ScramMechanism.SCRAM_SHA_512", 4096)],
                   "carol": [("ScramMechanism.SCRAM_SHA_512", 8192)]}
    roundtrip(b.sasl_ssl_bootstrap, sasl_conf(pki, "SCRAM-SHA-512", "carol", "carol-secret"), n=10)

    b.restart()
    roundtrip(b.sasl_ssl_bootstrap, sasl_conf(pki, "SCRAM-SHA-512", "carol", "carol-secret"), n=10)
    kcat_roundtrip(b.sasl_ssl_bootstrap, sasl_conf(pki, "SCRAM-SHA-256", "bob", "bob-secret"), n=10)
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    a.alter_user_scram_credentials([UserScramCredentialDeletion("carol", ScramMechanism.SCRAM_SHA_512)])[
        "carol"].result(10)
    assert "Authentication failed" in auth_error(b.sasl_ssl_bootstrap,
                                                 sasl_conf(pki, "SCRAM-SHA-512", "carol", "carol-secret"))
    with pytest.raises(KafkaException) as e:
        a.describe_user_scram_credentials(["carol"])["carol"].result(10)
    assert e.value.args[0].name() == "RESOURCE_NOT_FOUND"

    # the offline command refuses a data directory its broker holds
    r = subprocess.run([*b.argv(), "scram", "list"], capture_output=True, timeout=60)
    assert r.returncode != 0 and b"AlterUserScramCredentials" in r.stderr, r.stderr


def test_oauthbearer_tokens_are_validated(broker_factory, pki, issuers):
    """A token signed by the issuer's key is accepted (confluent-kafka's oauth_cb); an
    expired token, one signed by a key outside the JWKS, one for another audience and one
    without a subject are refused. kcat's unsigned tokens are taken only by a listener that
    names Kafka's unsecured validator."""
    jwks, idp, rogue = issuers
    b = sasl_broker(broker_factory, pki, jwks)

    def conf(token: str) -> dict:
        return {**sasl_conf(pki, "OAUTHBEARER"), "oauth_cb": lambda _cfg: (token, time.time() + 3600)}

    roundtrip(b.sasl_ssl_bootstrap, conf(idp.token("alice")), n=10)
    refused = {
        "expired": idp.token("alice", lifetime=-120),
        "rogue key": rogue.token("alice"),
        "audience": idp.token("alice", aud="other"),
        "no subject": idp.token(""),
    }
    for why, token in refused.items():
        err = auth_error(b.sasl_ssl_bootstrap, conf(token))
        assert "Authentication failed" in err, (why, err)
    assert "ExpiredSignature" in b.stderr.read_text()

    # Debian's kcat has no OIDC client, so it sends librdkafka's unsigned development
    # tokens: the JWKS listener refuses them, a listener that names Kafka's unsecured
    # validator takes them.
    kcat_conf = {**sasl_conf(pki, "OAUTHBEARER", ssl=False), "enable.sasl.oauthbearer.unsecure.jwt": "true",
                 "sasl.oauthbearer.config": "principal=kcat-user"}
    kcat_roundtrip(b.sasl_bootstrap, kcat_conf, n=20)
    assert "principal=User:kcat-user" in b.stderr.read_text()
    r = subprocess.run(["kcat", "-L", "-b", b.sasl_ssl_bootstrap,
                        *kcat_args({**kcat_conf, "security.protocol": "SASL_SSL",
                                    "ssl.ca.location": str(pki / "ca.pem")}), "-m", "5"],
                       capture_output=True, timeout=60)
    assert r.returncode != 0 and b"Authentication failed" in r.stderr, r.stderr
    # and a signed token is refused by the unsecured listener
    assert "Authentication failed" in auth_error(b.sasl_bootstrap, {**conf(idp.token("alice")),
                                                                      "security.protocol": "SASL_PLAINTEXT"})


# -- KIP-368 re-authentication, seen on the wire ------------------------------------------

def frame(api_key: int, version: int, correlation: int, body: bytes) -> bytes:
    header = struct.pack(">hhih", api_key, version, correlation, 4) + b"test"
    return struct.pack(">i", len(header) + len(body)) + header + body


def read_frame(s: socket.socket) -> bytes:
    def exactly(n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = s.recv(n - len(out))
            if not chunk:
                raise ConnectionError("closed")
            out += chunk
        return out
    (size,) = struct.unpack(">i", exactly(4))
    return exactly(size)


def plain_login(s: socket.socket, user: str, password: str) -> tuple[int, str | None, int]:
    """SaslHandshake v1 and SaslAuthenticate v1 by hand: (error code, message, session lifetime ms)."""
    s.sendall(frame(17, 1, 1, struct.pack(">h", 5) + b"PLAIN"))
    resp = read_frame(s)
    assert struct.unpack(">ih", resp[:6]) == (1, 0), resp
    token = b"\0" + user.encode() + b"\0" + password.encode()
    s.sendall(frame(36, 1, 2, struct.pack(">i", len(token)) + token))
    resp = read_frame(s)[4:]
    (code, mlen) = struct.unpack(">hh", resp[:4])
    message = resp[4:4 + mlen].decode() if mlen >= 0 else None
    rest = resp[4 + max(mlen, 0):]
    (blen,) = struct.unpack(">i", rest[:4])
    (lifetime,) = struct.unpack(">q", rest[4 + blen:12 + blen])
    return code, message, lifetime


METADATA_V1_ALL = struct.pack(">i", -1)


def test_sessions_expire_and_clients_reauthenticate(broker_factory, pki, issuers):
    """connections.max.reauth.ms: SaslAuthenticate answers the session lifetime; a request
    after it ends closes the connection, as does a request before authentication; after
    SaslHandshake v0 bare tokens authenticate (or close the connection); a client
    that re-authenticates on the live connection (librdkafka does, KIP-368) keeps producing
    across several sessions without losing a record."""
    jwks, _, _ = issuers
    b = sasl_broker(broker_factory, pki, jwks, scram_users=SCRAM_USERS,
                    **{"listener.name.sasl_plaintext.connections.max.reauth.ms": 2000})
    host, port = b.sasl_bootstrap.split(":")

    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(frame(3, 1, 9, METADATA_V1_ALL))
        with pytest.raises((ConnectionError, ConnectionResetError)):
            read_frame(s)

    with socket.create_connection((host, int(port)), timeout=10) as s:
        code, message, lifetime = plain_login(s, "alice", "alice-secret")
        assert (code, message, lifetime) == (0, None, 2000)
        s.sendall(frame(3, 1, 3, METADATA_V1_ALL))
        assert struct.unpack(">i", read_frame(s)[:4]) == (3,)
        time.sleep(2.2)  # the session's own lifetime: nothing else ends it
        s.sendall(frame(3, 1, 4, METADATA_V1_ALL))
        with pytest.raises((ConnectionError, ConnectionResetError)):
            read_frame(s)

    # SaslHandshake v0 (which librdkafka needs advertised) is followed by bare tokens
    for password, accepted in (("alice-secret", True), ("wrong", False)):
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(frame(17, 0, 1, struct.pack(">h", 5) + b"PLAIN"))
            assert struct.unpack(">ih", read_frame(s)[:6]) == (1, 0)
            token = b"\0alice\0" + password.encode()
            s.sendall(struct.pack(">i", len(token)) + token)
            if accepted:
                assert read_frame(s) == b""
                s.sendall(frame(3, 1, 5, METADATA_V1_ALL))
                assert struct.unpack(">i", read_frame(s)[:4]) == (5,)
            else:
                with pytest.raises((ConnectionError, ConnectionResetError)):
                    read_frame(s)

    with socket.create_connection((host, int(port)), timeout=10) as s:
        code, message, _ = plain_login(s, "alice", "wrong")
        assert code == 58 and message == "Authentication failed: Invalid username or password"
        with pytest.raises((ConnectionError, ConnectionResetError)):
            read_frame(s)

    topic = unique_topic("reauth")
    conf = sasl_conf(pki, "SCRAM-SHA-256", "bob", "bob-secret", ssl=False)
    p = producer(b.sasl_bootstrap, **conf)
    sent = 0
    deadline = time.monotonic() + 7
    while time.monotonic() < deadline:
        reports = produce_and_report(p, [(topic, None, f"v{sent + i}".encode(), None, 0) for i in range(20)])
        assert [e for e, _, _ in reports] == [None] * 20
        sent += 20
    log = b.stderr.read_text()
    assert log.count("reauthenticated=true") >= 2, "librdkafka re-authenticated at most once in 7 s"
    assert "expired without re-authentication" not in log.split("principal=User:bob", 1)[1]
    got = consume_exact(b.sasl_bootstrap, topic, {0: sent}, **conf)[0]
    assert [r.value for r in got] == [f"v{i}".encode() for i in range(sent)]


def test_plain_users_file_is_read_again_when_it_changes(broker_factory, pki, issuers, tmp_path):
    """plain.sasl.users.file (a JAAS file's KafkaServer section) adds PLAIN users, and a
    user added to the file can log in without a restart."""
    jwks, _, _ = issuers
    users = tmp_path / "kafka_server_jaas.conf"
    users.write_text('KafkaServer {\n  org.apache.kafka.common.security.plain.PlainLoginModule required\n'
                     '  user_frank="frank-secret";\n};\n')
    b = sasl_broker(broker_factory, pki, jwks, **{"plain.sasl.users.file": users})
    roundtrip(b.sasl_ssl_bootstrap, sasl_conf(pki, "PLAIN", "frank", "frank-secret"), n=10)
    roundtrip(b.sasl_ssl_bootstrap, sasl_conf(pki, "PLAIN", "alice", "alice-secret"), n=10)
    grace = sasl_conf(pki, "PLAIN", "grace", "grace-secret")
    assert "Authentication failed" in auth_error(b.sasl_ssl_bootstrap, grace)
    users.write_text(users.read_text().replace('user_frank="frank-secret";',
                                               'user_frank="frank-secret"\n  user_grace="grace-secret";'))

    def grace_served() -> bool:
        try:
            Producer({"bootstrap.servers": b.sasl_ssl_bootstrap, **grace}).list_topics(timeout=3)
            return True
        except KafkaException:
            return False
    wait_for(grace_served, 30, "grace to be accepted after the users file changed")
    roundtrip(b.sasl_ssl_bootstrap, grace, n=10)


@pytest.mark.parametrize("settings,named", [
    ({}, "sasl.enabled.mechanisms"),
    ({"sasl.enabled.mechanisms": "GSSAPI"}, "GSSAPI"),
    ({"sasl.enabled.mechanisms": "PLAIN"}, "plain.sasl.jaas.config"),
    ({"sasl.enabled.mechanisms": "OAUTHBEARER"}, "sasl.oauthbearer.jwks.endpoint.url"),
    ({"sasl.enabled.mechanisms": "OAUTHBEARER", "sasl.oauthbearer.jwks.endpoint.url": "file:///nonexistent/jwks"},
     "/nonexistent/jwks"),
])
def test_bad_sasl_settings_stop_start_up(tmp_path, settings, named):
    """A bad SASL setting stops the broker at start-up with a message naming it."""
    props = {"listeners": f"SASL_PLAINTEXT://127.0.0.1:{free_port()}", "log.dirs": str(tmp_path / "data"),
             **settings}
    err = start_up_error(props)
    assert named in err, err[-2000:]
