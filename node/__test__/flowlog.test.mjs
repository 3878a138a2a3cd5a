import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { Engine, FlowLog } = require('..')

const shopDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'shop')
const FRONTEND = 'spiffe://cluster.local/ns/shop/sa/frontend'
const cart = (port) => ({
  source: { ip: '10.1.0.5', port, principal: FRONTEND },
  destination: { ip: '10.1.0.9', port: 8080 },
  http: { method: 'GET', path: '/api/cart/42' },
})

test('FlowLog.decide equals Engine.decide and drain gives Calico records', () => {
  const engine = Engine.fromPaths([shopDir])
  const log = new FlowLog(engine)
  const d = log.decide(cart())
  const e = engine.decide(cart())
  for (const k of ['action', 'reason', 'side', 'tier', 'policy', 'rule', 'generation']) assert.equal(d[k], e[k], k)
  assert.equal(d.policy, 'np:shop/cart-api')
  assert.equal(log.decide({ source: { ip: '10.1.0.66' }, destination: { ip: '10.1.0.9', port: 8080 } }).action, 'deny')
  const records = log.drain()
  assert.deepEqual(log.drain(), [])
  const dst = records.filter((r) => r.reporter === 'dst' && r.action === 'allow')
  assert.equal(dst.length, 1)
  const r = dst[0]
  assert.equal(r.source_ip, '10.1.0.5')
  assert.equal(r.dest_name_aggr, 'cart-5c4b')
  assert.equal(r.proto, 'tcp')
  assert.equal(r.http_requests_allowed_in, 1)
  assert.equal(r.policies.enforced_policies.at(-1), '2|default|shop/default.cart-api|allow|0')
  assert.equal(r.palisade.principal, FRONTEND)
  assert.equal(r.palisade.decision_id.length, 32)
  assert.ok(records.some((x) => x.action === 'deny' && x.policies.enforced_policies[0].includes('security.block-quarantine')))
  assert.equal(log.dropped, 0)
})

test('a full queue still decides, drops and counts', () => {
  const log = new FlowLog(Engine.fromPaths([shopDir]), 2)
  for (let i = 0; i < 5; i++) assert.equal(log.decide(cart()).action, 'allow')
  assert.equal(log.dropped, 3)
  assert.equal(log.drain().filter((r) => r.reporter === 'dst').length, 2)
  log.decide(cart())
  assert.equal(log.dropped, 3)
})

test('requests that do not parse are not recorded; strict throws', () => {
  const log = new FlowLog(Engine.fromPaths([shopDir]))
  const bad = { source: { ip: '10.1.0.5', principle: FRONTEND }, destination: { ip: '10.1.0.9', port: 8080 } }
  assert.equal(log.decide(bad).reason, 'invalid_request')
  assert.throws(() => log.decide(bad, true), (e) => e.code === 'REQUEST_ERROR')
  assert.deepEqual(log.drain(), [])
})

test('aggregation levels and bad arguments', () => {
  const engine = Engine.fromPaths([shopDir])
  let log = new FlowLog(engine, null, 1)
  for (const port of [40001, 40002, 40003]) log.decide(cart(port))
  const dst = log.drain().filter((r) => r.reporter === 'dst')
  assert.equal(dst.length, 1)
  assert.equal(dst[0].num_flows, 3)
  assert.equal(dst[0].source_port, null)
  assert.equal(dst[0].palisade.decision_id, undefined)
  log = new FlowLog(engine, 16, 'default')
  log.decide(cart())
  assert.deepEqual(new Set(log.drain().map((r) => r.source_ip)), new Set([null]))
  for (const a of [4, -1, 'felix', 1.5]) assert.throws(() => new FlowLog(engine, 16, a), (e) => e.code === 'ARGUMENT_ERROR', String(a))
  assert.throws(() => new FlowLog(engine, 0), (e) => e.code === 'ARGUMENT_ERROR')
})

test('nothing loaded: a no_bundle deny, recorded with its reason', () => {
  const log = new FlowLog(new Engine())
  assert.equal(log.decide(cart()).reason, 'no_bundle')
  const [r, ...rest] = log.drain()
  assert.equal(rest.length, 0)
  assert.equal(r.action, 'deny')
  assert.equal(r.palisade.reason, 'no_bundle')
})
