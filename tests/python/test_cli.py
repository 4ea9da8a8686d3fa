"""The admin CLI (`sluice topic|group|produce|consume`) against a running broker, with
confluent-kafka (librdkafka) as the independent side: what the CLI creates, alters, resets
and produces, a real client sees; what a real client produces and commits, the CLI prints.

Every wait is a poll with a deadline; every CLI run has a timeout.
"""

from __future__ import annotations

import signal
import subprocess
import time

import pytest
from confluent_kafka import Consumer, ConsumerGroupState, TopicPartition
from confluent_kafka.admin import ConfigResource, ConfigSource

from conftest import SLUICE_BIN, free_port
from e2e import admin, consume_exact, create_topic, produce_and_report, producer, unique_topic, wait_for
from pki import pki  # noqa: F401  (a fixture)

# the first rebalance of an empty group completes at once (Kafka's default waits 3 s)
FAST = {"group.initial.rebalance.delay.ms": 0}


def sluice(b, *args: str, stdin: bytes | None = None, timeout: float = 30, ok: bool = True):
    """Runs `sluice ARGS --bootstrap-server B`; with ok, fails the test on a non-zero exit."""
    argv = [str(SLUICE_BIN), *args, "--bootstrap-server", b.bootstrap]
    r = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout)
    if ok:
        assert r.returncode == 0, (f"{argv[1:]} exited {r.returncode}\nstdout:\n{r.stdout.decode(errors='replace')}"
                                   f"\nstderr:\n{r.stderr.decode(errors='replace')}")
    return r


def out(r) -> str:
    return r.stdout.decode()


def err(r) -> str:
    return r.stderr.decode(errors="replace")


def rows(text: str, first: str) -> list[list[str]]:
    """The rows of the whitespace-aligned table whose header starts with `first`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == [first])
    table = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        table.append(line.split())
    return table


def topic_configs(bootstrap: str, topic: str) -> dict:
    a = admin(bootstrap)
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return a.describe_configs([res], request_timeout=30)[res].result(30)


def produce_to(bootstrap: str, topic: str, per_partition: dict[int, int], **conf) -> None:
    p = producer(bootstrap, **conf)
    items = [(topic, f"k{part}-{i}".encode(), f"v{part}-{i}".encode(), None, part)
             for part, n in per_partition.items() for i in range(n)]
    reports = produce_and_report(p, items)
    assert all(e is None for e, _, _ in reports), reports


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> list[int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        got = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=15)
        return [tp.offset for tp in got]
    finally:
        c.close()


# --- topics --------------------------------------------------------------------------

def test_topic_create_describe_alter_add_partitions_delete(broker):
    topic = unique_topic("cli-topic")
    r = sluice(broker, "topic", "create", topic, "--partitions", "3", "--config", "retention.ms=3600000")
    assert out(r) == f"Created topic {topic}.\n"
    md = admin(broker.bootstrap).list_topics(topic, timeout=10)
    assert len(md.topics[topic].partitions) == 3
    cfg = topic_configs(broker.bootstrap, topic)
    assert (cfg["retention.ms"].value, cfg["retention.ms"].source) == ("3600000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)

    again = sluice(broker, "topic", "create", topic, "--partitions", "3", ok=False)
    assert again.returncode == 1 and "TOPIC_ALREADY_EXISTS" in err(again), err(again)
    sluice(broker, "topic", "create", topic, "--if-not-exists")

    listed = out(sluice(broker, "topic", "list")).splitlines()
    assert topic in listed and listed == sorted(listed)

    produce_to(broker.bootstrap, topic, {0: 5, 2: 7})
    described = out(sluice(broker, "topic", "describe", topic))
    head, *parts = described.splitlines()
    assert head.startswith(f"Topic: {topic}\tTopicId: ") and "\tPartitionCount: 3\tReplicationFactor: 1\t" in head
    assert head.endswith("Configs: retention.ms=3600000"), head
    ends = {}
    for line in parts:
        fields = dict(f.split(": ", 1) for f in line.strip().split("\t"))
        assert (fields["Leader"], fields["Replicas"], fields["Isr"], fields["LogStartOffset"]) == ("1", "1", "1", "0")
        ends[int(fields["Partition"])] = int(fields["LogEndOffset"])
    assert ends == {0: 5, 1: 0, 2: 7}

    r = sluice(broker, "topic", "alter-config", topic, "--set", "cleanup.policy=compact", "--delete", "retention.ms")
    assert "cleanup.policy=compact" in out(r).splitlines() and "retention.ms" not in out(r)
    cfg = topic_configs(broker.bootstrap, topic)
    assert cfg["cleanup.policy"].value == "compact"
    assert cfg["retention.ms"].source != ConfigSource.DYNAMIC_TOPIC_CONFIG.value

    bad = sluice(broker, "topic", "alter-config", topic, "--set", "retention.ms=soon", ok=False)
    assert bad.returncode == 1 and "INVALID_CONFIG" in err(bad), err(bad)
    assert "retention.ms" in err(bad), "the broker's message names the config"

    sluice(broker, "topic", "add-partitions", topic, "--total", "4")
    md = admin(broker.bootstrap).list_topics(topic, timeout=10)
    assert len(md.topics[topic].partitions) == 4

    r = sluice(broker, "topic", "delete", topic)
    assert out(r) == f"Deleted topic {topic}.\n"
    assert topic not in admin(broker.bootstrap).list_topics(timeout=10).topics
    gone = sluice(broker, "topic", "describe", topic, ok=False)
    assert gone.returncode == 1 and "UNKNOWN_TOPIC_OR_PARTITION" in err(gone), err(gone)


# --- produce ---------------------------------------------------------------------------

def test_produce_keyed_lines_land_where_the_java_partitioner_puts_them(broker):
    topic, twin = unique_topic("cli-prod"), unique_topic("cli-twin")
    create_topic(broker.bootstrap, topic, 4)
    create_topic(broker.bootstrap, twin, 4)
    n = 300
    keys = [f"user-{i * 7919 % 1000}" for i in range(n)]
    values = [f"event {i}: a:b" if i % 3 else f"ünïcode {i}" for i in range(n)]  # the separator repeats in values
    lines = "".join(f"{k}:{v}\n" for k, v in zip(keys, values)).encode()
    r = sluice(broker, "produce", topic, "--key-separator", ":", "--header", "trace=abc", stdin=lines)
    assert f"produced {n} records to {topic}" in err(r)

    # librdkafka's murmur2_random partitioner is the Java client's default for keyed records
    reports = produce_and_report(producer(broker.bootstrap, partitioner="murmur2_random"),
                                 [(twin, k.encode(), b"", None, None) for k in keys])
    java_partition = {k: part for k, (_, part, _) in zip(keys, reports)}

    want: dict[int, list] = {p: [] for p in range(4)}
    for k, v in zip(keys, values):
        want[java_partition[k]].append((k.encode(), v.encode()))
    got = consume_exact(broker.bootstrap, topic, {p: len(w) for p, w in want.items()})
    for p in range(4):
        assert [(r.offset, r.key, r.value) for r in got[p]] == [(i, k, v) for i, (k, v) in enumerate(want[p])]
        assert all(r.headers == (("trace", b"abc"),) for r in got[p])


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_produce_to_one_partition_with_each_codec(broker, codec):
    topic = unique_topic(f"cli-{codec}")
    create_topic(broker.bootstrap, topic, 2)
    values = [f"line {i} " + "x" * (i % 50) for i in range(2000)] + ["", "tab\there", "last"]
    stdin = ("\n".join(values[:-1]) + "\r\n" + values[-1] + "\n").encode()  # \r\n ends a line too
    sluice(broker, "produce", topic, "--partition", "1", "--acks", "1", "--compression", codec, stdin=stdin)
    got = consume_exact(broker.bootstrap, topic, {1: len(values)})[1]
    assert [(r.key, r.value) for r in got] == [(None, v.encode()) for v in values]


def test_produce_sends_each_typed_line_and_stops_cleanly_on_interrupt(broker):
    topic = unique_topic("cli-typed")
    create_topic(broker.bootstrap, topic, 1)
    proc = subprocess.Popen([str(SLUICE_BIN), "produce", topic, "--bootstrap-server", broker.bootstrap],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for i in range(3):
            proc.stdin.write(f"typed-{i}\n".encode())
            proc.stdin.flush()  # a line at a time, as from a terminal: each is sent without waiting for more
            wait_for(lambda: high_watermark_is(broker.bootstrap, topic, i + 1), 15, f"line {i} to arrive")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
        assert f"produced 3 records to {topic}" in proc.stderr.read().decode()
    finally:
        proc.kill()


def high_watermark_is(bootstrap: str, topic: str, n: int):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "cli-unused"})
    try:
        _, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)
        return high == n
    finally:
        c.close()


# --- consume ---------------------------------------------------------------------------

@pytest.mark.parametrize("codec", ["none", "lz4", "zstd"])
def test_consume_prints_what_confluent_produced(broker, codec):
    topic = unique_topic(f"cli-cons-{codec}")
    create_topic(broker.bootstrap, topic, 2)
    produce_to(broker.bootstrap, topic, {0: 30, 1: 20}, **{"compression.type": codec})
    r = sluice(broker, "consume", topic, "--from-beginning", "--max-messages", "50", "--print-key", "--print-offset")
    printed = [line.split("\t") for line in out(r).splitlines()]
    per: dict[int, list] = {0: [], 1: []}
    for part, off, key, value in printed:
        per[int(part.removeprefix("Partition:"))].append((int(off.removeprefix("Offset:")), key, value))
    assert per == {p: [(i, f"k{p}-{i}", f"v{p}-{i}") for i in range(n)] for p, n in {0: 30, 1: 20}.items()}
    assert "consumed 50 records" in err(r)

    r = sluice(broker, "consume", topic, "--partition", "1", "--offset", "3", "--max-messages", "2")
    assert out(r) == "v1-3\nv1-4\n"

    # with a time limit and no count, it prints everything and exits once nothing new comes
    started = time.monotonic()
    r = sluice(broker, "consume", topic, "--from-beginning", "--timeout-ms", "700")
    assert sorted(out(r).splitlines()) == sorted([f"v0-{i}" for i in range(30)] + [f"v1-{i}" for i in range(20)])
    assert time.monotonic() - started < 10


def test_consume_skips_aborted_transactions_under_read_committed(broker):
    topic = unique_topic("cli-txn")
    create_topic(broker.bootstrap, topic, 1)
    p = producer(broker.bootstrap, **{"transactional.id": unique_topic("cli-txn-id")})
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(3):
        p.produce(topic, value=f"aborted-{i}".encode(), partition=0)
    p.flush(30)
    p.abort_transaction(30)
    p.begin_transaction()
    for i in range(2):
        p.produce(topic, value=f"committed-{i}".encode(), partition=0)
    p.commit_transaction(30)
    # offsets: aborted 0-2, abort marker 3, committed 4-5, commit marker 6

    r = sluice(broker, "consume", topic, "--from-beginning", "--timeout-ms", "700",
               "--isolation-level", "read_committed", "--print-offset")
    assert out(r) == "Partition:0\tOffset:4\tcommitted-0\nPartition:0\tOffset:5\tcommitted-1\n"
    # read_uncommitted (the default, as kafka-console-consumer) shows the aborted records too,
    # but never the transaction markers
    r = sluice(broker, "consume", topic, "--from-beginning", "--timeout-ms", "700", "--print-offset")
    assert [line.split("\t")[1:] for line in out(r).splitlines()] == [
        ["Offset:0", "aborted-0"], ["Offset:1", "aborted-1"], ["Offset:2", "aborted-2"],
        ["Offset:4", "committed-0"], ["Offset:5", "committed-1"]]


def test_consume_with_group_resumes_from_its_simple_commit(broker):
    topic, group = unique_topic("cli-cg"), unique_topic("cli-cg-group")
    create_topic(broker.bootstrap, topic, 1)
    produce_to(broker.bootstrap, topic, {0: 6})
    r = sluice(broker, "consume", topic, "--group", group, "--from-beginning", "--max-messages", "4")
    assert out(r) == "v0-0\nv0-1\nv0-2\nv0-3\n"
    assert committed(broker.bootstrap, group, topic, 1) == [4]
    r = sluice(broker, "consume", topic, "--group", group, "--max-messages", "2")
    assert out(r) == "v0-4\nv0-5\n"
    assert committed(broker.bootstrap, group, topic, 1) == [6]

    # without a limit it runs until ^C, then commits where it got to
    produce_to(broker.bootstrap, topic, {0: 3})
    proc = subprocess.Popen([str(SLUICE_BIN), "consume", topic, "--group", group, "--bootstrap-server",
                             broker.bootstrap], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        printed = [proc.stdout.readline() for _ in range(3)]  # the records are flushed as they come
        assert printed == [b"v0-0\n", b"v0-1\n", b"v0-2\n"]
        proc.send_signal(signal.SIGINT)  # most likely during a long-polling Fetch
        assert proc.wait(15) == 0, proc.stderr.read().decode(errors="replace")
    finally:
        proc.kill()
    assert committed(broker.bootstrap, group, topic, 1) == [9]

    # reset-offsets also starts a group that does not exist yet, as kafka-consumer-groups does
    fresh = unique_topic("cli-fresh-group")
    sluice(broker, "group", "reset-offsets", fresh, "--topic", topic, "--to-offset", "2", "--execute")
    assert committed(broker.bootstrap, fresh, topic, 1) == [2]
    r = sluice(broker, "consume", topic, "--group", fresh, "--max-messages", "1")
    assert out(r) == "v0-2\n"


# --- groups ----------------------------------------------------------------------------

def describe_rows(b, group: str) -> dict[int, list[str]]:
    r = sluice(b, "group", "describe", group)
    return {int(row[1]): row for row in rows(out(r), "TOPIC")}


def test_group_describe_list_and_reset_offsets(broker_factory):
    b = broker_factory(overrides=FAST)
    topic, group = unique_topic("cli-grp"), unique_topic("cli-group")
    create_topic(b.bootstrap, topic, 2)
    produce_to(b.bootstrap, topic, {0: 5, 1: 5})

    def member(client_id: str) -> Consumer:
        return Consumer({"bootstrap.servers": b.bootstrap, "group.id": group, "client.id": client_id,
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})

    c = member("cli-first")
    c.subscribe([topic])
    seen = []
    wait_for(lambda: seen.extend(m for m in c.consume(10, 0.5) if not m.error()) or len(seen) >= 10, 30,
             "the first member to read all 10 records")
    c.commit(offsets=[TopicPartition(topic, 0, 3), TopicPartition(topic, 1, 5)], asynchronous=False)
    c.close()

    # CURRENT-OFFSET LOG-END-OFFSET LAG per partition, no member
    got = describe_rows(b, group)
    assert {p: row[:5] for p, row in got.items()} == {0: [topic, "0", "3", "5", "2"], 1: [topic, "1", "5", "5", "0"]}
    assert all(row[5:] == ["-", "-", "-"] for row in got.values())
    listed = rows(out(sluice(b, "group", "list")), "GROUP")
    assert [group, "Empty", "consumer"] in listed

    # an active member: shown in describe, and reset refuses to touch its offsets
    active = member("cli-active")
    active.subscribe([topic])
    wait_for(lambda: active.poll(0.2) is None and len(active.assignment()) == 2, 30, "the member's assignment")
    try:
        wait_for(lambda: all(row[7] == "cli-active" for row in describe_rows(b, group).values()), 15,
                 "describe to show the member's client id")
        r = sluice(b, "group", "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute", ok=False)
        assert r.returncode != 0 and "the group has active members; stop them first" in err(r), err(r)
        assert committed(b.bootstrap, group, topic, 2) == [3, 5]
    finally:
        active.close()
    wait_for(lambda: "State:          Empty" in out(sluice(b, "group", "describe", group)), 15, "the group to empty")

    # a dry run (the default) prints the plan and commits nothing
    r = sluice(b, "group", "reset-offsets", group, "--topic", topic, "--to-earliest")
    assert rows(out(r), "TOPIC") == [[topic, "0", "0"], [topic, "1", "0"]]
    assert committed(b.bootstrap, group, topic, 2) == [3, 5]

    # offsets are clamped into [log start, log end], as Kafka's tool does
    r = sluice(b, "group", "reset-offsets", group, "--topic", f"{topic}:0", "--to-offset", "100", "--execute")
    assert rows(out(r), "TOPIC") == [[topic, "0", "5"]]
    assert committed(b.bootstrap, group, topic, 2) == [5, 5]

    sluice(b, "group", "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute")
    assert committed(b.bootstrap, group, topic, 2) == [0, 0]
    again = member("cli-again")
    again.subscribe([topic])
    reread = []
    try:
        wait_for(lambda: reread.extend(m.value() for m in again.consume(10, 0.5) if not m.error()) or len(reread) >= 10,
                 30, "a new member to read all 10 records again")
    finally:
        again.close()
    assert sorted(reread) == sorted(f"v{p}-{i}".encode() for p in range(2) for i in range(5))

    wait_for(lambda: "State:          Empty" in out(sluice(b, "group", "describe", group)), 15, "the group to empty")
    assert out(sluice(b, "group", "delete", group)) == f"Deleted group {group}.\n"
    a = admin(b.bootstrap)  # held until the answer: a destroyed client fails its futures
    assert group not in [g.group_id for g in a.list_consumer_groups(request_timeout=30).result(30).valid]


def test_group_describe_of_a_kip848_group(broker_factory):
    """Two confluent-kafka members with group.protocol=consumer (KIP-848, which DescribeGroups
    answers with GROUP_ID_NOT_FOUND): `group describe` asks ConsumerGroupDescribe, as Kafka's
    admin client does, and prints the state, the assignor, each member with its assignment
    exactly as librdkafka's describe_consumer_groups reports them, and each partition's
    committed offset, log end offset, lag and owner."""
    b = broker_factory(overrides=FAST)
    topic, group = unique_topic("cli-848"), unique_topic("cli-848-group")
    create_topic(b.bootstrap, topic, 4)
    ends = {0: 5, 1: 6, 2: 7, 3: 8}
    produce_to(b.bootstrap, topic, ends)
    members = [Consumer({"bootstrap.servers": b.bootstrap, "group.id": group, "client.id": f"cli-848-{name}",
                         "group.protocol": "consumer", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"}) for name in ("a", "b")]
    try:
        for c in members:
            c.subscribe([topic])

        def assigned():
            for c in members:
                c.poll(0.1)
            return all(len(c.assignment()) == 2 for c in members)
        wait_for(assigned, 30, "each member to own 2 partitions")
        # each member commits offset p + 1 for each partition p it owns
        for c in members:
            c.commit(offsets=[TopicPartition(topic, tp.partition, tp.partition + 1) for tp in c.assignment()],
                     asynchronous=False)
        a = admin(b.bootstrap)

        def stable():
            d = a.describe_consumer_groups([group], request_timeout=30)[group].result(30)
            return d if d.state == ConsumerGroupState.STABLE else None
        desc = wait_for(stable, 15, "ConsumerGroupDescribe to report the group Stable", interval=0.5)
        owner = {tp.partition: m for m in desc.members for tp in m.assignment.topic_partitions}
        assert sorted(owner) == [0, 1, 2, 3], owner

        text = out(sluice(b, "group", "describe", group))
        head = text.split("\n\n")[0].splitlines()
        assert head == [f"Group:          {group}", "State:          Stable", "Protocol type:  consumer",
                        f"Protocol:       {desc.partition_assignor}", "Members:        2"], text
        want_members = sorted(
            [m.member_id, m.client_id, m.host,
             f"{topic}({','.join(str(p) for p in sorted(tp.partition for tp in m.assignment.topic_partitions))})"]
            for m in desc.members)
        assert sorted(rows(text, "MEMBER-ID")) == want_members, text
        assert rows(text, "TOPIC") == [
            [topic, str(p), str(p + 1), str(ends[p]), str(ends[p] - p - 1),
             owner[p].member_id, owner[p].host, owner[p].client_id] for p in range(4)], text
    finally:
        for c in members:
            c.close()


# --- --command-config ------------------------------------------------------------------

SCRAM_JAAS = 'org.apache.kafka.common.security.scram.ScramLoginModule required username="{}" password="{}";'
PLAIN_LOGIN = 'org.apache.kafka.common.security.plain.PlainLoginModule required username="{}" password="{}";'


def secure_broker(broker_factory, pki):
    """SASL_SSL and SASL_PLAINTEXT listeners next to the fixture's PLAINTEXT one, offering
    SCRAM-SHA-512 (user alice, made with `sluice scram` before start-up) and PLAIN (bob)."""
    b = broker_factory(start=False, overrides=FAST)
    sasl_ssl, sasl_plain = free_port(), free_port()
    listeners = (f"PLAINTEXT://127.0.0.1:{b.port},SASL_SSL://127.0.0.1:{sasl_ssl},"
                 f"SASL_PLAINTEXT://127.0.0.1:{sasl_plain}")
    b.overrides.update({
        "listeners": listeners, "advertised.listeners": listeners,
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-512",
        **{f"listener.name.{name}.plain.sasl.jaas.config":
           'org.apache.kafka.common.security.plain.PlainLoginModule required user_bob="bob-secret";'
           for name in ("sasl_ssl", "sasl_plaintext")},
        "ssl.keystore.type": "PEM", "ssl.keystore.location": str(pki / "server-keystore.pem"),
    })
    r = subprocess.run([*b.argv(), "scram", "set", "--user", "alice", "--mechanism", "SCRAM-SHA-512"],
                       input=b"alice-secret\n", capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    b.start()
    b.sasl_ssl, b.sasl_plain = f"127.0.0.1:{sasl_ssl}", f"127.0.0.1:{sasl_plain}"
    return b


def command_config(path, **props) -> str:
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    return str(path)


def sluice_at(bootstrap: str, config: str, *args: str, stdin: bytes | None = None, ok: bool = True):
    argv = [str(SLUICE_BIN), *args, "--bootstrap-server", bootstrap, "--command-config", config]
    r = subprocess.run(argv, input=stdin, capture_output=True, timeout=30)
    if ok:
        assert r.returncode == 0, f"{args} exited {r.returncode}\n{err(r)}"
    return r


def test_command_config_sasl_ssl_scram_and_sasl_plaintext_plain(broker_factory, pki, tmp_path):
    """--command-config with Kafka's client properties: SCRAM-SHA-512 over SASL_SSL (PEM trust
    store, host name checked) creates, lists and describes a topic, produces lines and reads
    them back exactly; PLAIN over SASL_PLAINTEXT does the same and describes a group that a
    confluent-kafka consumer committed for over SASL; a wrong password is refused with
    Kafka's message; unsupported settings are refused naming the property."""
    b = secure_broker(broker_factory, pki)
    scram = command_config(tmp_path / "scram.properties", **{
        "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.jaas.config": SCRAM_JAAS.format("alice", "alice-secret"),
        "ssl.truststore.type": "PEM", "ssl.truststore.location": pki / "ca.pem",
        "ssl.endpoint.identification.algorithm": "https"})
    plain = command_config(tmp_path / "plain.properties", **{
        "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
        "sasl.jaas.config": PLAIN_LOGIN.format("bob", "bob-secret")})

    for bootstrap, config, name in ((b.sasl_ssl, scram, "scram"), (b.sasl_plain, plain, "plain")):
        topic = unique_topic(f"cli-{name}")
        assert out(sluice_at(bootstrap, config, "topic", "create", topic, "--partitions", "2")) \
            == f"Created topic {topic}.\n"
        assert topic in out(sluice_at(bootstrap, config, "topic", "list")).split()
        described = out(sluice_at(bootstrap, config, "topic", "describe", topic))
        assert "PartitionCount: 2" in described, described
        lines = [f"{name} line {i}" for i in range(20)]
        sluice_at(bootstrap, config, "produce", topic, "--partition", "1", stdin="\n".join(lines).encode() + b"\n")
        r = sluice_at(bootstrap, config, "consume", topic, "--partition", "1", "--offset", "0",
                      "--max-messages", "20")
        assert out(r).splitlines() == lines

    # a group committed by a real client over SASL_SSL, described over SASL_PLAINTEXT
    topic, group = unique_topic("cli-sasl-grp"), unique_topic("cli-sasl-group")
    sluice_at(b.sasl_plain, plain, "topic", "create", topic, "--partitions", "2")
    sluice_at(b.sasl_plain, plain, "produce", topic, "--partition", "0", stdin=b"a\nb\nc\n")
    c = Consumer({"bootstrap.servers": b.sasl_ssl, "group.id": group, "security.protocol": "SASL_SSL",
                  "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "alice", "sasl.password": "alice-secret",
                  "ssl.ca.location": str(pki / "ca.pem"), "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(topic, 0, 2)], asynchronous=False)
    finally:
        c.close()
    text = out(sluice_at(b.sasl_plain, plain, "group", "describe", group))
    assert rows(text, "TOPIC") == [[topic, "0", "2", "3", "1", "-", "-", "-"]], text

    wrong = command_config(tmp_path / "wrong.properties", **{
        "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.jaas.config": SCRAM_JAAS.format("alice", "guess"),
        "ssl.truststore.type": "PEM", "ssl.truststore.location": pki / "ca.pem"})
    r = sluice_at(b.sasl_ssl, wrong, "topic", "list", ok=False)
    assert r.returncode == 1
    assert ("SASL_AUTHENTICATION_FAILED: Authentication failed during authentication due to invalid "
            "credentials with SASL mechanism SCRAM-SHA-512") in err(r), err(r)

    for props, named in (
        ({"security.protocol": "SSL", "ssl.truststore.type": "JKS", "ssl.truststore.location": "x.jks"},
         "ssl.truststore.type: JKS stores are not supported"),
        ({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "GSSAPI"}, "sasl.mechanism: GSSAPI is not supported"),
        ({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "OAUTHBEARER"},
         "sasl.mechanism: OAUTHBEARER is not supported"),
    ):
        r = sluice_at(b.sasl_plain, command_config(tmp_path / "bad.properties", **props), "topic", "list", ok=False)
        assert r.returncode != 0 and named in err(r), (props, err(r))


# --- errors ----------------------------------------------------------------------------

def test_unreachable_bootstrap_fails_fast_and_plainly():
    port = free_port()
    started = time.monotonic()
    r = subprocess.run([str(SLUICE_BIN), "topic", "list", "--bootstrap-server", f"127.0.0.1:{port}"],
                       capture_output=True, timeout=30)
    assert r.returncode != 0
    assert f"cannot reach 127.0.0.1:{port}: connection refused" in err(r), err(r)
    assert time.monotonic() - started < 5


def test_unknown_topics_and_groups_are_errors(broker):
    missing = unique_topic("cli-missing")
    for args in (["produce", missing], ["consume", missing, "--max-messages", "1"]):
        r = sluice(broker, *args, stdin=b"x\n", ok=False)
        assert r.returncode == 1 and "UNKNOWN_TOPIC_OR_PARTITION" in err(r), (args, err(r))
    r = sluice(broker, "group", "describe", unique_topic("cli-no-group"), ok=False)
    assert r.returncode == 1 and "GROUP_ID_NOT_FOUND" in err(r), err(r)


def test_every_command_has_help():
    top = subprocess.run([str(SLUICE_BIN), "--help"], capture_output=True, timeout=10)
    assert top.returncode == 0
    for cmd in ("topic", "group", "produce", "consume"):
        assert f"\n  {cmd} " in out(top), out(top)
    for args in (["topic", "create"], ["topic", "list"], ["topic", "describe"], ["topic", "delete"],
                 ["topic", "alter-config"], ["topic", "add-partitions"], ["group", "list"], ["group", "describe"],
                 ["group", "reset-offsets"], ["group", "delete"], ["produce"], ["consume"]):
        r = subprocess.run([str(SLUICE_BIN), *args, "--help"], capture_output=True, timeout=10)
        assert r.returncode == 0 and "--bootstrap-server" in out(r), (args, out(r))
