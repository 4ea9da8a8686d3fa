"""A tiny hand-written Kafka wire codec for the raw-socket tests, independent of the
broker's code: frames, request headers, ApiVersions, InitProducerId v0, Produce v3-v8 and record batches v2."""

from __future__ import annotations

import socket
import struct
import time

API_PRODUCE = 0
API_API_VERSIONS = 18
API_INIT_PRODUCER_ID = 22


# --- CRC-32C (Castagnoli), as record batches v2 use --------------------------------------
def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283


# --- primitives ----------------------------------------------------------------------------
def uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def varint(n: int) -> bytes:  # zigzag, as record fields use
    return uvarint((n << 1) ^ (n >> 63))


def string(s: str | None) -> bytes:
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def compact_string(s: str) -> bytes:
    b = s.encode()
    return uvarint(len(b) + 1) + b


def varbytes(b: bytes | None) -> bytes:
    if b is None:
        return varint(-1)
    return varint(len(b)) + b


class Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, fmt: str):
        vals = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return vals if len(vals) > 1 else vals[0]

    def string(self) -> str | None:
        n = self.take(">h")
        if n < 0:
            return None
        s = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return s

    def uvarint(self) -> int:
        shift = result = 0
        while True:
            b = self.data[self.pos]
            self.pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    def compact_string(self) -> str | None:
        n = self.uvarint()
        if n == 0:
            return None
        s = self.data[self.pos:self.pos + n - 1].decode()
        self.pos += n - 1
        return s

    def skip_tagged_fields(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            size = self.uvarint()  # read before `pos +=` so pos is taken after the size
            self.pos += size

    def done(self) -> bool:
        return self.pos == len(self.data)


# --- requests --------------------------------------------------------------------------------
def header_v1(api_key: int, version: int, correlation_id: int, client_id: str | None = "raw-test") -> bytes:
    return struct.pack(">hhi", api_key, version, correlation_id) + string(client_id)


def header_v2(api_key: int, version: int, correlation_id: int, client_id: str | None = "raw-test") -> bytes:
    return header_v1(api_key, version, correlation_id, client_id) + uvarint(0)  # no tagged fields


def frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def api_versions_request(version: int, correlation_id: int) -> bytes:
    if version >= 3:
        body = compact_string("sluice-raw-test") + compact_string("1.0") + uvarint(0)
        return header_v2(API_API_VERSIONS, version, correlation_id) + body
    return header_v1(API_API_VERSIONS, version, correlation_id)


def record_batch(records: list[tuple[bytes | None, bytes | None]], base_timestamp: int,
                 timestamps: list[int] | None = None, producer_id: int = -1,
                 producer_epoch: int = -1, base_sequence: int = -1, transactional: bool = False) -> bytes:
    """One uncompressed magic-v2 batch at base offset 0, no producer id unless given;
    each record at `base_timestamp` or at its own entry of `timestamps`."""
    stamps = timestamps or [base_timestamp] * len(records)
    body = bytearray()
    for i, (key, value) in enumerate(records):
        rec = (struct.pack(">b", 0) + varint(stamps[i] - base_timestamp) + varint(i) + varbytes(key)
               + varbytes(value) + varint(0))
        body += varint(len(rec)) + rec
    n = len(records)
    attributes = 0x10 if transactional else 0
    after_crc = struct.pack(">hiqqqhii", attributes, n - 1, base_timestamp, max(stamps),
                            producer_id, producer_epoch, base_sequence, n) + bytes(body)
    after_len = struct.pack(">ibI", 0, 2, crc32c(after_crc)) + after_crc
    return struct.pack(">qi", 0, len(after_len)) + after_len


def produce_request(version: int, correlation_id: int, topic: str, partition: int, records: bytes,
                    acks: int = 1, timeout_ms: int = 10000) -> bytes:
    return produce_request_to(version, correlation_id, topic, {partition: records}, acks, timeout_ms)


def produce_request_to(version: int, correlation_id: int, topic: str, batches: dict[int, bytes],
                       acks: int = 1, timeout_ms: int = 10000) -> bytes:
    """One Produce request with a batch for each of several partitions of one topic."""
    assert 3 <= version <= 8, "only the non-flexible versions with v2 batches are encoded here"
    body = (string(None) + struct.pack(">hi", acks, timeout_ms)
            + struct.pack(">i", 1) + string(topic) + struct.pack(">i", len(batches)))
    for partition, records in batches.items():
        body += struct.pack(">ii", partition, len(records)) + records
    return header_v1(API_PRODUCE, version, correlation_id) + body


def init_producer_id_request(correlation_id: int, transaction_timeout_ms: int = 60000) -> bytes:
    """InitProducerId v0 without a transactional id: an idempotent producer's id."""
    return header_v1(API_INIT_PRODUCER_ID, 0, correlation_id) + string(None) + struct.pack(">i", transaction_timeout_ms)


def parse_init_producer_id_response(payload: bytes) -> tuple[int, int, int, int]:
    """-> (correlation_id, error_code, producer_id, producer_epoch)"""
    r = Reader(payload)
    corr, _throttle, err, pid, epoch = r.take(">iihqh")
    assert r.done(), f"{len(payload) - r.pos} trailing bytes in InitProducerId response"
    return corr, err, pid, epoch


def parse_produce_response(version: int, payload: bytes) -> tuple[int, list]:
    """-> (correlation_id, [(topic, partition, error_code, base_offset), ...])"""
    r = Reader(payload)
    corr = r.take(">i")
    out = []
    for _ in range(r.take(">i")):
        name = r.string()
        for _ in range(r.take(">i")):
            idx, err, base = r.take(">ihq")
            r.take(">q")  # log_append_time_ms (v2+)
            if version >= 5:
                r.take(">q")  # log_start_offset
            if version >= 8:
                for _ in range(r.take(">i")):  # record_errors
                    r.take(">i")
                    r.string()
                r.string()  # error_message
            out.append((name, idx, err, base))
    r.take(">i")  # throttle_time_ms
    assert r.done(), f"{len(payload) - r.pos} trailing bytes in produce response"
    return corr, out


def consumer_group_heartbeat_request(correlation_id: int, group: str, member_id: str, epoch: int,
                                     topics: list[str] | None = None,
                                     owned: dict[bytes, list[int]] | None = None,
                                     rebalance_timeout_ms: int = -1) -> bytes:
    """ConsumerGroupHeartbeat v0 (KIP-848); `owned` maps 16-byte topic ids to partitions."""
    body = compact_string(group) + compact_string(member_id) + struct.pack(">i", epoch)
    body += uvarint(0) + uvarint(0)  # instance id, rack id: null
    body += struct.pack(">i", rebalance_timeout_ms)
    if topics is None:
        body += uvarint(0)
    else:
        body += uvarint(len(topics) + 1) + b"".join(compact_string(t) for t in topics)
    body += uvarint(0)  # server assignor: null
    if owned is None:
        body += uvarint(0)
    else:
        body += uvarint(len(owned) + 1)
        for topic_id, partitions in owned.items():
            body += topic_id + uvarint(len(partitions) + 1)
            body += b"".join(struct.pack(">i", p) for p in partitions) + uvarint(0)
    body += uvarint(0)
    return header_v2(68, 0, correlation_id) + body


def parse_consumer_group_heartbeat_response(payload: bytes) -> dict:
    """ConsumerGroupHeartbeat v0's response: error, member id and epoch, and the assignment
    (topic id → partitions) or None when the broker sent none."""
    r = Reader(payload)
    r.take(">i")  # correlation id
    r.skip_tagged_fields()
    r.take(">i")  # throttle time
    out = {"error_code": r.take(">h"), "error_message": r.compact_string(),
           "member_id": r.compact_string(), "member_epoch": r.take(">i"),
           "heartbeat_interval_ms": r.take(">i"), "assignment": None}
    if r.take(">b") >= 0:
        assignment = {}
        for _ in range(r.uvarint() - 1):
            topic_id = r.data[r.pos:r.pos + 16]
            r.pos += 16
            assignment[topic_id] = [r.take(">i") for _ in range(r.uvarint() - 1)]
            r.skip_tagged_fields()
        r.skip_tagged_fields()
        out["assignment"] = assignment
    r.skip_tagged_fields()
    assert r.done(), f"{len(payload) - r.pos} trailing bytes in ConsumerGroupHeartbeat response"
    return out


# --- a connection --------------------------------------------------------------------------
class Conn:
    def __init__(self, host: str, port: int, timeout: float = 15):
        self.sock = socket.create_connection((host, port), timeout=timeout)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _read_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError(f"connection closed after {len(buf)} of {n} bytes")
            buf += chunk
        return bytes(buf)

    def recv_frame(self) -> bytes:
        (size,) = struct.unpack(">i", self._read_exact(4))
        return self._read_exact(size)

    def request(self, payload: bytes) -> bytes:
        self.send(frame(payload))
        return self.recv_frame()

    def closed_by_peer(self, timeout: float = 10) -> bool:
        """True when the peer closes the connection (EOF or reset) within `timeout` s,
        without sending anything first; False when it stays open that long."""
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
        assert data == b"", f"expected the connection to close, got {len(data)} bytes: {data[:64]!r}"
        assert time.monotonic() <= deadline + 1
        return True

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def api_versions(host: str, port: int, version: int = 0) -> dict[int, tuple[int, int]]:
    """A fresh connection's ApiVersions; {api_key: (min, max)}. Fails on a non-zero error."""
    with Conn(host, port) as c:
        return parse_api_versions(version, c.request(api_versions_request(version, 7)), 7)[1]


def parse_api_versions(version: int, payload: bytes, correlation_id: int) -> tuple[int, dict, int]:
    """-> (error_code, {api_key: (min, max)}, trailing byte count) for v0 (and the v0
    fallback format), v1-v2 and v3+ (flexible). The response header is always v0."""
    r = Reader(payload)
    assert r.take(">i") == correlation_id
    err = r.take(">h")
    apis = {}
    if version >= 3:
        n = r.uvarint() - 1
        for _ in range(n):
            k, lo, hi = r.take(">hhh")
            r.skip_tagged_fields()
            apis[k] = (lo, hi)
        r.take(">i")  # throttle
        r.skip_tagged_fields()
    else:
        for _ in range(r.take(">i")):
            k, lo, hi = r.take(">hhh")
            apis[k] = (lo, hi)
        if version >= 1:
            r.take(">i")
    return err, apis, len(payload) - r.pos


# --- kafka-python's generated message classes over a raw connection ---------------------------
def call(conn: Conn, request, version: int, correlation_id: int = 1):
    """Sends `request` (a kafka-python `kafka.protocol` message) at `version` on `conn` and
    decodes the answer with its response class; both ends independent of the broker."""
    import importlib

    module = importlib.import_module(type(request).__module__)
    response_cls = getattr(module, type(request).__name__.removesuffix("Request") + "Response")
    request.with_header(correlation_id=correlation_id, client_id="raw-test")
    conn.send(bytes(request.encode(version=version, header=True, framed=True)))
    response = response_cls.decode(conn.recv_frame(), version=version, header=True)
    assert response.header.correlation_id == correlation_id
    return response


def list_offset(conn: Conn, topic: str, version: int, timestamp: int) -> tuple[int, int, int, int]:
    """A raw ListOffsets of partition 0: (error_code, timestamp, offset, leader_epoch)."""
    from kafka.protocol.consumer import ListOffsetsRequest

    part = ListOffsetsRequest.ListOffsetsTopic.ListOffsetsPartition(partition_index=0, timestamp=timestamp)
    req = ListOffsetsRequest(replica_id=-1, isolation_level=0, timeout_ms=10_000,
                             topics=[ListOffsetsRequest.ListOffsetsTopic(name=topic, partitions=[part])])
    (t,) = call(conn, req, version).topics
    (p,) = t.partitions
    return p.error_code, p.timestamp, p.offset, p.leader_epoch


# --- share groups (KIP-932), flexible v1; kafka-python has no classes for them ---------------
API_SHARE_GROUP_HEARTBEAT = 76
API_SHARE_FETCH = 78
API_SHARE_ACKNOWLEDGE = 79


def compact_nullable_string(s: str | None) -> bytes:
    return uvarint(0) if s is None else compact_string(s)


def compact_array(items: list[bytes]) -> bytes:
    return uvarint(len(items) + 1) + b"".join(items)


def share_group_heartbeat_request(correlation_id: int, group: str, member_id: str, epoch: int,
                                  topics: list[str] | None) -> bytes:
    body = (compact_string(group) + compact_string(member_id) + struct.pack(">i", epoch)
            + compact_nullable_string(None)
            + (uvarint(0) if topics is None else compact_array([compact_string(t) for t in topics]))
            + uvarint(0))
    return header_v2(API_SHARE_GROUP_HEARTBEAT, 1, correlation_id) + body


def parse_share_group_heartbeat_response(payload: bytes) -> dict:
    """-> {error_code, member_id, member_epoch, assignment: {topic_id bytes: [partitions]} or None}"""
    r = Reader(payload)
    r.take(">i")
    r.skip_tagged_fields()
    _throttle, error_code = r.take(">ih")
    r.compact_string()
    member_id = r.compact_string()
    member_epoch, _interval = r.take(">ii")
    assignment = None
    if r.take(">b") >= 0:
        assignment = {}
        for _ in range(r.uvarint() - 1):
            topic_id = r.data[r.pos:r.pos + 16]
            r.pos += 16
            assignment[topic_id] = [r.take(">i") for _ in range(r.uvarint() - 1)]
            r.skip_tagged_fields()
        r.skip_tagged_fields()
    r.skip_tagged_fields()
    assert r.done()
    return {"error_code": error_code, "member_id": member_id, "member_epoch": member_epoch,
            "assignment": assignment}


def _ack_batches(batches: list[tuple[int, int, list[int]]]) -> bytes:
    return compact_array([struct.pack(">qq", first, last)
                          + compact_array([struct.pack(">b", t) for t in types]) + uvarint(0)
                          for first, last, types in batches])


def share_fetch_request(correlation_id: int, group: str, member_id: str, epoch: int, topic_id: bytes,
                        partitions: dict[int, list[tuple[int, int, list[int]]]], max_wait_ms: int = 500,
                        max_records: int = 500) -> bytes:
    """ShareFetch v1 for partitions of one topic, each with its acknowledgement batches."""
    parts = compact_array([struct.pack(">i", p) + _ack_batches(acks) + uvarint(0)
                           for p, acks in partitions.items()])
    topics = compact_array([topic_id + parts + uvarint(0)]) if partitions else compact_array([])
    body = (compact_string(group) + compact_string(member_id)
            + struct.pack(">iiiiii", epoch, max_wait_ms, 1, 1 << 20, max_records, max_records)
            + topics + compact_array([]) + uvarint(0))
    return header_v2(API_SHARE_FETCH, 1, correlation_id) + body


def share_acknowledge_request(correlation_id: int, group: str, member_id: str, epoch: int, topic_id: bytes,
                              partitions: dict[int, list[tuple[int, int, list[int]]]]) -> bytes:
    parts = compact_array([struct.pack(">i", p) + _ack_batches(acks) + uvarint(0)
                           for p, acks in partitions.items()])
    body = (compact_string(group) + compact_string(member_id) + struct.pack(">i", epoch)
            + compact_array([topic_id + parts + uvarint(0)]) + uvarint(0))
    return header_v2(API_SHARE_ACKNOWLEDGE, 1, correlation_id) + body


def _skip_compact_bytes(r: Reader) -> int:
    n = r.uvarint()
    if n > 0:
        r.pos += n - 1
    return n - 1


def parse_share_fetch_response(payload: bytes) -> tuple[int, dict]:
    """-> (error code, {partition: (error code, acknowledge error code, [(first, last, count)])})"""
    r = Reader(payload)
    r.take(">i")
    r.skip_tagged_fields()
    _throttle, error_code = r.take(">ih")
    r.compact_string()
    r.take(">i")
    out = {}
    for _ in range(r.uvarint() - 1):
        r.pos += 16
        for _ in range(r.uvarint() - 1):
            index, err = r.take(">ih")
            r.compact_string()
            ack_err = r.take(">h")
            r.compact_string()
            r.take(">ii")
            r.skip_tagged_fields()
            _skip_compact_bytes(r)
            acquired = []
            for _ in range(r.uvarint() - 1):
                acquired.append(r.take(">qqh"))
                r.skip_tagged_fields()
            r.skip_tagged_fields()
            out[index] = (err, ack_err, acquired)
        r.skip_tagged_fields()
    for _ in range(r.uvarint() - 1):
        r.take(">i")
        r.compact_string()
        r.take(">i")
        r.compact_string()
        r.skip_tagged_fields()
    r.skip_tagged_fields()
    assert r.done()
    return error_code, out


def parse_share_acknowledge_response(payload: bytes) -> tuple[int, dict]:
    """-> (error code, {partition: error code})"""
    r = Reader(payload)
    r.take(">i")
    r.skip_tagged_fields()
    _throttle, error_code = r.take(">ih")
    r.compact_string()
    out = {}
    for _ in range(r.uvarint() - 1):
        r.pos += 16
        for _ in range(r.uvarint() - 1):
            index, err = r.take(">ih")
            r.compact_string()
            r.take(">ii")
            r.skip_tagged_fields()
            r.skip_tagged_fields()
            out[index] = err
        r.skip_tagged_fields()
    for _ in range(r.uvarint() - 1):
        r.take(">i")
        r.compact_string()
        r.take(">i")
        r.compact_string()
        r.skip_tagged_fields()
    r.skip_tagged_fields()
    assert r.done()
    return error_code, out
