"""The metrics listener: `/metrics` parsed by the Prometheus client library's own text
parser after a confluent-kafka produce/consume/group workload, with counters that match
the workload (records and bytes in, log offsets, group lag), request latency split into
queue, handle, remote and send, RocksDB figures; `/health` and `/ready`; and the Grafana
dashboard, which may only query metrics a live broker exports."""

from __future__ import annotations

import json
import math
import re
import urllib.error
import urllib.request

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import NewTopic
from prometheus_client.parser import text_string_to_metric_families

from conftest import REPO, free_port, start_up_error
from e2e import admin, assigned_consumer, create_topic, produce_and_report, producer, unique_topic, wait_for

DASHBOARD = REPO / "docker" / "grafana" / "sluice-dashboard.json"
# Request latency by phase; the total keeps the name it had before the split.
PHASES = {
    "queue": "sluice_request_queue_seconds",
    "handle": "sluice_request_handle_seconds",
    "remote": "sluice_request_remote_seconds",
    "send": "sluice_request_send_seconds",
    "total": "sluice_request_duration_seconds",
}


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def scrape(base: str) -> dict[str, list]:
    """Every sample by metric name, from the official parser."""
    status, text = get(f"{base}/metrics")
    assert status == 200
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append(s)
    return out


def value(samples: dict, name: str, **labels) -> float:
    matching = [s.value for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(matching) == 1, f"{name}{labels}: {matching}"
    return matching[0]


def test_metrics_match_a_workload_and_probes_answer(broker_factory):
    """2,000 records of 1,000 bytes to two partitions: messages in is exactly 2,000,
    bytes in is the payload plus under 5% of batch framing, and each partition's high
    watermark is 1,000. A group that commits offsets 300 and 200 shows lag 700 and 800.
    Fetched bytes, request counts and latencies, and connections are reported.
    `/health` and `/ready` answer 200; an unknown path answers 404."""
    port = free_port()
    b = broker_factory(overrides={"metrics.listener": f"127.0.0.1:{port}", "auto.create.topics.enable": "false"})
    base = f"http://127.0.0.1:{port}"
    assert get(f"{base}/health") == (200, "ok\n")
    assert get(f"{base}/ready") == (200, "ready\n")
    assert get(f"{base}/nowhere")[0] == 404

    topic = unique_topic("metrics")
    create_topic(b.bootstrap, topic, 2)
    p = producer(b.bootstrap, **{"linger.ms": 20})
    value_bytes = b"v" * 1000
    items = [(topic, None, value_bytes, None, i % 2) for i in range(2000)]
    assert all(e is None for e, _, _ in produce_and_report(p, items))

    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "metrics-group", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)])
    got = []
    wait_for(lambda: got.extend(m for m in c.consume(500, 0.2) if not m.error()) or len(got) >= 2000, 30,
             "the consumer to read everything")
    c.commit(offsets=[TopicPartition(topic, 0, 300), TopicPartition(topic, 1, 200)], asynchronous=False)

    m = scrape(base)
    assert value(m, "sluice_topic_messages_in_total", topic=topic) == 2000
    payload = 2000 * 1000
    bytes_in = value(m, "sluice_topic_bytes_in_total", topic=topic)
    assert payload < bytes_in < payload * 1.05, bytes_in
    assert value(m, "sluice_topic_bytes_out_total", topic=topic) >= payload
    for part in ("0", "1"):
        assert value(m, "sluice_partition_offset", topic=topic, partition=part, kind="high_watermark") == 1000
        assert value(m, "sluice_partition_offset", topic=topic, partition=part, kind="log_start") == 0
        assert value(m, "sluice_partition_log_size_bytes", topic=topic, partition=part) > 1000 * 1000
    assert value(m, "sluice_consumer_group_lag", group="metrics-group", topic=topic, partition="0") == 700
    assert value(m, "sluice_consumer_group_lag", group="metrics-group", topic=topic, partition="1") == 800
    assert value(m, "sluice_requests_total", api="Produce") >= 1
    assert value(m, "sluice_requests_total", api="Fetch") >= 1
    assert value(m, "sluice_request_duration_seconds_count", api="Produce") == \
        value(m, "sluice_requests_total", api="Produce")
    assert value(m, "sluice_connections", listener="PLAINTEXT") >= 2
    assert value(m, "sluice_under_replicated_partitions") == 0
    # The topic's 2 and the 50 of __consumer_offsets, made by the group's FindCoordinator.
    assert value(m, "sluice_partitions") == 2 + 50
    c.close()

    # Metadata for a topic that does not exist is counted under its Kafka error name.
    p2 = producer(b.bootstrap, **{"message.timeout.ms": 2000})
    produce_and_report(p2, [("no-such-topic-" + topic, None, b"x", None, 0)], timeout=20)
    m = scrape(base)
    assert value(m, "sluice_request_errors_total", api="Metadata", error="UNKNOWN_TOPIC_OR_PARTITION") >= 1


def test_bad_metrics_listener_stops_start_up(tmp_path):
    """A metrics.listener without a port stops start-up, naming the setting."""
    err = start_up_error({"listeners": f"PLAINTEXT://127.0.0.1:{free_port()}", "log.dirs": tmp_path / "data",
                          "metrics.listener": "localhost"})
    assert "metrics.listener" in err, err[-2000:]


def metrics_broker(broker_factory, **overrides):
    """A broker with a metrics listener, and the listener's base URL."""
    port = free_port()
    b = broker_factory(overrides={"metrics.listener": f"127.0.0.1:{port}", **overrides})
    return b, f"http://127.0.0.1:{port}"


def phase_counts(m: dict, api: str) -> dict[str, float]:
    """Each phase histogram's count, and the requests counted, of one API."""
    counts = {phase: value(m, f"{name}_count", api=api) for phase, name in PHASES.items()}
    counts["requests"] = value(m, "sluice_requests_total", api=api)
    return counts


def test_request_latency_is_split_into_queue_handle_remote_and_send(broker_factory):
    """After a produce/fetch workload, with the clients closed, every phase histogram of
    Produce and Fetch counts exactly the requests in `sluice_requests_total`; queue,
    handle, send and total sums are positive, the phases add up to the total, and Fetch
    long polls that found no data show as remote time. RocksDB memtables and keys are
    above 0 after the writes."""
    b, base = metrics_broker(broker_factory)
    topic = unique_topic("latency")
    create_topic(b.bootstrap, topic, 1)
    p = producer(b.bootstrap, **{"linger.ms": 0, "acks": "all"})
    assert all(e is None for e, _, _ in produce_and_report(p, [(topic, None, b"x" * 100, None, 0)] * 300))

    c = assigned_consumer(b.bootstrap, **{"fetch.wait.max.ms": 100})
    c.assign([TopicPartition(topic, 0, 0)])
    got = []
    wait_for(lambda: got.extend(m for m in c.consume(500, 0.2) if not m.error()) or len(got) >= 300, 30,
             "the consumer to read everything")

    def fetch_waited():
        # With everything read, the next fetches wait out fetch.wait.max.ms for data.
        c.poll(0.05)
        return value(scrape(base), f"{PHASES['remote']}_sum", api="Fetch") >= 0.05
    wait_for(fetch_waited, 30, "Fetch remote time from long polls")
    c.close()
    del p

    # A fetch still waiting when its consumer closed is counted when it ends.
    def settled():
        m = scrape(base)
        counts = {api: phase_counts(m, api) for api in ("Produce", "Fetch")}
        return (m, counts) if all(len(set(c.values())) == 1 for c in counts.values()) else None
    m, counts = wait_for(settled, 10, "every phase to count every request")
    for api in ("Produce", "Fetch"):
        n = counts[api]["requests"]
        assert n >= 1, (api, counts)
        sums = {phase: value(m, f"{name}_sum", api=api) for phase, name in PHASES.items()}
        for phase in ("queue", "handle", "send", "total"):
            assert sums[phase] > 0, (api, sums)
        assert sums["total"] >= sums["handle"], (api, sums)
        parts = sums["queue"] + sums["handle"] + sums["remote"] + sums["send"]
        assert math.isclose(sums["total"], parts, rel_tol=1e-9, abs_tol=1e-6), (api, sums)
        inf = value(m, f"{PHASES['total']}_bucket", api=api, le="+Inf")
        assert inf == n, (api, inf, n)
    assert value(m, f"{PHASES['remote']}_sum", api="Fetch") >= 0.05

    assert value(m, "sluice_rocksdb_memtable_bytes") > 0
    assert value(m, "sluice_rocksdb_estimated_keys") > 0
    assert value(m, "sluice_rocksdb_pending_compaction_bytes") >= 0
    assert value(m, "sluice_rocksdb_live_sst_files_bytes") >= 0


# --- The Grafana dashboard ------------------------------------------------------------

# PromQL words that look like metric names but are not.
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
                   "unless", "offset", "inf", "nan"}
IDENTIFIER = r"[a-zA-Z_:][a-zA-Z0-9_:]*"


def promql_metric_names(expr: str) -> set[str]:
    """The metric names an expression selects, as written (`x_bucket` stays `x_bucket`):
    label matchers, ranges, offsets, grouping label lists, template variables, numbers
    and function names are dropped."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\$\{[^}]*\}|\$\w+", " ", e)
    e = re.sub(r"\boffset\s+-?\w+", " ", e)
    e = re.sub(r"\b\d+(\.\d+)?([eE][-+]?\d+)?\b", " ", e)
    names = set()
    for m in re.finditer(rf"({IDENTIFIER})(\s*\()?", e):
        if m.group(2) is None and m.group(1).lower() not in PROMQL_KEYWORDS:
            names.add(m.group(1))
    return names


def test_promql_metric_names():
    """The extractor drops functions, label matchers, ranges, grouping and variables."""
    expr = ('histogram_quantile(0.99, sum by (api, le) (rate(sluice_request_queue_seconds_bucket'
            '{instance=~"$instance", api=~"$api"}[$__rate_interval]))) / on (api) group_left '
            'sum without (instance) (sluice_requests_total offset 5m) > bool 1e-3')
    assert promql_metric_names(expr) == {"sluice_request_queue_seconds_bucket", "sluice_requests_total"}


def panels_of(dashboard: dict) -> list[dict]:
    """Every panel, those in collapsed rows included."""
    out = []
    for p in dashboard["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def dashboard_metric_names(dashboard: dict) -> set[str]:
    """Every metric name a panel target or a template variable queries."""
    names = set()
    for p in panels_of(dashboard):
        for t in p.get("targets", []):
            names |= promql_metric_names(t["expr"])
    for v in dashboard["templating"]["list"]:
        if v["type"] == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            m = re.fullmatch(rf"label_values\(\s*({IDENTIFIER})\s*(\{{[^}}]*\}})?\s*,\s*\w+\s*\)", q)
            assert m, f"variable {v['name']}: {q}"
            names.add(m.group(1))
    return names


def test_dashboard_is_valid_and_every_panel_uses_the_datasource_variable():
    """The dashboard parses as JSON, has a Prometheus datasource variable that every panel
    and target uses, `topic` and `group` variables from label_values, and unique ids."""
    d = json.loads(DASHBOARD.read_text())
    assert d["schemaVersion"] >= 36 and d["uid"] and d["title"]
    variables = {v["name"]: v for v in d["templating"]["list"]}
    ds = variables["DS_PROMETHEUS"]
    assert (ds["type"], ds["query"]) == ("datasource", "prometheus")
    for name in ("topic", "group"):
        assert variables[name]["type"] == "query"
        assert variables[name]["datasource"]["uid"] == "${DS_PROMETHEUS}"
    ids = [p["id"] for p in panels_of(d)]
    assert len(ids) == len(set(ids)), ids
    graphs = [p for p in panels_of(d) if p["type"] != "row"]
    assert len(graphs) >= 20
    for p in graphs:
        assert p["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, p["title"]
        assert p["targets"], p["title"]
        assert {"h", "w", "x", "y"} <= p["gridPos"].keys(), p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${DS_PROMETHEUS}", p["title"]
            assert t["expr"].strip(), p["title"]


def test_dashboard_queries_only_metrics_a_live_broker_exports(broker_factory, tmp_path):
    """After a workload that touches every family (produce, consume in a group, commit
    short of the end so lag exists, an error answered), every metric name the dashboard
    queries is in `/metrics`, and every family `/metrics` exports has a panel."""
    used = dashboard_metric_names(json.loads(DASHBOARD.read_text()))
    # The extractor found the latency histograms by their series names.
    for name in PHASES.values():
        assert f"{name}_bucket" in used, sorted(used)
    assert all(n.startswith("sluice_") for n in used), sorted(used)

    b, base = metrics_broker(broker_factory, **{
        "group.initial.rebalance.delay.ms": 0,
        # Tiered storage in a directory, so that the remote tier's families have samples.
        "remote.log.storage.system.enable": "true",
        "remote.storage.local.dir": str(tmp_path / "remote"),
        "remote.log.manager.task.interval.ms": 100,
        "log.retention.check.interval.ms": 100,
        # The Schema Registry, so that its families and a validation failure have samples.
        "schema.registry.listeners": f"http://127.0.0.1:{free_port()}"})
    tiered = unique_topic("dashboard-tiered")
    ta = admin(b.bootstrap)  # held until the future resolves
    ta.create_topics([NewTopic(tiered, 1, 1, config={
        "remote.storage.enable": "true", "segment.bytes": "1024", "local.retention.bytes": "1024"})])[tiered].result(30)
    tp = producer(b.bootstrap, **{"linger.ms": 0})
    for _ in range(12):  # one batch each, so that segments roll
        assert all(e is None for e, _, _ in produce_and_report(tp, [(tiered, None, b"t" * 400, None, 0)]))
    # Read from offset 0 once the first segments are only in the remote tier.
    wait_for(lambda: not (b.log_dir / f"{tiered}-0" / f"{0:020d}.log").exists(), 30,
             "the first segment to leave the local disk")
    tc = Consumer({"bootstrap.servers": b.bootstrap, "group.id": unique_topic("dashboard-tiered"),
                   "auto.offset.reset": "earliest"})
    tc.assign([TopicPartition(tiered, 0, 0)])
    remote_read = []
    wait_for(lambda: remote_read.extend(m for m in tc.consume(20, 0.2) if not m.error()) or len(remote_read) >= 12,
             30, "the tiered topic read from offset 0")
    assert [m.offset() for m in remote_read] == list(range(12))
    tc.close()
    topic = unique_topic("dashboard")
    create_topic(b.bootstrap, topic, 2)
    p = producer(b.bootstrap)
    assert all(e is None for e, _, _ in produce_and_report(p, [(topic, None, b"v" * 100, None, i % 2)
                                                              for i in range(100)]))
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": unique_topic("dashboard-group"),
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    got = []
    wait_for(lambda: got.extend(m for m in c.consume(100, 0.2) if not m.error()) or len(got) >= 100, 30,
             "the group member to read everything")
    c.commit(offsets=[TopicPartition(topic, 0, 10), TopicPartition(topic, 1, 10)], asynchronous=False)
    # An error answered: TOPIC_ALREADY_EXISTS.
    a = admin(b.bootstrap)
    try:
        a.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
        raise AssertionError("creating an existing topic succeeded")
    except KafkaException:
        pass

    # A record refused by schema validation.
    validated = unique_topic("dashboard-validated")
    a.create_topics([NewTopic(validated, 1, 1, config={"confluent.value.schema.validation": "true"})])[
        validated].result(30)
    refused = produce_and_report(producer(b.bootstrap), [(validated, None, b"not framed", None, 0)])
    assert refused[0][0] is not None and refused[0][0].code() == KafkaError.INVALID_RECORD

    # A share group member, so that the share-group families have samples.
    from confluent_kafka import ShareConsumer
    share = ShareConsumer({"bootstrap.servers": b.bootstrap, "group.id": unique_topic("dashboard-share"),
                           "fetch.wait.max.ms": 100})
    share.subscribe([topic])
    share.poll(0.5)

    # A request is counted just after its answer is flushed, so the client may be first.
    missing: list[str] = []

    def exported():
        m = scrape(base)
        missing[:] = sorted(used - m.keys())
        return m if not missing else None
    try:
        wait_for(exported, 10, "every metric the dashboard queries")
    except AssertionError:
        raise AssertionError(f"the dashboard queries metrics /metrics lacks: {missing}") from None
    c.close()
    share.close()

    _, text = get(f"{base}/metrics")
    unused = [f.name for f in text_string_to_metric_families(text)
              if not any(s.name in used for s in f.samples)]
    assert not unused, f"families without a panel: {unused}"


def test_topic_flush_messages_forces_an_fsync_per_produce(broker_factory):
    """`flush.messages=1` on one topic: 20 acks=all requests to it cost at least 20 fsyncs;
    20 to a topic with the default (no flush policy) cost none."""
    b, base = metrics_broker(broker_factory)
    a = admin(b.bootstrap)
    synced, lazy = unique_topic("flush1"), unique_topic("lazy")
    fs = a.create_topics([NewTopic(synced, 1, 1, config={"flush.messages": "1"}), NewTopic(lazy, 1, 1)])
    for f in fs.values():
        f.result(timeout=30)
    # One record per request: each is its own append.
    p = producer(b.bootstrap, **{"acks": "all", "linger.ms": 0, "max.in.flight": 1, "batch.num.messages": 1})

    def fsyncs() -> float:
        return value(scrape(base), "sluice_storage_fsyncs_total")

    before = fsyncs()
    reports = produce_and_report(p, [(lazy, None, b"v%d" % i, None, 0) for i in range(20)])
    assert [r[2] for r in reports] == list(range(20))
    assert fsyncs() == before, "a topic without a flush policy must not be fsynced per request"
    reports = produce_and_report(p, [(synced, None, b"v%d" % i, None, 0) for i in range(20)])
    assert [r[2] for r in reports] == list(range(20))
    assert fsyncs() >= before + 20
