"""Transactional confluent-kafka clients as their own processes, driven by test_transactions.py
so that they can be killed with SIGKILL at any point.

    python eos_job.py copy '{"bootstrap": ..., "input": ..., "output": ..., "group": ...,
                             "txn_id": ..., "instance": ..., "batch": 500}'

A consume-transform-produce job with exactly-once semantics (KIP-98, KIP-447), written the
way librdkafka's documentation says such a job is written: a transactional producer
(`transactional.id` fixed, so that a restarted job fences the previous one and aborts its
open transaction in init_transactions()) and a read_committed consumer without auto
commit, here a static member (`group.instance.id`) so that a restarted job takes its
partitions back without waiting for the killed one's session to expire. Each round:
consume up to `batch` messages, begin_transaction, produce every message to the SAME
partition number of the output topic with value b"out-" + value (key unchanged),
send_offsets_to_transaction(consumer positions, consumer group metadata),
commit_transaction. Errors are handled as documented: a retriable error retries the call,
an error that requires an abort aborts the transaction and rewinds the consumer to the
committed offsets, anything else is fatal (exit 3).

    python eos_job.py txn '{"bootstrap": ..., "topic": ..., "txn_id": ...,
                            "values": [[partition, "value"], ...], "commit_timeout": 5}'

One transaction: init_transactions, begin, produce the values, flush, then
commit_transaction(commit_timeout). Whatever the outcome, it then waits for a line on
stdin: "retry" calls commit_transaction again (timeout 60 s), "exit" (or EOF) exits 0.

Both print everything they do on stdout as one JSON object per line:

    {"ev": "init"}                                     (init_transactions returned)
    {"ev": "assign" | "revoke" | "lost", "partitions": [p, ...]}
    {"ev": "begin", "txn": n, "count": k}              (begin_transaction returned; k records follow)
    {"ev": "offsets", "txn": n}                        (produced; send_offsets_to_transaction next)
    {"ev": "committing", "txn": n}                     (commit_transaction next)
    {"ev": "commit", "txn": n, "offsets": {"p": next_offset, ...}}   (committed)
    {"ev": "aborted", "txn": n, "rewound": {"p": offset, ...}}
    {"ev": "txn_error", "call": name, "code": int, "name": str, "str": str,
     "retriable": bool, "abort": bool, "fatal": bool}
    {"ev": "consume_error", "code": int, "name": str, "str": str, "fatal": bool}
    {"ev": "idle"}                                     (a consume() came back empty after data)
    {"ev": "fatal", "why": str}                        (then exit 3)
    {"ev": "flushed", "deliveries": [[partition, offset, error-or-null], ...]}   (txn mode)
    {"ev": "committed"} | {"ev": "commit_failed", ...txn_error fields}            (txn mode)
    {"ev": "stopped"}

The copy job runs until a line "stop" arrives on stdin (or EOF), then closes its clients
between transactions and exits 0.
"""

from __future__ import annotations

import json
import sys
import threading
import time

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
)

_out_lock = threading.Lock()

# how long a retriable error is retried before the job gives up (exit 3): within the
# test's deadlines, so that a broken broker makes the job fail instead of spin
RETRY_FOR = 60.0


def emit(**ev) -> None:
    line = json.dumps(ev, separators=(",", ":"))
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def fatal(why: str) -> None:
    emit(ev="fatal", why=why)
    sys.stdout.flush()
    sys.exit(3)


def error_fields(err: KafkaError) -> dict:
    return {"code": err.code(), "name": err.name(), "str": err.str(), "retriable": err.retriable(),
            "abort": err.txn_requires_abort(), "fatal": err.fatal()}


def txn_call(call: str, fn) -> bool:
    """Runs one transactional API call as librdkafka documents: retriable errors are retried,
    True on success, False when the transaction must be aborted; any other error is fatal."""
    deadline = time.monotonic() + RETRY_FOR
    while True:
        try:
            fn()
            return True
        except KafkaException as e:
            err = e.args[0]
            emit(ev="txn_error", call=call, **error_fields(err))
            if err.fatal():
                fatal(f"{call}: {err.name()}")
            if err.txn_requires_abort():
                return False
            if err.retriable() and time.monotonic() < deadline:
                continue
            fatal(f"{call}: {err.name()} (not retriable, or retried for {RETRY_FOR}s)")


def stdin_watcher(stop: threading.Event, commands: list | None = None, cond: threading.Condition | None = None):
    def run():
        for line in sys.stdin:
            word = line.strip()
            if commands is not None and cond is not None:
                with cond:
                    commands.append(word)
                    cond.notify_all()
            if word in ("stop", "exit"):
                break
        stop.set()
        if cond is not None:
            with cond:
                cond.notify_all()

    threading.Thread(target=run, daemon=True).start()


# --- the consume-transform-produce job ---------------------------------------------------------

def copy_job(cfg: dict) -> int:
    stop = threading.Event()
    stdin_watcher(stop)

    producer = Producer({
        "bootstrap.servers": cfg["bootstrap"],
        "transactional.id": cfg["txn_id"],
        "linger.ms": 5,
        "transaction.timeout.ms": int(cfg.get("transaction_timeout_ms", 30000)),
        "reconnect.backoff.max.ms": 1000,
        # librdkafka's debug contexts on stderr, for a failure's investigation
        **({"debug": cfg["debug"]} if cfg.get("debug") else {}),
    })
    consumer = Consumer({
        "bootstrap.servers": cfg["bootstrap"],
        "group.id": cfg["group"],
        "group.instance.id": cfg["instance"],
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 500,
        "reconnect.backoff.max.ms": 1000,
    })
    output = cfg["output"]
    batch = int(cfg.get("batch", 500))

    # fences the previous instance: its open transaction is aborted, a commit it had started
    # is completed, before this one reads the committed offsets
    if not txn_call("init_transactions", lambda: producer.init_transactions(30)):
        fatal("init_transactions asked for an abort")
    emit(ev="init")

    def parts(ps) -> list:
        return sorted(tp.partition for tp in ps)

    consumer.subscribe(
        [cfg["input"]],
        on_assign=lambda c, ps: emit(ev="assign", partitions=parts(ps)),
        on_revoke=lambda c, ps: emit(ev="revoke", partitions=parts(ps)),
        on_lost=lambda c, ps: emit(ev="lost", partitions=parts(ps)),
    )

    def rewind() -> dict:
        """After an abort: back to the committed offsets (the beginning where none are)."""
        assignment = consumer.assignment()
        if not assignment:
            return {}
        committed = consumer.committed(assignment, timeout=30)
        out = {}
        for tp in committed:
            if tp.error is not None:
                fatal(f"committed() for partition {tp.partition}: {tp.error}")
            if tp.offset < 0:
                tp.offset = OFFSET_BEGINNING
            consumer.seek(tp)
            out[str(tp.partition)] = tp.offset
        return out

    txn = 0
    had_data = False
    while not stop.is_set():
        msgs = consumer.consume(num_messages=batch, timeout=0.5)
        records = []
        for m in msgs:
            err = m.error()
            if err is None:
                records.append(m)
            elif err.code() != KafkaError._PARTITION_EOF:
                emit(ev="consume_error", code=err.code(), name=err.name(), str=err.str(), fatal=err.fatal())
                if err.fatal():
                    fatal(f"consumer: {err.name()}")
        if not records:
            if had_data:
                emit(ev="idle")
                had_data = False
            continue
        had_data = True

        try:
            producer.begin_transaction()
        except KafkaException as e:
            fatal(f"begin_transaction: {e.args[0].name()}")
        emit(ev="begin", txn=txn, count=len(records))
        ok = True
        for m in records:
            while ok:
                try:
                    producer.produce(output, key=m.key(), value=b"out-" + m.value(), partition=m.partition())
                    break
                except BufferError:
                    producer.poll(0.05)
                except KafkaException as e:
                    # produce() itself fails once the transaction has failed: fatally (e.g.
                    # fenced: _FATAL) or abortably (_STATE); the latter is aborted below
                    err = e.args[0]
                    emit(ev="txn_error", call="produce", **error_fields(err))
                    if err.fatal() or err.code() == KafkaError._FATAL:
                        fatal(f"produce: {err.name()}")
                    ok = False
            if not ok:
                break
            producer.poll(0)

        positions = [tp for tp in consumer.position(consumer.assignment()) if tp.offset >= 0]
        if ok:
            emit(ev="offsets", txn=txn)
            ok = txn_call("send_offsets_to_transaction", lambda: producer.send_offsets_to_transaction(
                positions, consumer.consumer_group_metadata(), 30))
        if ok:
            emit(ev="committing", txn=txn)
            ok = txn_call("commit_transaction", lambda: producer.commit_transaction(30))
        if ok:
            emit(ev="commit", txn=txn, offsets={str(tp.partition): tp.offset for tp in positions})
        else:
            if not txn_call("abort_transaction", lambda: producer.abort_transaction(30)):
                fatal("abort_transaction asked for an abort")
            emit(ev="aborted", txn=txn, rewound=rewind())
        txn += 1

    consumer.close()
    producer.flush(10)
    emit(ev="stopped")
    return 0


# --- one transaction, for the crash tests -------------------------------------------------------

def one_txn(cfg: dict) -> int:
    stop = threading.Event()
    commands: list[str] = []
    cond = threading.Condition()
    stdin_watcher(stop, commands, cond)

    producer = Producer({
        "bootstrap.servers": cfg["bootstrap"],
        "transactional.id": cfg["txn_id"],
        "linger.ms": 5,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 500,
    })
    if not txn_call("init_transactions", lambda: producer.init_transactions(30)):
        fatal("init_transactions asked for an abort")
    emit(ev="init")
    producer.begin_transaction()
    deliveries: list = [None] * len(cfg["values"])

    def cb_for(i):
        def cb(err, msg):
            deliveries[i] = [msg.partition(), msg.offset(), None if err is None else err.name()]
        return cb

    for i, (partition, value) in enumerate(cfg["values"]):
        producer.produce(cfg["topic"], value=value.encode(), partition=partition, on_delivery=cb_for(i))
    remaining = producer.flush(30)
    if remaining:
        fatal(f"{remaining} messages undelivered after 30 s")
    emit(ev="flushed", deliveries=deliveries)

    def commit(timeout: float) -> None:
        try:
            producer.commit_transaction(timeout)
        except KafkaException as e:
            emit(ev="commit_failed", **error_fields(e.args[0]))
        else:
            emit(ev="committed")

    emit(ev="committing")
    commit(float(cfg.get("commit_timeout", 5)))
    while True:
        with cond:
            while not commands and not stop.is_set():
                cond.wait()
            word = commands.pop(0) if commands else "exit"
        if word == "retry":
            commit(60)
        elif word in ("exit", "stop"):
            break
    emit(ev="stopped")
    return 0


def main() -> int:
    mode, cfg = sys.argv[1], json.loads(sys.argv[2])
    if mode == "copy":
        return copy_job(cfg)
    if mode == "txn":
        return one_txn(cfg)
    raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    sys.exit(main())
