"""Share groups (KIP-932, "queues for Kafka") with confluent-kafka's ShareConsumer
(librdkafka 2.16): members read one partition cooperatively, each record acquired by one
member under a time lock and acknowledged (ACCEPT, RELEASE, REJECT) one by one.

A share group starts reading a partition where the log ends when it first fetches it
(`share.auto.offset.reset` latest, Kafka's default). So each test first has one member
read a probe record, produced until it arrives: everything produced after that is the
group's to read."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
from confluent_kafka import AcknowledgeType, Producer, ShareConsumer

from e2e import create_topic, unique_topic, wait_for

LOCK_MS = 2000


def share_consumer(bootstrap: str, group: str, **conf) -> ShareConsumer:
    base = {"bootstrap.servers": bootstrap, "group.id": group, "fetch.wait.max.ms": 100}
    base.update(conf)
    return ShareConsumer(base)


def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for v in values:
        p.produce(topic, v, partition=0)
    assert p.flush(30) == 0


def start_reading(bootstrap: str, topic: str, c: ShareConsumer, explicit: bool = False) -> None:
    """Produces probe records until `c` receives one: the group's share-partition has
    started by then, before anything produced later."""
    deadline = time.monotonic() + 30
    n = 0
    while True:
        assert time.monotonic() < deadline, "the share consumer never received a probe"
        produce(bootstrap, topic, [f"probe-{n}".encode()])
        n += 1
        got = [m for m in c.poll(1.0) if m.error() is None]
        if explicit:
            for m in got:
                c.acknowledge(m, AcknowledgeType.ACCEPT)
        if got:
            assert all(m.value().startswith(b"probe-") for m in got)
            c.commit_sync()
            return


def drain(consumers: dict[str, ShareConsumer], want: int, timeout: float = 60) -> dict[str, list]:
    """Polls every consumer in turn until `want` records arrived in all; returns each
    one's (offset, value, delivery count), in arrival order."""
    got: dict[str, list] = {name: [] for name in consumers}
    deadline = time.monotonic() + timeout
    while sum(len(v) for v in got.values()) < want:
        assert time.monotonic() < deadline, f"read {sum(len(v) for v in got.values())} of {want}"
        for name, c in consumers.items():
            for m in c.poll(0.2):
                assert m.error() is None, m.error()
                if m.value().startswith(b"probe-"):
                    continue
                got[name].append((m.offset(), m.value(), m.delivery_count()))
    return got


def test_three_share_consumers_split_one_partition(broker):
    topic = unique_topic("share")
    create_topic(broker.bootstrap, topic, 1)
    group = f"sg-{uuid.uuid4().hex[:8]}"
    consumers = {"a": share_consumer(broker.bootstrap, group, **{"max.poll.records": 10})}
    try:
        consumers["a"].subscribe([topic])
        start_reading(broker.bootstrap, topic, consumers["a"])
        consumers["b"] = share_consumer(broker.bootstrap, group, **{"max.poll.records": 10})
        consumers["c"] = share_consumer(broker.bootstrap, group, **{"max.poll.records": 10})
        for c in list(consumers.values())[1:]:
            c.subscribe([topic])
        values = [f"v-{i}".encode() for i in range(300)]
        # In slices, so that every member has a chance to fetch while records remain.
        got: dict[str, list] = {name: [] for name in consumers}
        for i in range(0, 300, 30):
            produce(broker.bootstrap, topic, values[i:i + 30])
            for name, recs in drain(consumers, 30).items():
                got[name].extend(recs)
        every = sorted(v for recs in got.values() for _, v, _ in recs)
        assert every == sorted(values), "each record exactly once across the members"
        assert all(count == 1 for recs in got.values() for _, _, count in recs)
        assert sum(1 for recs in got.values() if recs) >= 2, {k: len(v) for k, v in got.items()}
    finally:
        for c in consumers.values():
            c.close()


def test_partitions_are_spread_over_the_members(broker):
    """Two share consumers of a four-partition topic are assigned two partitions each
    (ShareGroupDescribe shows it) and read every record once between them."""
    from test_cli import out, rows, sluice

    topic = unique_topic("share-spread")
    create_topic(broker.bootstrap, topic, 4)
    group = f"sg-{uuid.uuid4().hex[:8]}"
    assert alter_group_configs(broker, group, {"share.auto.offset.reset": "earliest"}) == (0, None)
    p = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(40):
        p.produce(topic, f"s-{i}".encode(), partition=i % 4)
    assert p.flush(30) == 0
    consumers = {name: share_consumer(broker.bootstrap, group) for name in ("a", "b")}
    try:
        for c in consumers.values():
            c.subscribe([topic])
        got = drain(consumers, 40)
        values = sorted(v for recs in got.values() for _, v, _ in recs)
        assert values == sorted(f"s-{i}".encode() for i in range(40))
        members = rows(out(sluice(broker, "group", "describe", group)), "MEMBER-ID")
        assignments = sorted(m[3] for m in members)
        assert len(assignments) == 2 and all(a.count(",") == 1 for a in assignments), assignments
    finally:
        for c in consumers.values():
            c.close()


def test_explicit_release_comes_back_and_reject_never_does(broker):
    topic = unique_topic("share-ack")
    create_topic(broker.bootstrap, topic, 1)
    group = f"sg-{uuid.uuid4().hex[:8]}"
    c = share_consumer(broker.bootstrap, group, **{"share.acknowledgement.mode": "explicit"})
    try:
        c.subscribe([topic])
        start_reading(broker.bootstrap, topic, c, explicit=True)
        produce(broker.bootstrap, topic, [b"keep", b"again", b"poison"])
        seen: list[tuple[bytes, int]] = []
        deadline = time.monotonic() + 30
        # Round 1: ACCEPT keep, RELEASE again, REJECT poison; then again comes back with
        # delivery count 2 and is accepted; a sentinel produced after shows nothing else
        # is coming (poison never returns).
        sentinel_sent = False
        while b"end" not in [v for v, _ in seen]:
            assert time.monotonic() < deadline, seen
            for m in c.poll(0.5):
                assert m.error() is None, m.error()
                v, count = m.value(), m.delivery_count()
                seen.append((v, count))
                if v == b"again" and count == 1:
                    c.acknowledge(m, AcknowledgeType.RELEASE)
                elif v == b"poison":
                    c.acknowledge(m, AcknowledgeType.REJECT)
                else:
                    c.acknowledge(m, AcknowledgeType.ACCEPT)
            if (b"again", 2) in seen and not sentinel_sent:
                produce(broker.bootstrap, topic, [b"end"])
                sentinel_sent = True
        assert seen == [(b"keep", 1), (b"again", 1), (b"poison", 1), (b"again", 2), (b"end", 1)]
    finally:
        c.close()


def test_records_are_archived_after_the_delivery_count_limit(broker_factory):
    b = broker_factory({"group.share.delivery.count.limit": 2})
    topic = unique_topic("share-limit")
    create_topic(b.bootstrap, topic, 1)
    group = f"sg-{uuid.uuid4().hex[:8]}"
    c = share_consumer(b.bootstrap, group, **{"share.acknowledgement.mode": "explicit"})
    try:
        c.subscribe([topic])
        start_reading(b.bootstrap, topic, c, explicit=True)
        produce(b.bootstrap, topic, [b"flaky"])
        seen: list[tuple[bytes, int]] = []
        deadline = time.monotonic() + 30
        while b"end" not in [v for v, _ in seen]:
            assert time.monotonic() < deadline, seen
            for m in c.poll(0.5):
                assert m.error() is None, m.error()
                seen.append((m.value(), m.delivery_count()))
                if m.value() == b"flaky":
                    c.acknowledge(m, AcknowledgeType.RELEASE)
                    if m.delivery_count() == 2:
                        produce(b.bootstrap, topic, [b"end"])
                else:
                    c.acknowledge(m, AcknowledgeType.ACCEPT)
        # Released at its second (the last) delivery, it is archived, not delivered again.
        assert seen == [(b"flaky", 1), (b"flaky", 2), (b"end", 1)]
    finally:
        c.close()


HOLDER = textwrap.dedent("""
    import sys
    from confluent_kafka import ShareConsumer
    bootstrap, group, topic = sys.argv[1:4]
    c = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group, "fetch.wait.max.ms": 100,
                       "share.acknowledgement.mode": "explicit"})
    c.subscribe([topic])
    while True:
        got = [m for m in c.poll(0.5) if m.error() is None]
        if any(m.value() == b"held" for m in got):
            print("holding", flush=True)
            sys.stdin.readline()  # never acknowledges; waits to be killed or stopped
""")


def start_holder(bootstrap: str, group: str, topic: str) -> subprocess.Popen:
    """A share consumer in its own process that acquires the record "held" and keeps it."""
    return subprocess.Popen([sys.executable, "-c", HOLDER, bootstrap, group, topic],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def wait_holding(holder: subprocess.Popen) -> None:
    line = holder.stdout.readline()
    assert line.strip() == "holding", f"holder said {line!r}, exit code {holder.poll()}"


@pytest.mark.parametrize("how", ["kill", "stop"])
def test_a_dead_or_stuck_members_records_go_to_another(broker_factory, how):
    """kill -9: the connection closes and the broker releases the member's records at
    once (well before the 30 s lock). SIGSTOP: the connection stays, so they come back
    when the 2 s acquisition lock runs out (not before 1 s after the holder reported it),
    with delivery count 2 either way."""
    lock_ms = 30_000 if how == "kill" else LOCK_MS
    b = broker_factory({"group.share.record.lock.duration.ms": lock_ms})
    topic = unique_topic(f"share-{how}")
    create_topic(b.bootstrap, topic, 1)
    group = f"sg-{uuid.uuid4().hex[:8]}"
    other = share_consumer(b.bootstrap, group)
    other.subscribe([topic])
    start_reading(b.bootstrap, topic, other)
    holder = start_holder(b.bootstrap, group, topic)
    try:
        # Share consumers fetch only inside poll(), so with `other` idle the holder is
        # the one member fetching "held".
        produce(b.bootstrap, topic, [b"held"])
        wait_holding(holder)
        acquired_at = time.monotonic()
        if how == "kill":
            holder.kill()
            holder.wait(10)
        else:
            holder.send_signal(signal.SIGSTOP)
        redelivered = None
        deadline = time.monotonic() + 30
        while redelivered is None:
            assert time.monotonic() < deadline, "the held record never came back"
            for m in other.poll(0.3):
                if m.error() is None and m.value() == b"held":
                    redelivered = (m.delivery_count(), time.monotonic() - acquired_at)
        count, after = redelivered
        assert count == 2
        if how == "kill":
            assert after < lock_ms / 1000 / 2, f"released on disconnect, not at lock expiry: {after:.1f}s"
        else:
            # Measured from when the holder reported the record, a little after the lock
            # started: half the lock tells lock expiry from a release.
            assert after >= LOCK_MS / 1000 * 0.5, f"came back before its lock ran out: {after:.1f}s"
    finally:
        if holder.poll() is None:
            holder.send_signal(signal.SIGCONT)
            holder.kill()
            holder.wait(10)
        other.close()


# --- raw frames: the error paths no client takes on purpose ----------------------------------
UNKNOWN_MEMBER_ID = 25
INVALID_REQUEST = 42
NON_EMPTY_GROUP = 68
GROUP_ID_NOT_FOUND = 69
FENCED_MEMBER_EPOCH = 110
INVALID_RECORD_STATE = 121
SHARE_SESSION_NOT_FOUND = 122
INVALID_SHARE_SESSION_EPOCH = 123


def topic_id_of(bootstrap: str, topic: str) -> bytes:
    """The topic's id, as the 16 bytes share requests carry."""
    import struct

    from confluent_kafka import TopicCollection
    from confluent_kafka.admin import AdminClient

    a = AdminClient({"bootstrap.servers": bootstrap})
    (d,) = a.describe_topics(TopicCollection([topic])).values()
    tid = d.result(10).topic_id
    return struct.pack(">qq", tid.get_most_significant_bits(), tid.get_least_significant_bits())


def test_raw_share_protocol_errors(broker):
    import wire

    topic = unique_topic("share-raw")
    create_topic(broker.bootstrap, topic, 1)
    tid = topic_id_of(broker.bootstrap, topic)
    group = f"sg-{uuid.uuid4().hex[:8]}"
    with wire.Conn(broker.host, broker.port) as conn:
        corr = iter(range(1, 1000))

        def heartbeat(member: str, epoch: int, topics=None) -> dict:
            return wire.parse_share_group_heartbeat_response(
                conn.request(wire.share_group_heartbeat_request(next(corr), group, member, epoch, topics)))

        def fetch(member: str, epoch: int, acks=None, wait_ms: int = 2000):
            return wire.parse_share_fetch_response(conn.request(wire.share_fetch_request(
                next(corr), group, member, epoch, tid, {0: acks or []}, max_wait_ms=wait_ms)))

        def ack(member: str, epoch: int, acks):
            return wire.parse_share_acknowledge_response(conn.request(wire.share_acknowledge_request(
                next(corr), group, member, epoch, tid, {0: acks})))

        # The group coordinator exists once __consumer_offsets does.
        from kafka.protocol.metadata import FindCoordinatorRequest
        (c,) = wire.call(conn, FindCoordinatorRequest(key_type=0, coordinator_keys=[group]), 4, next(corr)).coordinators
        assert c.error_code == 0

        # Heartbeats: a member that never joined, an empty member id, a stale epoch.
        assert heartbeat("ghost", 1)["error_code"] == GROUP_ID_NOT_FOUND
        assert heartbeat("", 0, [topic])["error_code"] == INVALID_REQUEST
        joined = heartbeat("m1", 0, [topic])
        assert (joined["error_code"], joined["member_id"]) == (0, "m1")
        assert joined["member_epoch"] > 0
        assert joined["assignment"] == {tid: [0]}
        assert heartbeat("ghost", 1)["error_code"] == UNKNOWN_MEMBER_ID
        assert heartbeat("m1", joined["member_epoch"] + 5)["error_code"] == FENCED_MEMBER_EPOCH
        again = heartbeat("m1", joined["member_epoch"])
        assert (again["error_code"], again["member_epoch"], again["assignment"]) == (0, joined["member_epoch"], None)

        # Share sessions: no session yet, acknowledgements on an opening fetch.
        assert fetch("m1", 1)[0] == SHARE_SESSION_NOT_FOUND
        assert fetch("m1", 0, acks=[(0, 0, [1])])[0] == INVALID_REQUEST
        assert ack("m1", 0, [(0, 0, [1])])[0] == INVALID_SHARE_SESSION_EPOCH
        # Epoch 0 opens the session (the share-partition starts at the log end, 0).
        assert fetch("m1", 0, wait_ms=0) == (0, {})
        produce(broker.bootstrap, topic, [b"r0", b"r1", b"r2"])
        err, parts = fetch("m1", 1)
        assert (err, parts) == (0, {0: (0, 0, [(0, 2, 1)])})
        # The epoch must be the next one.
        assert fetch("m1", 1)[0] == INVALID_SHARE_SESSION_EPOCH
        # Acknowledging a record not acquired (3 was never delivered) is refused, and the
        # refusal changes nothing: 0 stays acquired and is accepted next.
        assert ack("m1", 2, [(0, 0, [1]), (3, 3, [1])]) == (0, {0: INVALID_RECORD_STATE})
        assert ack("m1", 3, [(0, 0, [1])]) == (0, {0: 0})
        # Accepted already (2, ahead of 1 which is still out): not acquired any more.
        # Below the share-partition start offset (0, done) it is simply done, as in Kafka.
        assert ack("m1", 4, [(2, 2, [1])]) == (0, {0: 0})
        assert ack("m1", 5, [(2, 2, [1])]) == (0, {0: INVALID_RECORD_STATE})
        assert ack("m1", 6, [(0, 0, [1])]) == (0, {0: 0})
        # An unknown acknowledge type is a malformed request.
        assert ack("m1", 7, [(1, 1, [9])]) == (0, {0: INVALID_REQUEST})
        # Closing the session with nothing acknowledged releases 1: it comes back,
        # delivered a second time.
        assert ack("m1", -1, []) == (0, {0: 0})
        assert fetch("m1", 0, wait_ms=0) == (0, {0: (0, 0, [(1, 1, 2)])})
        # Another member cannot acknowledge m1's record.
        assert fetch("m2", 0, wait_ms=0)[0] == 0
        assert ack("m2", 1, [(1, 1, [1])]) == (0, {0: INVALID_RECORD_STATE})
        # ListGroups names it a share group; a member keeps DeleteGroups off.
        from kafka.protocol.admin import DeleteGroupsRequest, ListGroupsRequest

        def listed():
            r = wire.call(conn, ListGroupsRequest(states_filter=[], types_filter=["share"]), 5, next(corr))
            return [(g.group_id, g.group_state, g.group_type, g.protocol_type) for g in r.groups
                    if g.group_id == group]

        def delete():
            r = wire.call(conn, DeleteGroupsRequest(groups_names=[group]), 2, next(corr))
            return [x.error_code for x in r.results]

        assert listed() == [(group, "Stable", "share", "share")]
        assert delete() == [NON_EMPTY_GROUP]
        # Leaving the group.
        left = heartbeat("m1", -1)
        assert (left["error_code"], left["member_epoch"]) == (0, -1)
        assert heartbeat("m1", -1)["error_code"] == UNKNOWN_MEMBER_ID
        assert listed() == [(group, "Empty", "share", "share")]
        assert delete() == [0]
        assert listed() == []


def test_a_restart_loses_no_acknowledgement_and_redelivers_only_the_rest(broker_factory):
    """One member accepts 10 of 20 records (commit_sync: written before it is answered)
    and holds the other 10 when the broker is killed with kill -9. After the restart a
    member of the group gets exactly those 10, each on its second delivery, then what is
    produced next."""
    b = broker_factory()
    topic = unique_topic("share-restart")
    create_topic(b.bootstrap, topic, 1)
    group = f"sg-{uuid.uuid4().hex[:8]}"
    c = share_consumer(b.bootstrap, group, **{"share.acknowledgement.mode": "explicit",
                                              "max.poll.records": 20, "socket.timeout.ms": 5000})
    c.subscribe([topic])
    start_reading(b.bootstrap, topic, c, explicit=True)
    values = [f"r-{i}".encode() for i in range(20)]
    produce(b.bootstrap, topic, values)
    got: list = []
    deadline = time.monotonic() + 30
    while len(got) < 20:
        assert time.monotonic() < deadline, got
        got.extend(m for m in c.poll(0.5) if m.error() is None)
    assert [m.value() for m in got] == values
    for m in got[:10]:
        c.acknowledge(m, AcknowledgeType.ACCEPT)
    results = c.commit_sync()
    assert all(err is None for err in results.values()), results
    b.kill()
    try:
        c.close()  # its broker is gone: nothing to acknowledge or release there
    except Exception:
        pass
    b.start()
    c2 = share_consumer(b.bootstrap, group, **{"share.acknowledgement.mode": "explicit"})
    try:
        c2.subscribe([topic])
        again = []
        deadline = time.monotonic() + 60
        while len(again) < 10:
            assert time.monotonic() < deadline, again
            for m in c2.poll(0.5):
                assert m.error() is None, m.error()
                again.append((m.value(), m.delivery_count()))
                c2.acknowledge(m, AcknowledgeType.ACCEPT)
        assert again == [(v, 2) for v in values[10:]]
        produce(b.bootstrap, topic, [b"after"])
        later = []
        while not later:
            assert time.monotonic() < deadline
            for m in c2.poll(0.5):
                later.append((m.value(), m.delivery_count()))
                c2.acknowledge(m, AcknowledgeType.ACCEPT)
        assert later == [(b"after", 1)]
    finally:
        c2.close()


def test_cli_lists_describes_and_resets_a_share_group(broker):
    """`sluice group list` shows the share group; `describe` its member and the
    share-partition start offset; `reset-offsets --to-earliest --execute` on the empty
    group makes the next member read the partition again from offset 0."""
    from test_cli import out, rows, sluice

    topic = unique_topic("share-cli")
    create_topic(broker.bootstrap, topic, 1)
    group = f"sg-{uuid.uuid4().hex[:8]}"
    c = share_consumer(broker.bootstrap, group, **{"client.id": "share-cli"})
    c.subscribe([topic])
    start_reading(broker.bootstrap, topic, c)
    produce(broker.bootstrap, topic, [f"c-{i}".encode() for i in range(5)])
    got = drain({"c": c}, 5)["c"]
    assert [v for _, v, _ in got] == [f"c-{i}".encode() for i in range(5)]
    c.commit_sync()
    try:
        assert [group, "Stable", "share"] in rows(out(sluice(broker, "group", "list")), "GROUP")
        text = out(sluice(broker, "group", "describe", group))
        assert "Protocol type:  share" in text
        [member] = rows(text, "MEMBER-ID")
        assert member[1:] == ["share-cli", "/127.0.0.1", f"{topic}(0)"]
        # Every probe and record before the log end is acknowledged: the start offset is
        # the log end offset.
        [row] = rows(text, "TOPIC")
        end = row[3]
        assert row == [topic, "0", end, end, "0", "1"]
        r = sluice(broker, "group", "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute", ok=False)
        assert r.returncode != 0 and "active members" in r.stderr.decode(), r.stderr.decode()
    finally:
        c.close()
    wait_for(lambda: "State:          Empty" in out(sluice(broker, "group", "describe", group)), 30,
             "the share group to empty")
    assert rows(out(sluice(broker, "group", "reset-offsets", group, "--topic", topic, "--to-earliest",
                           "--execute")), "TOPIC") == [[topic, "0", "0"]]
    [row] = rows(out(sluice(broker, "group", "describe", group)), "TOPIC")
    assert row[:3] == [topic, "0", "0"]
    again = share_consumer(broker.bootstrap, group)
    try:
        again.subscribe([topic])
        # From offset 0: the probes go by (drain skips them), then every record again,
        # as a first delivery in the new state.
        reread = drain({"again": again}, 5)["again"]
        assert [(v, count) for _, v, count in reread] == [(f"c-{i}".encode(), 1) for i in range(5)]
    finally:
        again.close()


# --- group configs (resource type GROUP, 32) ------------------------------------------------
INVALID_CONFIG = 40
GROUP_RESOURCE = 32


def alter_group_configs(b, group: str, configs: dict[str, str | None]) -> tuple[int, str | None]:
    """IncrementalAlterConfigs v1 on the group (SET, or DELETE for None) over a raw
    connection with kafka-python's classes; -> (error code, message)."""
    import wire
    from kafka.protocol.admin import IncrementalAlterConfigsRequest

    R = IncrementalAlterConfigsRequest.AlterConfigsResource
    resource = R(resource_type=GROUP_RESOURCE, resource_name=group, configs=[
        R.AlterableConfig(name=k, config_operation=0 if v is not None else 1, value=v) for k, v in configs.items()])
    with wire.Conn(b.host, b.port) as conn:
        r = wire.call(conn, IncrementalAlterConfigsRequest(resources=[resource], validate_only=False), 1)
    (res,) = r.responses
    return res.error_code, res.error_message


def describe_group_configs(b, group: str) -> dict[str, tuple[str, int]]:
    """DescribeConfigs v4 of the group -> {name: (value, config source)}."""
    import wire
    from kafka.protocol.admin import DescribeConfigsRequest

    resource = DescribeConfigsRequest.DescribeConfigsResource(resource_type=GROUP_RESOURCE, resource_name=group,
                                                              configuration_keys=None)
    with wire.Conn(b.host, b.port) as conn:
        r = wire.call(conn, DescribeConfigsRequest(resources=[resource], include_synonyms=False,
                                                   include_documentation=False), 4)
    (res,) = r.results
    assert res.error_code == 0, res
    return {c.name: (c.value, c.config_source) for c in res.configs}


def test_group_configs_start_earliest_and_read_committed(broker_factory):
    """share.auto.offset.reset=earliest makes the group read what was produced before it
    existed; share.isolation.level=read_committed hides aborted transactions from it."""
    from confluent_kafka import Producer as TxnProducer

    b = broker_factory()
    topic = unique_topic("share-cfg")
    create_topic(b.bootstrap, topic, 1)
    group = f"sg-{uuid.uuid4().hex[:8]}"
    produce(b.bootstrap, topic, [b"before-0", b"before-1"])
    p = TxnProducer({"bootstrap.servers": b.bootstrap, "transactional.id": f"tx-{uuid.uuid4().hex[:6]}"})
    p.init_transactions(30)
    for value, commit in [(b"committed-1", True), (b"aborted-1", False), (b"committed-2", True)]:
        p.begin_transaction()
        p.produce(topic, value, partition=0)
        (p.commit_transaction if commit else p.abort_transaction)(30)
    produce(b.bootstrap, topic, [b"end"])

    assert describe_group_configs(b, group)["share.auto.offset.reset"] == ("latest", 5)
    assert alter_group_configs(b, group, {"share.auto.offset.reset": "sometime"})[0] == INVALID_CONFIG
    assert alter_group_configs(b, group, {"share.heartbeat.nonsense": "1"})[0] == INVALID_CONFIG
    assert alter_group_configs(b, group, {"share.auto.offset.reset": "earliest",
                                          "share.isolation.level": "read_committed"}) == (0, None)
    got = describe_group_configs(b, group)
    assert got["share.auto.offset.reset"] == ("earliest", 8)
    assert got["share.isolation.level"] == ("read_committed", 8)

    c = share_consumer(b.bootstrap, group)
    try:
        c.subscribe([topic])
        seen = []
        deadline = time.monotonic() + 30
        while b"end" not in seen:
            assert time.monotonic() < deadline, seen
            seen.extend(m.value() for m in c.poll(0.5) if m.error() is None)
        assert seen == [b"before-0", b"before-1", b"committed-1", b"committed-2", b"end"]
    finally:
        c.close()
    # Deleting the setting brings the default back.
    assert alter_group_configs(b, group, {"share.isolation.level": None}) == (0, None)
    assert describe_group_configs(b, group)["share.isolation.level"] == ("read_uncommitted", 5)
