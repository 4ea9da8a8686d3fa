"""Graceful shutdown under load: SIGTERM while an idempotent confluent-kafka producer
writes with acks=all; the broker exits 0 within seconds, the next start reports no
recovery work, and every acknowledged record is there once, in order."""

from __future__ import annotations

import re
import threading
import time

from confluent_kafka import Producer

from e2e import consume_exact, create_topic, unique_topic, wait_for


def test_sigterm_under_load_exits_cleanly_and_loses_nothing(broker_factory):
    b = broker_factory()
    topic = unique_topic("sigterm")
    create_topic(b.bootstrap, topic, 1)
    acked: list[int] = []
    errors: list[str] = []

    def delivered(err, msg) -> None:
        if err is None:
            acked.append(int(msg.value()))
        else:
            errors.append(str(err))

    p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 2, "message.timeout.ms": 5000})
    stop = threading.Event()

    def load() -> None:
        i = 0
        while not stop.is_set():
            try:
                p.produce(topic, value=str(i).encode(), partition=0, on_delivery=delivered)
                i += 1
            except BufferError:
                pass
            p.poll(0.001)
    t = threading.Thread(target=load, daemon=True)
    t.start()
    wait_for(lambda: len(acked) >= 2000, 30, "the producer to get 2,000 records acknowledged")

    started = time.monotonic()
    code = b.stop()
    took = time.monotonic() - started
    stop.set()
    t.join(10)
    p.flush(10)
    assert code == 0, f"exit code {code}"
    assert took < 10, f"shutdown took {took:.1f} s"
    acked_before_stop = sorted(acked)
    assert acked_before_stop == list(range(len(acked_before_stop))), "acknowledgements out of order"

    b.start()
    starts = b.stderr.read_text().split("===== start #")
    line = [ln for ln in starts[-1].splitlines() if "storage recovered" in ln]
    assert line and re.search(r"recovery_work=0\b", line[0]), line
    records = consume_exact(b.bootstrap, topic, {0: len(acked_before_stop)})[0]
    assert [int(r.value) for r in records] == acked_before_stop
    assert [r.offset for r in records] == list(range(len(records)))

