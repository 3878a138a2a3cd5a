// The package entry point: the generated native loader (index.js), with asynchronous errors
// turned into Error objects carrying `code` and the location fields, as synchronous ones do.
'use strict'
const native = require('./index.js')

const loadPathsAsync = native.Engine.prototype.loadPathsAsync
native.Engine.prototype.loadPathsAsync = async function (paths) {
  try {
    return await loadPathsAsync.call(this, paths)
  } catch (e) {
    let info
    try {
      info = JSON.parse(e.message)
    } catch {
      throw e
    }
    if (!info || info.palisade_error !== true) throw e
    const err = new Error(info.message)
    Object.assign(err, info.fields, { code: info.code })
    throw err
  }
}

// decide and decideMany go through JSON text: V8's JSON.stringify/parse are much faster than
// converting objects property by property across the native boundary.
native.Engine.prototype.decide = function (request, strict) {
  return JSON.parse(this.decideJson(JSON.stringify(request), strict))
}
native.Engine.prototype.decideMany = function (requests) {
  if (!Array.isArray(requests)) throw new TypeError('decideMany takes an array of requests')
  return JSON.parse(this.decideManyJson(JSON.stringify(requests)))
}
native.FlowLog.prototype.decide = function (request, strict) {
  return JSON.parse(this.decideJson(JSON.stringify(request), strict))
}
native.FlowLog.prototype.drain = function () {
  return JSON.parse(this.drainJson())
}

module.exports = native
