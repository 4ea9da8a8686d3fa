#!/usr/bin/env node
// A kafkajs consumer group of MEMBERS consumers in this one process; prints what happened
// as JSON on stdout.
//
//   node group.js BOOTSTRAP TOPIC GROUP COUNT PARTITIONS [MEMBERS] [REPLICATION_FACTOR]
//
// Creates TOPIC with PARTITIONS partitions, each replicated REPLICATION_FACTOR times
// (default 1) (admin.createTopics), starts the consumers in
// GROUP (subscribe fromBeginning, autoCommit off: every batch is committed with
// commitOffsets right after it is processed), waits until the group has settled (every
// member's latest GROUP_JOIN assignment together covers each partition exactly once),
// describes the group, produces COUNT messages (message i to partition i % PARTITIONS,
// key "jsg-key-<i>", value "jsg-value-<i>"), waits until COUNT messages were consumed,
// reads the committed offsets back with admin.fetchOffsets, disconnects the consumers
// (LeaveGroup) and describes the group again.
'use strict'

const { Kafka, logLevel } = require('kafkajs')

const DEADLINE_MS = 45000

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

function describe(d) {
  return d.groups.map(g => ({
    groupId: g.groupId,
    errorCode: g.errorCode,
    state: g.state,
    protocolType: g.protocolType,
    protocol: g.protocol,
    members: g.members.map(m => ({ memberId: m.memberId, clientId: m.clientId })).sort((a, b) => a.clientId < b.clientId ? -1 : 1),
  }))
}

async function main() {
  const [bootstrap, topic, groupId, countArg, partitionsArg, membersArg, rfArg] = process.argv.slice(2)
  const count = Number(countArg)
  const partitions = Number(partitionsArg)
  const nMembers = membersArg ? Number(membersArg) : 2
  if (!bootstrap || !topic || !groupId || !Number.isInteger(count) || !Number.isInteger(partitions)) {
    throw new Error('usage: group.js BOOTSTRAP TOPIC GROUP COUNT PARTITIONS [MEMBERS]')
  }
  const started = Date.now()
  const left = () => Math.max(1000, DEADLINE_MS - (Date.now() - started))

  const kafka = new Kafka({
    clientId: 'sluice-e2e-kafkajs-group',
    brokers: [bootstrap],
    logLevel: logLevel.WARN,
    logCreator: stderrLogger,
  })
  const out = { joins: [], consumed: [], commitErrors: [] }

  const admin = kafka.admin()
  await admin.connect()
  out.created = await admin.createTopics({
    topics: [{ topic, numPartitions: partitions, replicationFactor: Number(rfArg || 1) }],
    waitForLeaders: true,
  })

  const members = []
  for (let i = 0; i < nMembers; i++) {
    const name = `member-${i}`
    const consumer = kafka.consumer({
      groupId,
      sessionTimeout: 10000,
      rebalanceTimeout: 10000,
      heartbeatInterval: 500,
      maxWaitTimeInMs: 500,
    })
    const m = { name, consumer, assignment: null, consumed: [] }
    consumer.on(consumer.events.GROUP_JOIN, e => {
      const parts = (e.payload.memberAssignment[topic] || []).slice().sort((a, b) => a - b)
      m.assignment = parts
      out.joins.push({ member: name, memberId: e.payload.memberId, leaderId: e.payload.leaderId, isLeader: e.payload.isLeader, protocol: e.payload.groupProtocol, partitions: parts })
    })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        let last = null
        for (const msg of batch.messages) {
          if (!isRunning() || isStale()) break
          m.consumed.push({ partition: batch.partition, offset: msg.offset, key: msg.key && msg.key.toString(), value: msg.value && msg.value.toString() })
          resolveOffset(msg.offset)
          last = msg.offset
        }
        if (last !== null) {
          try {
            await consumer.commitOffsets([{ topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() }])
          } catch (err) {
            out.commitErrors.push({ member: name, partition: batch.partition, error: String(err && err.type || err) })
          }
        }
        await heartbeat()
      },
    })
    members.push(m)
  }

  // settled: the latest assignment of every member covers each partition exactly once
  const settled = await waitFor(() => {
    if (members.some(m => m.assignment === null)) return null
    const all = members.flatMap(m => m.assignment).sort((a, b) => a - b)
    if (all.length !== partitions || all.some((p, i) => p !== i)) return null
    if (members.some(m => m.assignment.length === 0)) return null
    return members.map(m => ({ member: m.name, partitions: m.assignment }))
  }, 'the group to settle', left())
  out.settled = settled
  out.describeStable = describe(await admin.describeGroups([groupId]))

  const producer = kafka.producer()
  await producer.connect()
  const messages = []
  for (let i = 0; i < count; i++) {
    messages.push({ key: `jsg-key-${i}`, value: `jsg-value-${i}`, partition: i % partitions })
  }
  for (let i = 0; i < count; i += 100) {
    await producer.send({ topic, messages: messages.slice(i, i + 100) })
  }
  await producer.disconnect()

  await waitFor(() => members.reduce((n, m) => n + m.consumed.length, 0) >= count, `${count} messages consumed`, left())
  // every batch's commit is awaited inside eachBatch before the next one: once the last
  // message of each partition is consumed its commit is in flight or done
  const expectEnd = p => String(messages.filter(x => x.partition === p).length)
  let offsets = null
  const deadline = Date.now() + left()
  for (;;) {
    offsets = await admin.fetchOffsets({ groupId, topics: [topic] })
    const parts = offsets.flatMap(t => t.partitions)
    if (parts.length === partitions && parts.every(p => p.offset === expectEnd(p.partition))) break
    if (Date.now() > deadline) break
    await new Promise(r => setTimeout(r, 100)) // poll interval
  }
  out.fetchOffsets = offsets.map(t => ({
    topic: t.topic,
    partitions: t.partitions.map(p => ({ partition: p.partition, offset: p.offset, metadata: p.metadata })).sort((a, b) => a.partition - b.partition),
  }))
  out.consumed = members.map(m => ({ member: m.name, messages: m.consumed }))

  for (const m of members) await m.consumer.disconnect()
  out.describeAfter = describe(await admin.describeGroups([groupId]))
  await admin.disconnect()
  process.stdout.write(JSON.stringify(out) + '\n')
}

main().catch(err => {
  process.stderr.write(`group.js failed: ${err && err.stack ? err.stack : err}\n`)
  process.exit(1)
})
