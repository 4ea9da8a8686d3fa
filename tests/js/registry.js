#!/usr/bin/env node
// The built-in Schema Registry through @kafkajs/confluent-schema-registry, with kafkajs
// producing and consuming; prints what happened as JSON on stdout.
//
//   node registry.js write BOOTSTRAP REGISTRY_URL TOPIC
//   node registry.js read  BOOTSTRAP REGISTRY_URL TOPIC COUNT
//
// write: registers an Avro schema for TOPIC-value, produces 3 records encoded with it,
// registers a compatible evolution (a field with a default) and produces 2 more with it,
// then tries an incompatible one (a field without a default) and reports the error.
// read: reads COUNT records of TOPIC from the beginning (a consumer group of one) and
// decodes each with the schema fetched by its id.
'use strict'

const { Kafka, logLevel } = require('kafkajs')
const { SchemaRegistry, SchemaType } = require('@kafkajs/confluent-schema-registry')

const DEADLINE_MS = 45000

const order = fields => JSON.stringify({ type: 'record', name: 'Order', namespace: 'shop', fields })
const V1 = order([{ name: 'id', type: 'long' }, { name: 'item', type: 'string' }])
const V2 = order([{ name: 'id', type: 'long' }, { name: 'item', type: 'string' },
  { name: 'qty', type: 'int', default: 1 }])
const V3 = order([{ name: 'id', type: 'long' }, { name: 'item', type: 'string' },
  { name: 'qty', type: 'int', default: 1 }, { name: 'price', type: 'double' }])

async function write(kafka, registry, topic) {
  const subject = `${topic}-value`
  const producer = kafka.producer()
  await producer.connect()
  const v1 = await registry.register({ type: SchemaType.AVRO, schema: V1 }, { subject })
  const first = [0, 1, 2].map(i => ({ id: i, item: `item-${i}` }))
  await producer.send({ topic, messages: await Promise.all(first.map(async v => ({ value: await registry.encode(v1.id, v) }))) })
  const v2 = await registry.register({ type: SchemaType.AVRO, schema: V2 }, { subject })
  const second = [3, 4].map(i => ({ id: i, item: `item-${i}`, qty: i }))
  await producer.send({ topic, messages: await Promise.all(second.map(async v => ({ value: await registry.encode(v2.id, v) }))) })
  let incompatible = null
  try {
    await registry.register({ type: SchemaType.AVRO, schema: V3 }, { subject })
  } catch (e) {
    incompatible = { name: e.name, message: e.message, status: e.status ?? null }
  }
  await producer.disconnect()
  return { ids: [v1.id, v2.id], latest: await registry.getLatestSchemaId(subject), incompatible }
}

async function read(kafka, registry, topic, count) {
  const consumer = kafka.consumer({ groupId: `registry-${topic}` })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const values = []
  await consumer.run({
    eachMessage: async ({ message }) => {
      values.push({ offset: message.offset, value: await registry.decode(message.value) })
    },
  })
  const deadline = Date.now() + DEADLINE_MS
  while (values.length < count) {
    if (Date.now() > deadline) throw new Error(`read ${values.length} of ${count} records`)
    await new Promise(r => setTimeout(r, 50)) // poll interval of the wait, not a wait for a condition
  }
  await consumer.disconnect()
  return { values, latest: await registry.getLatestSchemaId(`${topic}-value`) }
}

async function main() {
  const [mode, bootstrap, url, topic, count] = process.argv.slice(2)
  const kafka = new Kafka({ clientId: 'registry-js', brokers: [bootstrap], logLevel: logLevel.WARN })
  const registry = new SchemaRegistry({ host: url })
  const out = mode === 'write' ? await write(kafka, registry, topic) : await read(kafka, registry, topic, Number(count))
  process.stdout.write(JSON.stringify(out))
}

main().catch(e => {
  process.stderr.write(`${e.stack || e}\n`)
  process.exit(1)
})
