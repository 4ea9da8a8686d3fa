"""aiokafka (asyncio, pure Python) against sluice: an idempotent producer, a consumer group
that commits, and a transaction read back with read_committed."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from e2e import unique_topic

N = 500


async def _create(bootstrap: str, topic: str, partitions: int) -> None:
    a = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await a.start()
    try:
        await a.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    finally:
        await a.close()


async def _drain(consumer: AIOKafkaConsumer, n: int, timeout: float = 30) -> list:
    got = []
    deadline = asyncio.get_running_loop().time() + timeout
    while len(got) < n:
        left = deadline - asyncio.get_running_loop().time()
        assert left > 0, f"received {len(got)} of {n} records"
        batches = await consumer.getmany(timeout_ms=500)
        for records in batches.values():
            got.extend(records)
    return got


def test_idempotent_produce_then_group_consume_and_commit(broker):
    topic = unique_topic("aio")

    async def run():
        await _create(broker.bootstrap, topic, 3)
        p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True)
        await p.start()
        try:
            sent = {}
            for i in range(N):
                md = await p.send_and_wait(topic, f"v{i}".encode(), key=f"k{i}".encode(), partition=i % 3)
                sent[(md.partition, md.offset)] = i
        finally:
            await p.stop()
        # Each partition's offsets are contiguous from 0.
        for part in range(3):
            offsets = sorted(o for (pp, o) in sent if pp == part)
            assert offsets == list(range(len(offsets)))

        c = AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id="aio-group",
                             auto_offset_reset="earliest", enable_auto_commit=False)
        await c.start()
        try:
            got = await _drain(c, N)
            await c.commit()
            committed = {part: await c.committed(TopicPartition(topic, part)) for part in range(3)}
        finally:
            await c.stop()
        assert sorted((r.key, r.value) for r in got) == sorted(
            (f"k{i}".encode(), f"v{i}".encode()) for i in range(N))
        for r in got:
            assert sent[(r.partition, r.offset)] == int(r.value[1:])
        ends = {part: len([1 for (pp, _) in sent if pp == part]) for part in range(3)}
        assert committed == ends

    asyncio.run(run())


def test_transaction_committed_and_aborted(broker):
    topic = unique_topic("aiotx")

    async def run():
        await _create(broker.bootstrap, topic, 1)
        p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, transactional_id="aio-tx")
        await p.start()
        try:
            async with p.transaction():
                for i in range(3):
                    await p.send(topic, f"keep-{i}".encode(), partition=0)
            await p.begin_transaction()
            await p.send(topic, b"drop", partition=0)
            await p.abort_transaction()
            async with p.transaction():
                await p.send(topic, b"keep-3", partition=0)
        finally:
            await p.stop()

        c = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, isolation_level="read_committed",
                             auto_offset_reset="earliest", enable_auto_commit=False)
        await c.start()
        try:
            tp = TopicPartition(topic, 0)
            c.assign([tp])
            await c.seek_to_beginning(tp)
            got = await _drain(c, 4)
        finally:
            await c.stop()
        # Offsets: 3 records + marker (0-3), aborted record + marker (4-5), record + marker (6-7).
        assert [(r.offset, r.value) for r in got] == [
            (0, b"keep-0"), (1, b"keep-1"), (2, b"keep-2"), (6, b"keep-3")]

    asyncio.run(run())
