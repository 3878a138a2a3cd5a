import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { Engine, version } = require('..')

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const shopDir = join(root, 'examples', 'shop')
const lines = readFileSync(join(shopDir, 'requests.jsonl'), 'utf8').split('\n').filter((l) => l.trim())

test('the example decisions equal the CLI', () => {
  const cli = join(root, 'target', 'debug', 'palisade')
  if (!existsSync(cli)) execFileSync('cargo', ['build', '-q', '-p', 'palisade-cli'], { cwd: root })
  const out = execFileSync(cli, ['decide', '--bundle', shopDir, '--requests', '-'], {
    input: lines.join('\n'),
    stdio: ['pipe', 'pipe', 'ignore'],
  })
    .toString()
    .trim()
    .split('\n')
  const engine = Engine.fromPaths([shopDir])
  assert.equal(out.length, 11)
  lines.forEach((line, i) => {
    const got = engine.decide(JSON.parse(line))
    const want = JSON.parse(out[i])
    // A request that does not parse: the CLI read text and also says where (column).
    assert.equal(got.detail === null, want.detail === null, line)
    if (got.detail !== null) assert.ok(want.detail.startsWith(got.detail), line)
    delete got.detail
    delete want.detail
    assert.deepEqual(got, want, line)
  })
})

test('the stolen certificate is denied', () => {
  const engine = Engine.fromPaths([shopDir])
  const d = engine.decide({
    source: { ip: '10.1.0.5', principal: 'spiffe://cluster.local/ns/payments/sa/payments' },
    destination: { ip: '10.2.0.7', port: 8443 },
  })
  assert.equal(d.action, 'deny')
  assert.equal(d.reason, 'identity_mismatch')
  assert.equal(d.peer, 'source')
})

test('camelCase remoteIp is accepted', () => {
  const engine = Engine.fromPaths([join(root, 'examples', 'mesh')])
  const d = engine.decide({ source: { ip: '10.99.0.7', remoteIp: '203.0.113.1' }, destination: { ip: '10.30.0.10', port: 8443 } })
  assert.equal(d.action, 'allow')
})

test('errors carry a code and the location', () => {
  const engine = new Engine()
  assert.equal(engine.decide({ source: { ip: '10.0.0.1' }, destination: { ip: '10.0.0.2', port: 80 } }).reason, 'no_bundle')
  const bad = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec: {selector: '(('}\n"
  assert.throws(
    () => engine.loadYaml(bad),
    (e) => {
      assert.ok(e instanceof Error)
      assert.equal(e.code, 'BUNDLE_ERROR')
      assert.equal(e.kind, 'invalid')
      assert.equal(e.file, '<string>')
      assert.equal(e.document, 0)
      assert.equal(e.object, 'GlobalNetworkPolicy p')
      assert.equal(e.field, 'spec.selector')
      assert.match(e.message, /spec\.selector/)
      return true
    },
  )
  assert.equal(engine.generation, 0)
  const two = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: a}\nspec: {selector: '(('}\n---\n" +
    "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicies\nmetadata: {name: b}\nspec: {}\n"
  assert.throws(
    () => engine.loadYaml(two),
    (e) => {
      assert.deepEqual(e.errors.map((x) => x.object), ['GlobalNetworkPolicy a', 'GlobalNetworkPolicies b'])
      assert.equal(e.message.split('\n').length, 2)
      return true
    },
  )
  const withSkipped = new Engine()
  withSkipped.loadYaml("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: n}\n")
  assert.deepEqual(withSkipped.skipped(), [{ apiVersion: 'apps/v1', kind: 'Deployment', count: 1 }])
  assert.throws(() => new Engine({ trust_domain_aliases: ['Bad_Domain'] }), (e) => e.code === 'CONFIG_ERROR')
  assert.throws(() => new Engine({ no_policy_action: 'maybe' }), (e) => e.code === 'CONFIG_ERROR' && e.field === 'no_policy_action')
  const loaded = Engine.fromPaths([shopDir])
  const bogus = { source: { ip: 'nope' }, destination: { ip: '10.1.0.9', port: 80 } }
  assert.equal(loaded.decide(bogus).reason, 'invalid_request')
  assert.throws(() => loaded.decide(bogus, true), (e) => e.code === 'REQUEST_ERROR' && e.field === 'source.ip')
  assert.ok(version().length > 0)
})

test('decideMany equals a loop of decide', () => {
  const engine = Engine.fromPaths([shopDir])
  const reqs = lines.map((l) => JSON.parse(l))
  const many = engine.decideMany(reqs)
  const loop = reqs.map((r) => engine.decide(r))
  assert.deepEqual(
    many.map((d) => ({ ...d, trace: null })),
    loop.map((d) => ({ ...d, trace: null })),
  )
})

test('explain reads as the CLI', () => {
  const engine = Engine.fromPaths([shopDir])
  const text = engine.explain({ source: { ip: '10.1.0.66' }, destination: { ip: '10.1.0.9', port: 8080 } })
  assert.match(text, /gnp:block-quarantine/)
  assert.match(text, /decision: deny/)
})

test('decisions stay right while bundles reload off the JavaScript thread', async () => {
  const base =
    'apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: n}\nstatus: {podIP: 10.0.0.2}\n---\n' +
    'apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec: {ingress: [{action: ACTION}]}\n'
  const dirs = ['Allow', 'Deny'].map((a) => {
    const d = mkdtempSync(join(tmpdir(), 'palisade-'))
    writeFileSync(join(d, 'b.yaml'), base.replace('ACTION', a))
    return d
  })
  const engine = Engine.fromPaths([dirs[0]]) // generation 1: allow
  const req = { source: { ip: '10.0.0.1' }, destination: { ip: '10.0.0.2', port: 80 } }
  let wrong = 0
  let decided = 0
  let pending = true
  const loads = (async () => {
    for (let i = 0; i < 100; i++) await engine.loadPathsAsync([dirs[(i + 1) % 2]])
    pending = false
  })()
  while (pending) {
    for (const d of engine.decideMany(Array(100).fill(req))) {
      decided++
      if (d.action !== (d.generation % 2 === 1 ? 'allow' : 'deny')) wrong++
    }
    await new Promise((r) => setImmediate(r))
  }
  await loads
  assert.equal(wrong, 0)
  assert.ok(decided > 0)
  assert.equal(engine.generation, 101)
  await assert.rejects(engine.loadPathsAsync(['/no/such/dir']), (e) => e.code === 'BUNDLE_ERROR')
  assert.equal(engine.generation, 101)
})

test('an l7_pending allow carries l7_pending and errors carry the core field names', () => {
  const engine = new Engine()
  engine.loadYaml(`
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: ns}
spec: {serviceAccountName: a}
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: ns}
spec: {serviceAccountName: b}
status: {podIP: 10.0.0.2}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: http-only, namespace: ns}
spec:
  ingress:
  - action: Allow
    protocol: TCP
    http: {methods: [GET]}
`)
  const d = engine.decide({ source: { ip: '10.0.0.1' }, destination: { ip: '10.0.0.2', port: 80 } })
  assert.equal(d.action, 'allow')
  assert.equal(d.l7_pending, true)
  assert.equal(d.detail, null)
  const bad = engine.decide({ source: { ip: '10.0.0.1' }, destination: { ip: '::2', port: 80 } })
  assert.equal(bad.reason, 'invalid_request')
  assert.match(bad.detail, /different families/)
  assert.throws(
    () => engine.loadYaml('apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: n}\nstatus: {podIP: banana}\n'),
    (e) =>
      e.code === 'BUNDLE_ERROR' &&
      e.errors.length >= 1 &&
      ['kind', 'file', 'document', 'object', 'field', 'message'].every((k) => k in e.errors[0]) &&
      e.field === e.errors[0].field,
  )
})

test('apply changes the engine and reports, all-or-nothing unless lenient', () => {
  const engine = new Engine()
  engine.loadYaml(`
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: ns}
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: ns}
status: {podIP: 10.0.0.2}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: only-80, namespace: ns}
spec:
  ingress:
  - action: Allow
    protocol: TCP
    destination: {ports: [80]}
`)
  const to = (port) => engine.decide({ source: { ip: '10.0.0.1' }, destination: { ip: '10.0.0.2', port } })
  assert.equal(to(81).reason, 'end_of_tier')
  const report = engine.apply([
    { op: 'delete', apiVersion: 'projectcalico.org/v3', kind: 'NetworkPolicy', namespace: 'ns', name: 'only-80' },
  ])
  assert.deepEqual([report.generation, report.deleted, report.objects], [2, 1, 2])
  assert.equal(to(81).reason, 'no_policy')
  const bad = [{ op: 'upsert', object: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'c', namespace: 'ns' }, status: { podIP: 'x' } } }]
  assert.throws(() => engine.apply(bad), (e) => e.code === 'BUNDLE_ERROR' && e.field.startsWith('status.podIP'))
  assert.equal(engine.generation, 2)
  const lenient = engine.apply(bad, true)
  assert.equal(lenient.generation, 3)
  assert.ok(lenient.rejected[0].field.startsWith('status.podIP'))
  assert.throws(() => engine.apply([{ op: 'rename' }]), (e) => e.code === 'BUNDLE_ERROR' && e.field === 'changes[0].op')
})
