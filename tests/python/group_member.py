"""One confluent-kafka consumer-group member as its own process, driven by test_groups.py.

    python group_member.py '{"bootstrap": ..., "group": ..., "topics": [...], "conf": {...},
                             "commit": "none" | "sync", "batch": 50, "delay_ms": 0}'

It subscribes, polls one message at a time and "processes" each by printing it; with
commit "sync" it commits the processed offsets synchronously after every batch (up to
`batch` messages, or fewer when poll() comes back empty) and in the revoke callback, so
every processed message is committed before its partition can move. Everything it does
is printed on stdout as one JSON object per line:

    {"ev": "started"}
    {"ev": "assign" | "revoke" | "lost", "partitions": [[topic, p], ...]}   (callback arguments)
    {"ev": "assignment", "partitions": [[topic, p], ...]}                   (whole assignment, on change)
    {"ev": "msg", "t": topic, "p": p, "o": offset, "k": key}                (processed)
    {"ev": "commit", "offsets": [[topic, p, next_offset], ...]}             (commit succeeded)
    {"ev": "commit_error", "code": int, "name": str, "str": str}
    {"ev": "error", "code": int, "name": str, "str": str}                   (consumer error events)
    {"ev": "closed"}

A line "close" on stdin (or EOF) makes it commit what is pending, close() the consumer
(leaving the group) and exit 0; "subscribe t1,t2" changes the subscription. SIGKILL is the
crash case.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

_out_lock = threading.Lock()


def emit(**ev) -> None:
    line = json.dumps(ev, separators=(",", ":"))
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def tps(parts) -> list:
    return sorted([tp.topic, tp.partition] for tp in parts)


def main() -> int:
    cfg = json.loads(sys.argv[1])
    conf = {
        "bootstrap.servers": cfg["bootstrap"],
        "group.id": cfg["group"],
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
        "reconnect.backoff.max.ms": 1000,
    }
    for k, v in cfg.get("conf", {}).items():  # null removes a default
        if v is None:
            conf.pop(k, None)
        else:
            conf[k] = v
    committing = cfg.get("commit", "none") == "sync"
    batch_max = int(cfg.get("batch", 50))
    delay = float(cfg.get("delay_ms", 0)) / 1000.0

    stop = threading.Event()
    commands: queue.Queue = queue.Queue()

    def read_stdin():
        for line in sys.stdin:
            if line.strip() == "close":
                break
            if line.startswith("subscribe "):
                commands.put(line.split(None, 1)[1].strip().split(","))
        stop.set()

    threading.Thread(target=read_stdin, daemon=True).start()

    c = Consumer(conf)
    pending: dict[tuple[str, int], int] = {}

    def commit_pending() -> None:
        if not committing or not pending:
            pending.clear()
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in sorted(pending.items())]
        pending.clear()
        try:
            res = c.commit(offsets=offsets, asynchronous=False)
        except KafkaException as e:
            err = e.args[0]
            emit(ev="commit_error", code=err.code(), name=err.name(), str=err.str())
            return
        bad = [tp for tp in (res or []) if tp.error is not None]
        if bad:
            emit(ev="commit_error", code=bad[0].error.code(), name=bad[0].error.name(),
                 str=f"{bad[0].topic}[{bad[0].partition}]: {bad[0].error.str()}")
            return
        emit(ev="commit", offsets=[[tp.topic, tp.partition, tp.offset] for tp in offsets])

    def on_assign(consumer, parts):
        emit(ev="assign", partitions=tps(parts))

    def on_revoke(consumer, parts):
        commit_pending()
        emit(ev="revoke", partitions=tps(parts))

    def on_lost(consumer, parts):
        pending.clear()
        emit(ev="lost", partitions=tps(parts))

    c.subscribe(cfg["topics"], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    emit(ev="started")

    last_assignment = None
    in_batch = 0

    def report_assignment():
        nonlocal last_assignment
        now = tps(c.assignment())
        if now != last_assignment:
            last_assignment = now
            emit(ev="assignment", partitions=now)

    while not stop.is_set():
        try:
            topics = commands.get_nowait()
        except queue.Empty:
            pass
        else:
            commit_pending()
            c.subscribe(topics, on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
            emit(ev="subscribed", topics=topics)
        m = c.poll(0.1)
        report_assignment()
        if m is None:
            commit_pending()
            in_batch = 0
            continue
        if m.error():
            if m.error().code() != KafkaError._PARTITION_EOF:
                e = m.error()
                emit(ev="error", code=e.code(), name=e.name(), str=e.str())
            continue
        if delay:
            time.sleep(delay)  # simulated processing work
        key = m.key()
        emit(ev="msg", t=m.topic(), p=m.partition(), o=m.offset(),
             k=None if key is None else key.decode(errors="replace"))
        pending[(m.topic(), m.partition())] = m.offset() + 1
        in_batch += 1
        if in_batch >= batch_max:
            commit_pending()
            in_batch = 0

    commit_pending()
    c.close()
    emit(ev="closed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
