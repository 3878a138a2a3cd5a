// tests/corpus/: every case through the Node.js package: Engine.fromPaths, then each request
// line as JSON text (Engine.decideJson: surface `node`) and as an object (Engine.decide on
// JSON.parse of the line: surface `node-object`), checked against the case's expected
// decisions. The format and the skip lists: tests/corpus/README.md.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync, existsSync, statSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { Engine } = require('..')

const corpus = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'tests', 'corpus')
const jsonl = (path) => readFileSync(path, 'utf8').split('\n').filter((l) => l.trim())

const cases = readdirSync(join(corpus, 'cases'))
  .sort()
  .filter((name) => statSync(join(corpus, 'cases', name)).isDirectory())
  .map((name) => {
    const dir = join(corpus, 'cases', name)
    const manifest = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8'))
    const requests = jsonl(join(dir, manifest.requests ?? 'requests.jsonl'))
    const expected = jsonl(join(dir, 'expected.jsonl')).map((l) => JSON.parse(l))
    assert.equal(requests.length, expected.length, `${name}: one expected decision per request`)
    return { name, bundle: manifest.bundle.map((p) => join(dir, p)), requests, expected }
  })

function skips(surface) {
  const path = join(corpus, 'skip', `${surface}.txt`)
  const out = new Map()
  if (!existsSync(path)) return out
  readFileSync(path, 'utf8')
    .split('\n')
    .forEach((raw, n) => {
      const line = raw.trim()
      if (!line || line.startsWith('#')) return
      const m = /^(\S+)\s+(\d+)\s+(\S.*)$/.exec(line)
      assert.ok(m, `${surface}.txt:${n + 1}: \`case line reason\`, a skip needs a reason`)
      const c = cases.find((c) => c.name === m[1])
      assert.ok(c && m[2] >= 1 && m[2] <= c.requests.length, `${surface}.txt:${n + 1}: no request ${m[1]} ${m[2]}`)
      out.set(`${m[1]} ${m[2]}`, m[3])
    })
  return out
}

function mismatches(what, actual, expected) {
  const out = []
  for (const [key, want] of Object.entries(expected)) {
    if (key === 'why') continue
    if (key === 'trace') {
      for (const [side, hits] of Object.entries(want)) {
        const got = actual.trace?.[side] ?? null
        if (JSON.stringify(got) !== JSON.stringify(hits)) {
          out.push(`${what}: trace.${side} is ${JSON.stringify(got)}, expected ${JSON.stringify(hits)}`)
        }
      }
    } else if (JSON.stringify(actual[key] ?? null) !== JSON.stringify(want)) {
      out.push(`${what}: ${key} is ${JSON.stringify(actual[key])}, expected ${JSON.stringify(want)}\n  ${JSON.stringify(actual)}`)
    }
  }
  return out
}

test('the corpus is read', () => {
  assert.ok(cases.length >= 8)
  assert.ok(cases.reduce((n, c) => n + c.requests.length, 0) >= 80)
})

for (const [surface, decide] of [
  ['node', (engine, line) => JSON.parse(engine.decideJson(line))],
  ['node-object', (engine, line) => engine.decide(JSON.parse(line))],
]) {
  const skip = skips(surface)
  for (const c of cases) {
    test(`corpus ${c.name} (${surface})`, () => {
      const engine = Engine.fromPaths(c.bundle)
      const failures = []
      c.requests.forEach((line, i) => {
        const found = mismatches(`${c.name} line ${i + 1}`, decide(engine, line), c.expected[i])
        if (skip.has(`${c.name} ${i + 1}`)) {
          // A skipped line must still disagree: once it decides as expected, drop the skip.
          if (found.length === 0) failures.push(`${c.name} line ${i + 1}: skipped in skip/${surface}.txt but decides as expected: remove the skip`)
          return
        }
        failures.push(...found)
      })
      assert.deepEqual(failures, [])
    })
  }
}
