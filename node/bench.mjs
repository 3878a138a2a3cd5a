// ns per decide and per request in decideMany, from Node.js (run after `npm run build`).
import { createRequire } from 'node:module'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const { Engine } = require('.')
const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const engine = Engine.fromPaths([join(root, 'examples', 'shop')])
const req = {
  source: { ip: '10.1.0.5', principal: 'spiffe://cluster.local/ns/shop/sa/frontend' },
  destination: { ip: '10.1.0.9', port: 8080 },
}

function best(f, n, rounds = 5) {
  let min = Infinity
  for (let r = 0; r < rounds; r++) {
    const t = process.hrtime.bigint()
    f(n)
    min = Math.min(min, Number(process.hrtime.bigint() - t) / n)
  }
  return min
}

const single = best((n) => {
  for (let i = 0; i < n; i++) engine.decide(req)
}, 20000)
const batch = Array(10000).fill(req)
const many = best((n) => {
  for (let i = 0; i < n / 10000; i++) engine.decideMany(batch)
}, 100000)
console.log(`decide(object):               ${single.toFixed(0)} ns`)
console.log(`decideMany(10,000 objects):   ${many.toFixed(0)} ns per request`)
