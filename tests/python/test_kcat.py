"""kcat (librdkafka's CLI) against sluice: 100,000 keyed messages with headers per codec,
read back byte for byte with their offsets; metadata listing as JSON."""

from __future__ import annotations

import json
import subprocess

import pytest

from e2e import unique_topic

N = 100_000
HEADERS = [("hdr", "val"), ("trace-id", "abc123")]
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def kcat(*args: str, input_path=None, timeout: float = 180) -> subprocess.CompletedProcess:
    argv = ["kcat", *args]
    stdin = open(input_path, "rb") if input_path else subprocess.DEVNULL
    try:
        r = subprocess.run(argv, stdin=stdin, capture_output=True, timeout=timeout)
    finally:
        if input_path:
            stdin.close()
    assert r.returncode == 0, f"{argv} exited {r.returncode}\nstderr:\n{r.stderr.decode(errors='replace')[-4000:]}"
    return r


def lines(codec: str) -> list[tuple[str, str]]:
    """Deterministic, distinct keys and values of varying length and compressibility."""
    out = []
    for i in range(N):
        key = f"{codec}-key-{i:06d}"
        filler = "abcdefghijklmnopqrstuvwxyz"[i % 26] * (i % 53)
        value = f"value-{i:06d}-{(i * 2654435761) % 2**32:08x}-{filler}"
        out.append((key, value))
    return out


@pytest.mark.parametrize("codec", CODECS)
def test_kcat_roundtrip_100k(broker, tmp_path, codec):
    topic = unique_topic(f"kcat-{codec}")
    data = lines(codec)
    src = tmp_path / "in.txt"
    src.write_text("".join(f"{k}:{v}\n" for k, v in data))

    hdr_args = [a for name, val in HEADERS for a in ("-H", f"{name}={val}")]
    r = kcat("-P", "-b", broker.bootstrap, "-t", topic, "-p", "0", "-K:", *hdr_args, "-z", codec,
             "-X", "linger.ms=20", "-l", str(src))
    assert b"Delivery failed" not in r.stderr, r.stderr.decode(errors="replace")[-2000:]
    assert b"ERROR" not in r.stderr, r.stderr.decode(errors="replace")[-2000:]

    r = kcat("-C", "-b", broker.bootstrap, "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q",
             "-f", "%o|%k|%s|%h\n")
    got = r.stdout.decode()
    hdrs = ",".join(f"{n}={v}" for n, v in HEADERS)
    want = "".join(f"{i}|{k}|{v}|{hdrs}\n" for i, (k, v) in enumerate(data))
    if got != want:
        got_lines, want_lines = got.splitlines(), want.splitlines()
        first = next((i for i, (a, b) in enumerate(zip(got_lines, want_lines)) if a != b),
                     min(len(got_lines), len(want_lines)))
        pytest.fail(f"{codec}: read {len(got_lines)} lines, want {len(want_lines)}; first difference at line "
                    f"{first}:\n got: {got_lines[first] if first < len(got_lines) else '<eof>'}\n"
                    f"want: {want_lines[first] if first < len(want_lines) else '<eof>'}")


def metadata(bootstrap: str, topic: str | None = None) -> dict:
    args = ["-L", "-b", bootstrap, "-J"]
    if topic:
        args += ["-t", topic]
    return json.loads(kcat(*args, timeout=60).stdout)


def test_kcat_metadata_lists_topics(broker_factory):
    b = broker_factory(overrides={"num.partitions": 4})
    topics = {unique_topic("kcat-meta-a"): 4, unique_topic("kcat-meta-b"): 4}
    for t in topics:
        # produce one keyed message per topic: auto-created with num.partitions
        r = subprocess.run(["kcat", "-P", "-b", b.bootstrap, "-t", t, "-K:"], input=b"k:v\n",
                           capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr.decode(errors="replace")

    md = metadata(b.bootstrap)
    assert md["brokers"] == [{"id": md["brokers"][0]["id"], "name": b.bootstrap}], md["brokers"]
    node = md["brokers"][0]["id"]
    by_name = {t["topic"]: t for t in md["topics"]}
    assert set(topics) <= set(by_name), f"listed: {sorted(by_name)}"
    for name, n in topics.items():
        t = by_name[name]
        assert "error" not in t, t
        parts = sorted(t["partitions"], key=lambda p: p["partition"])
        assert [p["partition"] for p in parts] == list(range(n))
        for p in parts:
            assert p["leader"] == node, p
            assert p["replicas"] == [{"id": node}], p
            assert p["isrs"] == [{"id": node}], p
    # nothing but the topics this test made (and no internal topics exposed as user topics)
    assert {n for n in by_name if not n.startswith("__")} == set(topics)

    one = metadata(b.bootstrap, next(iter(topics)))
    assert [t["topic"] for t in one["topics"]] == [next(iter(topics))]
