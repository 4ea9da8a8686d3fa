#!/usr/bin/env node
// Produces deterministic messages with kafkajs and prints what happened as JSON on stdout.
//
//   node produce.js BOOTSTRAP TOPIC COUNT MODE [PARTITIONS]
//
// MODE is "default" or "idempotent". With PARTITIONS, the topic is first created with
// kafkajs' admin client (createTopics is called twice: the second call must report that
// the topic exists) and message i goes to partition i % PARTITIONS; without it, messages
// carry no partition and the topic is auto-created by the broker.
//
// Message i: key "js-key-<i>", value "js-value-<i>-" + "z" * (i % 31),
// headers { seq: "<i>", multi: ["a", "b"] }. Messages are sent in chunks of CHUNK per
// producer.send() call; the output lists each call's RecordMetadata.
'use strict'

const { Kafka, logLevel } = require('kafkajs')

const CHUNK = 100

function message(i, partitions) {
  const m = {
    key: `js-key-${i}`,
    value: `js-value-${i}-` + 'z'.repeat(i % 31),
    headers: { seq: String(i), multi: ['a', 'b'] },
  }
  if (partitions) m.partition = i % partitions
  return m
}

// kafkajs logs through console by default; keep stdout for the JSON result.
const stderrLogger = () => ({ namespace, level, label, log }) => {
  process.stderr.write(`${label} [${namespace}] ${JSON.stringify(log)}\n`)
}

async function main() {
  const [bootstrap, topic, countArg, mode, partitionsArg] = process.argv.slice(2)
  const count = Number(countArg)
  const partitions = partitionsArg ? Number(partitionsArg) : 0
  if (!bootstrap || !topic || !Number.isInteger(count) || !['default', 'idempotent'].includes(mode)) {
    throw new Error('usage: produce.js BOOTSTRAP TOPIC COUNT default|idempotent [PARTITIONS]')
  }
  const kafka = new Kafka({
    clientId: 'sluice-e2e-kafkajs',
    brokers: [bootstrap],
    logLevel: logLevel.WARN,
    logCreator: stderrLogger,
  })
  const out = { created: [], sends: [] }

  if (partitions) {
    const admin = kafka.admin()
    await admin.connect()
    for (let i = 0; i < 2; i++) {
      out.created.push(await admin.createTopics({
        topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }],
        waitForLeaders: true,
      }))
    }
    const md = await admin.fetchTopicMetadata({ topics: [topic] })
    out.metadata = md.topics.map(t => ({ name: t.name, partitions: t.partitions.map(p => p.partitionId).sort() }))
    await admin.disconnect()
  }

  const producer = mode === 'idempotent'
    ? kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
    : kafka.producer()
  await producer.connect()
  for (let start = 0; start < count; start += CHUNK) {
    const messages = []
    for (let i = start; i < Math.min(count, start + CHUNK); i++) messages.push(message(i, partitions))
    const res = await producer.send({ topic, messages })
    out.sends.push({
      first: start,
      count: messages.length,
      results: res.map(r => ({
        topic: r.topicName, partition: r.partition, errorCode: r.errorCode, baseOffset: String(r.baseOffset),
      })),
    })
  }
  await producer.disconnect()
  process.stdout.write(JSON.stringify(out) + '\n')
}

main().catch(err => {
  process.stderr.write(`produce.js failed: ${err && err.stack ? err.stack : err}\n`)
  process.exit(1)
})
