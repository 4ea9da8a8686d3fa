"""kafkajs (pure JavaScript client) producing to sluice; read back with confluent-kafka.

kafkajs consumers need consumer groups, which sluice does not serve yet, so only its
producer and admin client are exercised here (tests/js/produce.js)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from e2e import consume_exact, unique_topic

JS_DIR = Path(__file__).resolve().parents[1] / "js"
N = 1000


def run_produce(bootstrap: str, topic: str, count: int, mode: str, partitions: int | None = None) -> dict:
    argv = ["node", str(JS_DIR / "produce.js"), bootstrap, topic, str(count), mode]
    if partitions:
        argv.append(str(partitions))
    r = subprocess.run(argv, capture_output=True, timeout=120, cwd=JS_DIR,
                       env={**os.environ, "KAFKAJS_NO_PARTITIONER_WARNING": "1"})
    assert r.returncode == 0, f"produce.js exited {r.returncode}\n{r.stderr.decode(errors='replace')[-4000:]}"
    return json.loads(r.stdout)


def expected(i: int):
    return (f"js-key-{i}".encode(), (f"js-value-{i}-" + "z" * (i % 31)).encode(),
            (("seq", str(i).encode()), ("multi", b"a"), ("multi", b"b")))


@pytest.mark.parametrize("mode", ["default", "idempotent"])
def test_kafkajs_auto_created_topic(broker, mode):
    topic = unique_topic(f"js-{mode}")
    out = run_produce(broker.bootstrap, topic, N, mode)
    assert out["created"] == []
    assert [s["results"] for s in out["sends"]] == \
        [[{"topic": topic, "partition": 0, "errorCode": 0, "baseOffset": str(first)}]
         for first in range(0, N, 100)]
    got = consume_exact(broker.bootstrap, topic, {0: N})
    assert [(r.offset, r.key, r.value, r.headers) for r in got[0]] == [(i, *expected(i)) for i in range(N)]


@pytest.mark.parametrize("mode", ["default", "idempotent"])
def test_kafkajs_admin_created_topic(broker, mode):
    parts = 3
    topic = unique_topic(f"js-admin-{mode}")
    out = run_produce(broker.bootstrap, topic, N, mode, parts)
    # createTopics resolves true when created, false when the topic already existed
    assert out["created"] == [True, False]
    assert out["metadata"] == [{"name": topic, "partitions": list(range(parts))}]
    for send in out["sends"]:
        first, count = send["first"], send["count"]
        want = []
        for q in range(parts):
            before = len([i for i in range(first) if i % parts == q])
            want.append({"topic": topic, "partition": q, "errorCode": 0, "baseOffset": str(before)})
        assert sorted(send["results"], key=lambda r: r["partition"]) == want, f"send of {first}..{first + count}"

    counts = {q: len(range(q, N, parts)) for q in range(parts)}
    got = consume_exact(broker.bootstrap, topic, counts)
    for q in range(parts):
        assert [(r.offset, r.key, r.value, r.headers) for r in got[q]] == \
            [(off, *expected(i)) for off, i in enumerate(range(q, N, parts))]
