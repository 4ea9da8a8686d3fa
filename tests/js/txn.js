#!/usr/bin/env node
// kafkajs transactions against the broker; prints what happened as JSON on stdout.
//
//   node txn.js BOOTSTRAP TOPIC TRANSACTIONAL_ID GROUP_PREFIX ABORTED COMMITTED
//
// Creates TOPIC with 2 partitions (admin.createTopics), then with a transactional producer
// (transactionalId, idempotent, maxInFlightRequests 1):
//   - a transaction that sends ABORTED messages (message i: key "a-<i>", value
//     "js-aborted-<i>", partition i % 2) and the offsets {0: 1, 1: 1} of group
//     GROUP_PREFIX-offsets (sendOffsets), then aborts;
//   - a transaction that sends COMMITTED messages (key "c-<j>", value "js-committed-<j>",
//     partition j % 2) and the offsets {0: 3, 1: 2}, then commits.
// Reads the group's offsets back (admin.fetchOffsets), then consumes TOPIC from the beginning
// with two consumer groups, readUncommitted false (GROUP_PREFIX-rc) and true (GROUP_PREFIX-ru),
// each until it has seen the last committed message of every partition (anything before it
// in the partition, aborted or not, was delivered by then: messages come in offset order).
//
// Output: { created, abortedSend, committedSend: [{partition, errorCode, baseOffset}],
//           fetchOffsets: [{topic, partitions: [{partition, offset}]}],
//           readCommitted, readUncommitted: [{partition, offset, key, value}] }
'use strict'

const { Kafka, logLevel } = require('kafkajs')

const DEADLINE_MS = 60000

const stderrLogger = () => ({ namespace, level, label, log }) => {
  process.stderr.write(`${label} [${namespace}] ${JSON.stringify(log)}\n`)
}

async function waitFor(cond, what, timeoutMs) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = cond()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise(r => setTimeout(r, 50)) // poll interval of the wait, not a wait for a condition
  }
}

function sendResults(res) {
  return res.map(r => ({ partition: r.partition, errorCode: r.errorCode, baseOffset: String(r.baseOffset) }))
    .sort((a, b) => a.partition - b.partition)
}

async function consumeUntil(kafka, groupId, topic, readUncommitted, last, timeoutMs) {
  const consumer = kafka.consumer({
    groupId,
    readUncommitted,
    sessionTimeout: 10000,
    rebalanceTimeout: 10000,
    heartbeatInterval: 500,
    maxWaitTimeInMs: 200,
  })
  const got = []
  const seen = {}
  let crash = null
  consumer.on(consumer.events.CRASH, e => { crash = e.payload.error })
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      got.push({
        partition,
        offset: message.offset,
        key: message.key && message.key.toString(),
        value: message.value && message.value.toString(),
      })
      seen[partition] = Math.max(seen[partition] ?? -1, Number(message.offset))
    },
  })
  await waitFor(() => {
    if (crash) throw new Error(`consumer ${groupId} crashed: ${crash && crash.stack ? crash.stack : crash}`)
    return Object.keys(last).every(p => (seen[p] ?? -1) >= last[p])
  }, `${groupId} to reach offsets ${JSON.stringify(last)}`, timeoutMs)
  await consumer.disconnect()
  return got
}

async function main() {
  const [bootstrap, topic, transactionalId, groupPrefix, abortedArg, committedArg] = process.argv.slice(2)
  const nAborted = Number(abortedArg)
  const nCommitted = Number(committedArg)
  if (!bootstrap || !topic || !transactionalId || !groupPrefix || !Number.isInteger(nAborted) || !Number.isInteger(nCommitted)) {
    throw new Error('usage: txn.js BOOTSTRAP TOPIC TRANSACTIONAL_ID GROUP_PREFIX ABORTED COMMITTED')
  }
  const started = Date.now()
  const left = () => Math.max(1000, DEADLINE_MS - (Date.now() - started))

  const kafka = new Kafka({
    clientId: 'sluice-e2e-kafkajs-txn',
    brokers: [bootstrap],
    logLevel: logLevel.WARN,
    logCreator: stderrLogger,
  })
  const out = {}

  const admin = kafka.admin()
  await admin.connect()
  out.created = await admin.createTopics({
    topics: [{ topic, numPartitions: 2, replicationFactor: 1 }],
    waitForLeaders: true,
  })

  const producer = kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1, transactionTimeout: 30000 })
  await producer.connect()
  const offsetsGroup = `${groupPrefix}-offsets`
  const offsets = (o0, o1) => ({
    consumerGroupId: offsetsGroup,
    topics: [{ topic, partitions: [{ partition: 0, offset: String(o0) }, { partition: 1, offset: String(o1) }] }],
  })

  const aborted = []
  for (let i = 0; i < nAborted; i++) aborted.push({ key: `a-${i}`, value: `js-aborted-${i}`, partition: i % 2 })
  const t1 = await producer.transaction()
  // send() resolves once the records are acknowledged: they are in the log before the abort
  out.abortedSend = sendResults(await t1.send({ topic, messages: aborted }))
  await t1.sendOffsets(offsets(1, 1))
  await t1.abort()

  const committed = []
  for (let j = 0; j < nCommitted; j++) committed.push({ key: `c-${j}`, value: `js-committed-${j}`, partition: j % 2 })
  const t2 = await producer.transaction()
  out.committedSend = sendResults(await t2.send({ topic, messages: committed }))
  await t2.sendOffsets(offsets(3, 2))
  await t2.commit()
  await producer.disconnect()

  // the committed transaction's offsets are applied when its markers are written, which may
  // be after commit() resolved: read until they show (or the deadline), report the last read
  const fetchDeadline = Date.now() + Math.min(20000, left())
  for (;;) {
    const fetched = await admin.fetchOffsets({ groupId: offsetsGroup, topics: [topic] })
    out.fetchOffsets = fetched.map(t => ({
      topic: t.topic,
      partitions: t.partitions.map(p => ({ partition: p.partition, offset: p.offset })).sort((a, b) => a.partition - b.partition),
    }))
    const parts = out.fetchOffsets.flatMap(t => t.partitions)
    if (parts.length === 2 && parts[0].offset === '3' && parts[1].offset === '2') break
    if (Date.now() > fetchDeadline) break
    await new Promise(r => setTimeout(r, 100)) // poll interval
  }

  // the offset of the last committed message of each partition
  const last = {}
  for (const r of out.committedSend) {
    last[r.partition] = Number(r.baseOffset) + committed.filter(m => m.partition === r.partition).length - 1
  }
  out.readCommitted = await consumeUntil(kafka, `${groupPrefix}-rc`, topic, false, last, left())
  out.readUncommitted = await consumeUntil(kafka, `${groupPrefix}-ru`, topic, true, last, left())

  await admin.disconnect()
  process.stdout.write(JSON.stringify(out) + '\n')
}

main().catch(err => {
  process.stderr.write(`txn.js failed: ${err && err.stack ? err.stack : err}\n`)
  process.exit(1)
})
