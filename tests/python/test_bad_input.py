"""Bad input on raw sockets, hand-encoded with struct (tests/python/wire.py): oversized and
negative frames, unknown API keys, unsupported versions, corrupted record batches, too
many connections from one address, and idle or trickling connections."""

from __future__ import annotations

import struct
import time

import pytest

import wire
from e2e import consume_exact, create_topic, produce_and_report, producer, unique_topic, wait_for

REQUIRED_APIS = {
    0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 18: "ApiVersions",
    19: "CreateTopics", 20: "DeleteTopics", 22: "InitProducerId", 60: "DescribeCluster",
}


def serves(b) -> None:
    """The broker answers ApiVersions on a fresh connection."""
    apis = wire.api_versions(b.host, b.port, 0)
    assert 18 in apis


def test_api_versions_v0_and_v3_list_supported_apis(broker):
    for version in (0, 1, 2, 3):
        with wire.Conn(broker.host, broker.port) as c:
            err, apis, trailing = wire.parse_api_versions(
                version, c.request(wire.api_versions_request(version, 100 + version)), 100 + version)
        assert err == 0
        assert trailing == 0, f"v{version}: {trailing} trailing bytes"
        missing = {k: n for k, n in REQUIRED_APIS.items() if k not in apis}
        assert missing == {}, f"v{version}: not advertised: {missing}"
        for k, (lo, hi) in apis.items():
            assert 0 <= lo <= hi, (k, lo, hi)
        assert apis[18][0] == 0 and apis[18][1] >= 3


def test_unsupported_api_versions_version_gets_error_35_in_v0_format(broker):
    with wire.Conn(broker.host, broker.port) as c:
        payload = c.request(wire.api_versions_request(99, 4242))
        err, apis, trailing = wire.parse_api_versions(0, payload, 4242)
        assert err == 35, f"error_code {err}, expected 35 (UNSUPPORTED_VERSION)"
        assert trailing == 0, f"{trailing} bytes after the v0-format api list: not v0 format"
        assert len(payload) == 4 + 2 + 4 + 6 * len(apis)
        assert 18 in apis and apis[18][0] == 0 and apis[18][1] >= 3, apis
        # the connection stays usable: the client retries with a version it supports
        err, apis, trailing = wire.parse_api_versions(3, c.request(wire.api_versions_request(3, 4243)), 4243)
        assert (err, trailing) == (0, 0) and 18 in apis
    serves(broker)


def test_oversized_frame_closes_connection(broker_factory):
    b = broker_factory(overrides={"socket.request.max.bytes": 65536, "message.max.bytes": 32768})
    with wire.Conn(b.host, b.port) as good:
        assert 18 in wire.parse_api_versions(0, good.request(wire.api_versions_request(0, 1)), 1)[1]
        with wire.Conn(b.host, b.port) as bad:
            # claims one byte more than allowed; only the prefix and a few bytes are sent
            bad.send(struct.pack(">i", 65537) + b"\x00" * 16)
            assert bad.closed_by_peer(10), "connection with an oversized frame was not closed"
        with wire.Conn(b.host, b.port) as bad:
            bad.send(struct.pack(">i", 0x7FFFFFFF))
            assert bad.closed_by_peer(10), "connection claiming a 2 GiB frame was not closed"
        # an open connection and a new one are unaffected
        assert 18 in wire.parse_api_versions(0, good.request(wire.api_versions_request(0, 2)), 2)[1]
    serves(b)


def test_negative_frame_size_closes_connection(broker):
    with wire.Conn(broker.host, broker.port) as bad:
        bad.send(struct.pack(">i", -5))
        assert bad.closed_by_peer(10)
    serves(broker)


def test_unknown_api_key_closes_connection_only(broker):
    with wire.Conn(broker.host, broker.port) as good:
        assert 18 in wire.parse_api_versions(0, good.request(wire.api_versions_request(0, 1)), 1)[1]
        with wire.Conn(broker.host, broker.port) as bad:
            bad.send(wire.frame(wire.header_v1(1000, 0, 77) + b"\x00\x00\x00\x00"))
            assert bad.closed_by_peer(10), "connection with an unknown api key was not closed"
        with wire.Conn(broker.host, broker.port) as bad:
            bad.send(wire.frame(wire.header_v1(-1, 0, 78)))
            assert bad.closed_by_peer(10), "connection with api key -1 was not closed"
        assert 18 in wire.parse_api_versions(0, good.request(wire.api_versions_request(0, 3)), 3)[1]
    serves(broker)


def produce_version(b) -> int:
    lo, hi = wire.api_versions(b.host, b.port, 0)[0]
    for v in (7, 8, 6, 5, 4, 3):
        if lo <= v <= hi:
            return v
    pytest.fail(f"broker advertises Produce {lo}..{hi}, none of v3..v8")


def test_corrupt_crc_gets_corrupt_message(broker):
    topic = unique_topic("raw-crc")
    create_topic(broker.bootstrap, topic, 1)
    v = produce_version(broker)
    ts = int(time.time() * 1000)
    good1 = wire.record_batch([(b"k1", b"first good batch")], ts)
    bad = bytearray(wire.record_batch([(b"k2", b"corrupted batch!")], ts))
    bad[-5] ^= 0xFF  # flip a byte of the value: the CRC no longer matches
    good2 = wire.record_batch([(b"k3", b"second good"), (b"k4", b"batch")], ts)

    with wire.Conn(broker.host, broker.port) as c:
        results = []
        for i, batch in enumerate((good1, bytes(bad), good2)):
            corr, res = wire.parse_produce_response(
                v, c.request(wire.produce_request(v, 10 + i, topic, 0, batch, acks=1)))
            assert corr == 10 + i
            results.append(res)
    assert results[0] == [(topic, 0, 0, 0)]
    assert [(t, p, e) for t, p, e, _ in results[1]] == [(topic, 0, 2)], \
        f"corrupted batch: {results[1]}, expected error 2 (CORRUPT_MESSAGE)"
    assert results[2] == [(topic, 0, 0, 1)], "the corrupted batch must not take an offset"

    got = consume_exact(broker.bootstrap, topic, {0: 3})
    assert [(r.offset, r.key, r.value) for r in got[0]] == \
        [(0, b"k1", b"first good batch"), (1, b"k3", b"second good"), (2, b"k4", b"batch")]
    serves(broker)


def test_corrupt_crc_with_acks_all(broker):
    topic = unique_topic("raw-crc-all")
    create_topic(broker.bootstrap, topic, 1)
    v = produce_version(broker)
    bad = bytearray(wire.record_batch([(None, b"x" * 100)], int(time.time() * 1000)))
    bad[18] ^= 0x01  # inside the CRC field itself (bytes 17..20)
    with wire.Conn(broker.host, broker.port) as c:
        _, res = wire.parse_produce_response(v, c.request(wire.produce_request(v, 1, topic, 0, bytes(bad), acks=-1)))
    assert [(t, p, e) for t, p, e, _ in res] == [(topic, 0, 2)]


def test_connections_per_ip_are_bounded(broker_factory):
    """max.connections.per.ip=5: five connections are served, a sixth from the same
    address is closed at once; when one goes, a new one is served again."""
    b = broker_factory(overrides={"max.connections.per.ip": 5})

    def open_served() -> wire.Conn:
        """A connection that got an answer; the start-up probe's slot may take a moment
        to come back."""
        got: list[wire.Conn] = []

        def attempt() -> bool:
            c = wire.Conn(b.host, b.port)
            try:
                c.request(wire.api_versions_request(0, 1))
                got.append(c)
                return True
            except ConnectionError:
                c.close()
                return False
        wait_for(attempt, 10, "a connection to be served")
        return got[0]
    conns = [open_served() for _ in range(5)]
    try:
        with wire.Conn(b.host, b.port) as extra:
            assert extra.closed_by_peer(10)
        conns.pop().close()

        def served() -> bool:
            try:
                with wire.Conn(b.host, b.port) as c:
                    return 18 in wire.parse_api_versions(0, c.request(wire.api_versions_request(0, 2)), 2)[1]
            except ConnectionError:
                return False
        wait_for(served, 10, "a freed slot to serve a new connection")
    finally:
        for c in conns:
            c.close()


def test_a_thousand_idle_connections_and_a_trickling_one_are_closed(broker_factory):
    """connections.max.idle.ms=3000: a thousand connections that never send a request,
    and one that sends a frame one byte at a time, are closed by the broker; meanwhile a
    confluent-kafka client produces and reads back exactly what it wrote."""
    b = broker_factory(overrides={"connections.max.idle.ms": 3000})
    idle = [wire.Conn(b.host, b.port, timeout=30) for _ in range(1000)]
    trickle = wire.Conn(b.host, b.port, timeout=30)
    try:
        topic = unique_topic("idle")
        create_topic(b.bootstrap, topic, 1)
        p = producer(b.bootstrap)
        items = [(topic, None, f"v{i}".encode(), None, 0) for i in range(100)]
        assert [(e, off) for e, _, off in produce_and_report(p, items)] == [(None, i) for i in range(100)]
        got = consume_exact(b.bootstrap, topic, {0: 100})[0]
        assert [r.value for r in got] == [f"v{i}".encode() for i in range(100)]

        request = wire.frame(wire.api_versions_request(0, 9))
        started = time.monotonic()
        closed = False
        for byte in request[:-1]:
            try:
                trickle.send(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.4)  # the trickle's own pace: one byte per 0.4 s
            if time.monotonic() - started > 8:
                break
        assert closed or trickle.closed_by_peer(5), "a trickling client outlived connections.max.idle.ms"
        for c in idle:
            assert c.closed_by_peer(10)
    finally:
        for c in idle:
            c.close()
        trickle.close()
    serves(b)


def test_huge_array_counts_are_refused(broker):
    """Requests a few bytes long that declare two billion array elements (Metadata v0's
    topics, a flexible Metadata v9's compact array, CreateTopics v2's topics) close their
    own connection instead of making the broker allocate for them; the broker serves on
    and keeps its data."""
    topic = unique_topic("huge")
    create_topic(broker.bootstrap, topic, 1)
    before = wire.api_versions(broker.host, broker.port, 0)
    requests = [
        wire.header_v1(3, 0, 1) + struct.pack(">i", 0x7FFFFFFF) + b"\x00" * 8,
        wire.header_v2(3, 9, 2) + wire.uvarint(0xFFFFFFFF) + b"\x00" * 8,
        wire.header_v1(19, 2, 3) + struct.pack(">i", 0x7FFFFFFF) + b"\x00" * 16,
    ]
    for payload in requests:
        with wire.Conn(broker.host, broker.port) as bad:
            bad.send(wire.frame(payload))
            assert bad.closed_by_peer(10)
        assert broker.running(), "the broker died on a request declaring a huge array"
        assert wire.api_versions(broker.host, broker.port, 0) == before
    p = producer(broker.bootstrap)
    assert [e for e, _, _ in produce_and_report(p, [(topic, None, b"still here", None, 0)])] == [None]
    assert [r.value for r in consume_exact(broker.bootstrap, topic, {0: 1})[0]] == [b"still here"]


def test_a_decompression_bomb_is_refused(broker_factory):
    """A gzip batch of a few hundred kilobytes that inflates past 256 MiB, produced to a
    compacted topic (whose records the broker decodes to check their keys), gets
    INVALID_RECORD; the broker stays up and takes the next, honest batch."""
    import gzip

    from confluent_kafka.admin import AdminClient, NewTopic
    b = broker_factory()
    topic = unique_topic("bomb")
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    a.create_topics([NewTopic(topic, 1, 1, config={"cleanup.policy": "compact"})])[topic].result(30)

    value = bytes(270 * 1024 * 1024)
    rec = struct.pack(">b", 0) + wire.varint(0) + wire.varint(0) + wire.varbytes(b"k") + wire.varbytes(value) \
        + wire.varint(0)
    records = gzip.compress(wire.varint(len(rec)) + rec, compresslevel=9)
    del value, rec
    ts = int(time.time() * 1000)
    after_crc = struct.pack(">hiqqqhii", 1, 0, ts, ts, -1, -1, -1, 1) + records  # attributes 1: gzip
    after_len = struct.pack(">ibI", 0, 2, wire.crc32c(after_crc)) + after_crc
    batch = struct.pack(">qi", 0, len(after_len)) + after_len
    assert len(batch) < 1024 * 1024
    v = produce_version(b)
    with wire.Conn(b.host, b.port, timeout=60) as c:
        payload = c.request(wire.produce_request(v, 11, topic, 0, batch))
    _, [(_, _, err, _)] = wire.parse_produce_response(v, payload)
    assert err == 87, f"error {err}, expected 87 (INVALID_RECORD)"
    assert b.running()
    p = producer(b.bootstrap)
    reports = produce_and_report(p, [(topic, b"k", b"honest", None, 0)])
    assert [(e, off) for e, _, off in reports] == [(None, 0)]
